"""Benign traffic at the perimeter: public visitors of the web server (and one legitimate surge), mail
with DNSBL and reverse lookups, admins and remote workers on the SSH bastion and RDP gateway, a VPN
gateway that carries users' traffic to the Internet, a reverse proxy that forwards to internal backends
and to a public SaaS origin, and the Internet's background scanning.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.simulate import net
from bothunt.simulate.context import BG, Sim, named_conns, poisson_times
from bothunt.simulate.frames import REJ, S0, SVC, UDP, Frame, conn, dns, lognormal
from bothunt.simulate.org import proc
from bothunt.simulate.rand import ragged_arange


def _octets(addr: np.ndarray) -> list[pa.Array]:
    return [pa.array(((addr >> np.uint32(s)) & np.uint32(255)).astype(np.int64)).cast(pa.string())
            for s in (24, 16, 8, 0)]


def reversed_name(addr: np.ndarray, suffix: str) -> pa.Array:
    a, b, c, d = _octets(np.asarray(addr, dtype=np.uint32))
    return pc.binary_join_element_wise(d, c, b, a, pa.scalar(suffix), ".")


def _answer_lists(values: pa.Array, ok: np.ndarray, ttl: float) -> tuple[pa.Array, pa.Array]:
    """One answer per row where ok, else an empty list."""
    offsets = pa.array(np.concatenate([[0], np.cumsum(ok)]).astype(np.int32))
    vals = values.filter(pa.array(ok))
    return (pa.ListArray.from_arrays(offsets, vals),
            pa.ListArray.from_arrays(offsets, pa.array(np.full(len(vals), ttl))))


def ptr_lookups(sim: Sim, rng: np.random.Generator, dev: int, ts: np.ndarray, clients: np.ndarray) -> Frame:
    """Reverse (in-addr.arpa) lookups a server makes for the clients it logs."""
    ok = rng.random(ts.size) < 0.7
    a, b, c, d = _octets(clients)
    host = pc.binary_join_element_wise(pa.scalar("host"), a, b, c, d, pa.scalar("dynamic.example-isp.net"), "-")
    answers, ttls = _answer_lists(host, ok, 3600.0)
    return dns(rng, ts=ts + rng.uniform(0.01, 0.2, ts.size), src=sim.org.ips[dev], dst=sim.resolver,
               query=reversed_name(clients, "in-addr.arpa"), qtype=12, rcode=np.where(ok, 0, 3),
               answers=answers, ttls=ttls, dev=dev, scen=BG["reverse"])


def _visits(sim: Sim, rng: np.random.Generator, ts: np.ndarray, scen: int,
            sni: str = "www.corp-example.com") -> tuple[Frame, np.ndarray, np.ndarray]:
    """Public visitors: each visit is a short burst of requests from one address."""
    clients = net.draw(rng, net.CLIENT_16, ts.size)
    n = 1 + rng.geometric(0.3, ts.size)
    v = np.repeat(np.arange(ts.size), n)
    t = np.repeat(ts, n) + ragged_arange(n) * rng.exponential(1.5, v.size)
    plain = rng.random(v.size) < 0.1
    web = sim.dev("web-01")
    c = conn(rng, ts=t, src=clients[v], dst=sim.org.ips[web], dport=np.where(plain, 80, 443), dev=web,
             proc=proc("w3wp.exe"), svc=np.where(plain, SVC["http"], SVC["ssl"]), sni=sim.world.index[sni],
             scen=scen, bout=lognormal(rng, v.size, 700, 0.6), bin=lognormal(rng, v.size, 18000, 1.3),
             dur=lognormal(rng, v.size, 0.8, 1.0))
    return c, clients, ts


def web(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    _, ts = poisson_times(rng, np.array([220.0 * sim.scale]), t0, t1, "public")
    c, clients, vts = _visits(sim, rng, ts, BG["web"])
    sample = rng.random(vts.size) < 0.05
    return [c], [ptr_lookups(sim, rng, sim.dev("web-01"), vts[sample], clients[sample])]


def surge_window(sim: Sim) -> tuple[float, float]:
    """A legitimate surge on the web server (a campaign launch): many sources, normal behaviour."""
    start = sim.t_start + round(0.42 * sim.span / 60.0) * 60.0
    return start, start + min(3600.0, 0.05 * sim.span)


def web_surge(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    a, b = surge_window(sim)
    lo, hi = max(a, t0), min(b, t1)
    if hi <= lo:
        return [], []
    _, ts = poisson_times(rng, np.array([3000.0 * sim.scale * 3600.0 / (b - a)]), lo, hi)
    c, _, _ = _visits(sim, rng, ts, BG["web_surge"])
    return [c.take(c["ts"] < t1)], []


def mail(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    dev = sim.dev("mail-01")
    mail_ip = sim.org.ips[dev]
    mta = sim.peers["mta"]
    _, ts = poisson_times(rng, np.array([70.0 * sim.scale]), t0, t1, "public")
    src = mta[rng.integers(0, mta.size, ts.size)]
    inbound = conn(rng, ts=ts, src=src, dst=mail_ip, dport=25, svc=SVC["smtp"], dev=dev,
                   proc=proc("EdgeTransport.exe"), scen=BG["mail"], bout=lognormal(rng, ts.size, 25000, 1.2),
                   bin=lognormal(rng, ts.size, 700, 0.3), dur=lognormal(rng, ts.size, 1.5, 0.8))
    listed = rng.random(ts.size) < 0.05
    ans, ttls = _answer_lists(pa.array(np.full(ts.size, "127.0.0.2")), listed, 300.0)
    dnsbl = dns(rng, ts=ts + rng.uniform(0.05, 0.3, ts.size), src=mail_ip, dst=sim.resolver,
                query=reversed_name(src, "zen.spamhaus.org"), qtype=1, rcode=np.where(listed, 0, 3),
                answers=ans, ttls=ttls, dev=dev, scen=BG["dnsbl"])
    _, ots = poisson_times(rng, np.array([35.0 * sim.scale]), t0, t1, "human")
    outbound = conn(rng, ts=ots, src=mail_ip, dst=mta[rng.integers(0, mta.size, ots.size)], dport=25,
                    svc=SVC["smtp"], dev=dev, proc=proc("EdgeTransport.exe"), scen=BG["mail"],
                    bout=lognormal(rng, ots.size, 30000, 1.2), bin=lognormal(rng, ots.size, 700, 0.3))
    return [inbound, outbound], [dnsbl, ptr_lookups(sim, rng, dev, ts, src)]


def remote_access(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    out = []
    for name, peers, rate, ports, svcs, exe, scen in (
        ("bastion-01", "admins", 1.5, (22,), ("ssh",), "sshd.exe", "bastion"),
        ("rdgw-01", "remote_workers", 8.0, (443, 3389), ("ssl", "rdp"), "svchost.exe#rdp", "rdgw"),
    ):
        dev = sim.dev(name)
        src_pool = sim.peers[peers]
        _, ts = poisson_times(rng, np.array([rate * sim.scale]), t0, t1, "human")
        k = rng.integers(0, len(ports), ts.size)
        out.append(conn(rng, ts=ts, src=src_pool[rng.integers(0, src_pool.size, ts.size)], dst=sim.org.ips[dev],
                        dport=np.asarray(ports)[k], svc=np.asarray([SVC[s] for s in svcs])[k], dev=dev,
                        proc=proc(exe), scen=BG[scen], bout=lognormal(rng, ts.size, 60000, 1.2),
                        bin=lognormal(rng, ts.size, 400000, 1.4), dur=lognormal(rng, ts.size, 1200, 1.0)))
    return out, []


def vpn(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    """Remote users' tunnels (one long connection per user and working day) and the users' traffic the
    gateway carries to the Internet: inbound from public addresses, outbound to others, legitimately."""
    dev = sim.dev("vpn-01")
    gw = sim.org.ips[dev]
    users = sim.peers["vpn_users"]
    days = np.arange(np.floor(t0 / 86400.0) * 86400.0, t1, 86400.0)
    ph = sim.phase[dev, : users.size]  # users.size <= the 16 phase slots
    s = (days[:, None] + 7.5 * 3600 + ph[None, :] * 7200).ravel()
    u = np.tile(np.arange(users.size), days.size)
    weekday = np.mod(np.floor(s / 86400.0) + 3, 7) < 5
    keep = (s >= t0) & (s < t1) & weekday
    tunnels = conn(rng, ts=s[keep], src=users[u[keep]], dst=gw, dport=1194, proto=UDP, dev=dev,
                   proc=proc("svchost.exe#vpn"), scen=BG["vpn"], bout=lognormal(rng, int(keep.sum()), 4e7, 0.8),
                   bin=lognormal(rng, int(keep.sum()), 3e8, 0.8), dur=rng.uniform(6, 9, int(keep.sum())) * 3600)
    g = sim.world.groups
    _, ts = poisson_times(rng, np.array([150.0 * sim.scale]), t0, t1, "human")
    dom = np.where(rng.random(ts.size) < 0.6, g["popular"][rng.integers(0, g["popular"].size, ts.size)],
                   g["longtail"][rng.integers(0, g["longtail"].size, ts.size)])
    c, q = named_conns(sim, rng, np.full(ts.size, dev), ts, dom, 0.3, dport=443, svc=SVC["ssl"],
                       proc=proc("svchost.exe#vpn"), scen=BG["vpn"], bin=lognormal(rng, ts.size, 15000, 1.5))
    return [tunnels, c], [q]


def rproxy(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    """Reverse proxy: every inbound request is forwarded within milliseconds, with matching bytes, to an
    internal backend or (for the partner API path) to a fixed public SaaS origin."""
    dev = sim.dev("rproxy-01")
    ip = sim.org.ips[dev]
    _, ts = poisson_times(rng, np.array([160.0 * sim.scale]), t0, t1, "public")
    n = ts.size
    bout, bin_ = lognormal(rng, n, 900, 0.7), lognormal(rng, n, 12000, 1.2)
    dur = lognormal(rng, n, 0.5, 0.8)
    inbound = conn(rng, ts=ts, src=net.draw(rng, net.CLIENT_16, n), dst=ip, dport=443, svc=SVC["ssl"], dev=dev,
                   proc=proc("nginx.exe"), sni=sim.world.index["app.corp-example.com"], scen=BG["rproxy"],
                   bout=bout, bin=bin_, dur=dur)
    lag = rng.uniform(0.002, 0.03, n)
    to_saas = rng.random(n) < 0.2
    backends = sim.org.ips[sim.roles["backends"]]
    origin = sim.world.index["api.partner-saas.com"]
    dst = np.where(to_saas, sim.world.pick(rng, np.full(n, origin), ts), backends[rng.integers(0, backends.size, n)])
    fwd = conn(rng, ts=ts + lag, src=ip, dst=dst, dport=np.where(to_saas, 443, 8080), dev=dev,
               proc=proc("nginx.exe"), svc=np.where(to_saas, SVC["ssl"], SVC["http"]),
               sni=np.where(to_saas, origin, -1), scen=BG["rproxy"], bout=bout + 310, bin=bin_ + 120,
               dur=np.maximum(dur - 2 * lag, 0.001))
    return [inbound, fwd.take(fwd["ts"] < t1)], []


SCAN_PORTS = np.array([23, 445, 1433, 3306, 5900, 8080, 8443, 2323, 5060, 6379, 9200, 21, 110, 139])


def scan_noise(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    """Internet background radiation: scanners probing closed ports on the exposed hosts."""
    dmz = sim.org.of_role(2)
    _, ts = poisson_times(rng, np.array([120.0]), t0, t1)
    devs = dmz[rng.integers(0, dmz.size, ts.size)]
    c = conn(rng, ts=ts, src=net.draw(rng, net.SCANNER_16, ts.size), dst=sim.org.ips[devs],
             dport=SCAN_PORTS[rng.integers(0, SCAN_PORTS.size, ts.size)], dev=devs, proc=-1,
             scen=BG["scan_noise"], state=np.where(rng.random(ts.size) < 0.5, REJ, S0))
    return [c], []
