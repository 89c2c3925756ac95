"""Benign background from workstations and servers: the shapes that fool detectors.

Human browsing (bursty, diurnal, heavy-tailed destinations), Poisson-like chat polling, strictly
periodic OS telemetry / NTP / update checks on most hosts, monitoring-agent heartbeats and licence
polling on a few, P2P sync with inbound and outbound peers, backup clients with long connections, and
internal traffic to the domain controller and file servers. Every generator is vectorised over one time
slice; `scale` multiplies the human-driven volume (periodic services keep their real periods).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bothunt.simulate import benign_dns, benign_edge
from bothunt.simulate.context import BG, Sim, named_conns, periodic_times, poisson_times
from bothunt.simulate.frames import SVC, UDP, Frame, concat, conn, lognormal
from bothunt.simulate.org import proc
from bothunt.simulate.rand import rng_for

Gen = Callable[[Sim, np.random.Generator, float, float], tuple[list[Frame], list[Frame]]]

BROWSE_PAGES_PER_HOUR = 18.0


def _zipf_pick(rng: np.random.Generator, group: np.ndarray, n: int, a: float = 1.15) -> np.ndarray:
    ranks = np.arange(1, group.size + 1, dtype=np.float64)
    p = ranks ** -a
    return group[rng.choice(group.size, n, p=p / p.sum())]


def browsing(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    ws = sim.roles["ws"]
    ent, page_ts = poisson_times(rng, BROWSE_PAGES_PER_HOUR * sim.scale * sim.rate[ws], t0, t1, "human")
    devs = ws[ent]
    g = sim.world.groups
    main = np.where(rng.random(devs.size) < 0.55, _zipf_pick(rng, g["popular"], devs.size),
                    _zipf_pick(rng, g["longtail"], devs.size, 1.05))
    burst = 1 + rng.geometric(0.32, devs.size)
    page = np.repeat(np.arange(devs.size), burst)
    first = np.concatenate([[True], page[1:] != page[:-1]]) if page.size else np.zeros(0, bool)
    offset = rng.exponential(0.35, page.size)
    offset[first] = 0.0
    cum = np.cumsum(offset)
    ts = np.repeat(page_ts, burst) + cum - np.repeat(cum[first], burst)  # a burst spilling past t1 is cut
    sub = np.concatenate([g["thirdparty"], g["cdn"]])
    other = np.where(rng.random(page.size) < 0.45, main[page], sub[rng.integers(0, sub.size, page.size)])
    dom = np.where(first, main[page], other)
    d = devs[page]
    plain = rng.random(page.size) < 0.04
    state = np.where(rng.random(page.size) < 0.985, 0, np.where(rng.random(page.size) < 0.7, 3, 1))
    c, q = named_conns(sim, rng, d, ts, dom, np.where(first, 0.45, 0.15), dport=np.where(plain, 80, 443),
                       svc=np.where(plain, SVC["http"], SVC["ssl"]), proc=sim.org.browser[d],
                       scen=BG["browse"], bout=lognormal(rng, page.size, 900, 0.9),
                       bin=lognormal(rng, page.size, 15000, 1.5), dur=lognormal(rng, page.size, 2.5, 1.3),
                       state=state)
    return [c], [q]


def internal(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    ws = sim.roles["ws"]
    ent, ts = poisson_times(rng, 12.0 * sim.scale * sim.rate[ws], t0, t1, "human")
    devs = ws[ent]
    kind = rng.integers(0, 3, devs.size)  # kerberos, ldap, smb to a file server
    fs = sim.roles["file_servers"]
    dc = sim.org.ip_of("dc-01")
    dst = np.where(kind == 2, sim.org.ips[fs[rng.integers(0, fs.size, devs.size)]], dc)
    port = np.choose(kind, [88, 389, 445])
    svc = np.choose(kind, [SVC["krb"], SVC["ldap"], SVC["smb"]])
    p = np.where(kind == 2, proc("System"), proc("lsass.exe"))
    c = conn(rng, ts=ts, src=sim.org.ips[devs], dst=dst, dport=port, svc=svc, dev=devs, proc=p,
             scen=BG["internal"], bout=lognormal(rng, devs.size, 1500), bin=lognormal(rng, devs.size, 6000, 1.4))
    return [c], []


def chat(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    out_c, out_q = [], []
    for role, name, mean, exe in (("teams", "presence.teams.microsoft.com", 60.0, "Teams.exe"),
                                  ("slack", "wss-primary.slack.com", 600.0, "slack.exe")):
        devs_all = sim.roles[role]
        ent, ts = poisson_times(rng, np.full(devs_all.size, 3600.0 / mean), t0, t1, "human")
        dom = np.full(ts.size, sim.world.index[name])
        ttl = float(sim.world.ttl[dom[0]]) if ts.size else 1.0
        c, q = named_conns(sim, rng, devs_all[ent], ts, dom, min(1.0, mean / ttl), dport=443, svc=SVC["ssl"],
                           proc=proc(exe), scen=BG["chat"], bout=lognormal(rng, ts.size, 700, 0.4),
                           bin=lognormal(rng, ts.size, 900, 0.6), dur=rng.uniform(1, mean, ts.size))
        out_c.append(c)
        out_q.append(q)
    return out_c, out_q


# (role, slot, name, period s, jitter fraction, port, proto, service, process, kind, bytes out/in)
PERIODIC = (
    ("windows", 0, "settings-win.data.microsoft.com", 1800.0, 0.002, 443, 0, "ssl", "svchost.exe#settings",
     "telemetry", (1200, 5200)),
    ("windows", 1, "v10.events.data.microsoft.com", 900.0, 0.01, 443, 0, "ssl", "svchost.exe#telemetry",
     "telemetry", (9000, 700)),
    ("ws", 2, "time.windows.com", 3600.0, 0.0, 123, UDP, "ntp", "svchost.exe#time", "ntp", (48, 48)),
    ("srv", 2, "pool.ntp.org", 1024.0, 0.0, 123, UDP, "ntp", "svchost.exe#time", "ntp", (48, 48)),
    ("windows", 3, "slscr.update.microsoft.com", 7200.0, 0.02, 443, 0, "ssl", "svchost.exe#update", "update",
     (2100, 6400)),
    ("datadog", 4, "app.datadoghq.com", 20.0, 0.01, 443, 0, "ssl", "datadog-agent.exe", "monitoring",
     (3800, 450)),
    ("newrelic", 4, "collector.newrelic.com", 60.0, 0.005, 443, 0, "ssl", "newrelic-infra.exe", "monitoring",
     (2500, 300)),
    ("dynatrace", 4, "xyz83612.live.dynatrace.com", 30.0, 0.01, 443, 0, "ssl", "oneagentwatchdog.exe",
     "monitoring", (1800, 260)),
    ("licence", 5, "licensing.flexnetoperations.com", 600.0, 0.0, 443, 0, "ssl", "FNPLicensingService.exe",
     "licence", (900, 1100)),
    ("backup", 6, "f001.backblazeb2.com", 3600.0, 0.15, 443, 0, "ssl", "bztransmit64.exe", "backup",
     (40_000_000, 60_000)),
)


def periodic(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    out_c, out_q = [], []
    for role, slot, name, period, jitter, port, proto_, svc, exe, kind, (bo, bi) in PERIODIC:
        devs, ts = periodic_times(sim, sim.roles[role], slot, period, jitter, t0, t1, rng)
        if not ts.size:
            continue
        dom = np.full(ts.size, sim.world.index[name])
        ttl = float(sim.world.ttl[dom[0]])
        long = kind == "backup"
        c, q = named_conns(sim, rng, devs, ts, dom, min(1.0, period / ttl), dport=port, proto=proto_,
                           svc=SVC[svc], proc=proc(exe), scen=BG[kind], bout=lognormal(rng, ts.size, bo, 0.25),
                           bin=lognormal(rng, ts.size, bi, 0.25),
                           dur=lognormal(rng, ts.size, 900.0 if long else 0.4, 0.6 if long else 0.5))
        out_c.append(c)
        out_q.append(q)
    return out_c, out_q


def p2p(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    """Resilio-style sync: inbound from public peers and outbound to public peers, long-lived."""
    hosts = sim.roles["p2p"]
    peers, peer_ports = sim.peers["p2p"], sim.peers["p2p_ports"]
    out = []
    for inbound in (True, False):
        ent, ts = poisson_times(rng, np.full(hosts.size, 25.0), t0, t1)
        devs = hosts[ent]
        pi = rng.integers(0, peers.size, ts.size)
        big = lognormal(rng, ts.size, 80_000, 2.0)
        small = lognormal(rng, ts.size, 3_000, 1.0)
        if inbound:
            c = conn(rng, ts=ts, src=peers[pi], dst=sim.org.ips[devs], dport=55555, sport=peer_ports[pi],
                     dev=devs, proc=proc("rslsync.exe"), scen=BG["p2p"], bout=small, bin=big,
                     dur=lognormal(rng, ts.size, 300, 1.5))
        else:
            c = conn(rng, ts=ts, src=sim.org.ips[devs], dst=peers[pi], dport=peer_ports[pi], sport=55555,
                     dev=devs, proc=proc("rslsync.exe"), scen=BG["p2p"], bout=big, bin=small,
                     dur=lognormal(rng, ts.size, 300, 1.5))
        out.append(c)
    return out, []


GENERATORS: tuple[tuple[int, Gen], ...] = (
    (10, browsing), (11, internal), (12, chat), (13, periodic), (14, p2p),
    (20, benign_edge.web), (21, benign_edge.web_surge), (22, benign_edge.mail), (23, benign_edge.remote_access),
    (24, benign_edge.vpn), (25, benign_edge.rproxy), (26, benign_edge.scan_noise),
    (30, benign_dns.chrome_probes), (31, benign_dns.nxdomain_noise), (32, benign_dns.av_lookups),
)


def background(sim: Sim, t0: float, t1: float) -> tuple[Frame, Frame]:
    """All background connections and lookups in [t0, t1), each generator with its own stream."""
    conns: list[Frame] = []
    lookups: list[Frame] = []
    for gen_id, gen in GENERATORS:
        c, q = gen(sim, rng_for(sim.seed, gen_id, int(t0)), t0, t1)
        conns.extend(c)
        lookups.extend(q)
    conn, dns = concat(conns, "conn"), concat(lookups, "dns")
    # bursts that would spill into the next slice are cut there, so slices never overlap in time
    return conn.take(conn["ts"] < t1), dns.take(dns["ts"] < t1)
