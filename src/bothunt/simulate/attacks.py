"""Planted attacks: C2 beacons and ORB relays (inbound floods in attacks_inbound, DNS in attacks_dns).

Each scenario is a small dataclass of parameters. `generate(sim, code)` returns a `Planted`: its truth
record, its connections and lookups for the whole simulated span, and the remote addresses only it uses
(so its events can be told apart in any output format). Scenarios are small, so plain loops are fine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bothunt.schema import iso
from bothunt.simulate import net
from bothunt.simulate.context import DAY, Sim, lookups
from bothunt.simulate.frames import REJ, S0, SF, SVC, Frame, concat, conn, empty_dns, lognormal
from bothunt.simulate.org import PROCS, proc
from bothunt.simulate.rand import rng_for
from bothunt.simulate.truth import ALL_FORMATS, NAMED_FORMATS, TruthItem

MIN_BEACON_CONNS = 6


@dataclass
class Planted:
    truth: TruthItem
    conn: Frame
    dns: Frame
    remote: np.ndarray  # addresses used by this scenario only


def iso_ts(t: float) -> str:
    return iso(datetime.fromtimestamp(float(t), UTC)) or ""


def office(ts: np.ndarray) -> np.ndarray:
    """Weekday business hours (08:00-18:00 UTC)."""
    hour = np.mod(ts, DAY) / 3600.0
    return (np.mod(np.floor(ts / DAY) + 3, 7) < 5) & (hour >= 8) & (hour < 18)


def device_optional(sim: Sim, dev: int, proc_name: str) -> dict[str, str]:
    return {"host": sim.org.fqdn(dev), "process": PROCS[proc(proc_name)].file}


@dataclass
class Beacon:
    """An implant calling home: Cobalt-Strike-style sleep (each interval is period * (1 - jitter * U)),
    missed check-ins (dropout), optionally business hours only, optionally a C2 outage during which the
    attempts fail (S0 / REJ). A domain with several addresses that rotate per TTL is the CDN-fronted case:
    the truth is keyed on the domain then; otherwise on the address and port."""

    id: str
    victim: int
    period: float
    jitter: float = 0.0
    dropout: float = 0.0
    port: int = 443
    process: str = "msupdate.exe"
    domain: str | None = None
    addresses: int = 1
    ttl: int = 300
    business_hours: bool = False
    window: tuple[float, float] = (0.0, 1.0)  # fraction of the span
    outage: tuple[float, float] | None = None  # fraction of the active window
    service: str = "ssl"
    addrs: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))

    def register(self, sim: Sim, taken: set[int], rng: np.random.Generator) -> None:
        pool = net.CDN_16 if self.addresses > 1 else net.ATTACK_16
        self.addrs = net.draw_unique(rng, pool, self.addresses, taken)
        if self.domain:
            step = 2 if self.addresses > 1 else 1
            sim.world.add(self.domain, "attack", self.addrs, min(2, self.addresses), self.ttl, step)

    def schedule(self, rng: np.random.Generator, start: float, end: float) -> np.ndarray:
        n_max = int((end - start) / (self.period * (1 - self.jitter))) + 2
        sleeps = self.period * (1.0 - self.jitter * rng.random(n_max))
        t = start + np.concatenate([[0.0], np.cumsum(sleeps)])
        t = t[t < end]
        keep = rng.random(t.size) >= self.dropout
        if self.business_hours:
            keep &= office(t)
        return t[keep]

    def generate(self, sim: Sim, code: int) -> Planted | None:
        rng = rng_for(sim.seed, 500, code)
        a = sim.t_start + self.window[0] * sim.span + rng.uniform(0, min(self.period, 600))
        b = sim.t_start + self.window[1] * sim.span
        ts = self.schedule(rng, a, b)
        if ts.size < MIN_BEACON_CONNS:
            return None
        state = np.full(ts.size, SF)
        if self.outage:
            o0, o1 = a + self.outage[0] * (b - a), a + self.outage[1] * (b - a)
            down = (ts >= o0) & (ts < o1)
            state[down] = np.where(rng.random(int(down.sum())) < 0.6, S0, REJ)
        n = ts.size
        tasking = rng.random(n) < 0.03
        w = sim.world
        if self.domain:
            dom = np.full(n, w.index[self.domain])
            dst = w.pick(rng, dom, ts)
        else:
            dom, dst = np.full(n, -1), np.full(n, self.addrs[0])
        c = conn(rng, ts=ts, src=sim.org.ips[self.victim], dst=dst, dport=self.port, svc=SVC[self.service],
                 dev=self.victim, proc=proc(self.process), sni=dom, scen=code,
                 bout=lognormal(rng, n, 420, 0.25), bin=np.where(tasking, lognormal(rng, n, 60000, 0.5),
                                                                 lognormal(rng, n, 260, 0.3)),
                 dur=lognormal(rng, n, 0.35, 0.4), state=state)
        q = empty_dns()
        if self.domain:  # the resolver cache expires after the TTL: look the name up again
            need, last = [], -1e18
            for i, t in enumerate(ts.tolist()):
                if t - last >= self.ttl:
                    need.append(i)
                    last = t
            idx = np.asarray(need, dtype=np.int64)
            q = lookups(sim, rng, np.full(idx.size, self.victim), ts[idx], dom[idx], code)
        keyed: dict[str, Any] = {"src_ip": net.ip_text(sim.org.ips[self.victim])}
        if self.addresses > 1:
            keyed["domain"] = self.domain
            formats = NAMED_FORMATS
        else:
            keyed.update(dst_ip=net.ip_text(self.addrs[0]), dst_port=self.port)
            formats = ALL_FORMATS
        params = {"period_s": self.period, "jitter": self.jitter, "dropout": self.dropout, "port": self.port,
                  "business_hours": self.business_hours, "connections": int(n), "domain": self.domain,
                  "addresses": [net.ip_text(x) for x in self.addrs], "process": PROCS[proc(self.process)].file,
                  "cmdline": PROCS[proc(self.process)].cmdline.replace("{user}", sim.org.users[self.victim]),
                  "failed": int(np.isin(state, (S0, REJ)).sum())}
        truth = TruthItem(self.id, "attack", "beacon", "beacon", keyed, iso_ts(ts[0]), iso_ts(ts[-1]), params,
                          formats, device_optional(sim, self.victim, self.process))
        return Planted(truth, c, q, self.addrs)


@dataclass
class Relay:
    """An ORB node: an internal host accepts connections from upstream relay hops on the Internet and,
    within seconds, opens a connection to another Internet address carrying the same bytes."""

    id: str
    node: int
    listen_port: int = 443
    out_ports: tuple[int, ...] = (443,)
    sessions: int = 250
    upstream: int = 25
    downstream: int = 40
    window: tuple[float, float] = (0.2, 0.9)
    process: str = "dllhost.exe"
    up: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))
    down: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))

    def register(self, sim: Sim, taken: set[int], rng: np.random.Generator) -> None:
        self.up = net.draw_unique(rng, net.ATTACK_16, self.upstream, taken)
        self.down = net.draw_unique(rng, net.ATTACK_16, self.downstream, taken)

    def generate(self, sim: Sim, code: int) -> Planted | None:
        rng = rng_for(sim.seed, 600, code)
        a = sim.t_start + self.window[0] * sim.span
        b = sim.t_start + self.window[1] * sim.span
        ts = np.sort(rng.uniform(a, b, self.sessions))
        n = ts.size
        node_ip = sim.org.ips[self.node]
        svc = SVC["ssl"] if self.listen_port == 443 else 0
        bout, bin_ = np.maximum(lognormal(rng, n, 2500, 0.8), 400), np.maximum(lognormal(rng, n, 30000, 1.3), 600)
        dur = lognormal(rng, n, 8.0, 1.0)
        lag = rng.uniform(0.05, 2.0, n)
        pi = proc(self.process)
        inbound = conn(rng, ts=ts, src=self.up[rng.integers(0, self.up.size, n)], dst=node_ip,
                       dport=self.listen_port, svc=svc, dev=self.node, proc=pi, scen=code, bout=bout, bin=bin_,
                       dur=dur)
        ports = np.asarray(self.out_ports)[rng.integers(0, len(self.out_ports), n)]
        outbound = conn(rng, ts=ts + lag, src=node_ip, dst=self.down[rng.integers(0, self.down.size, n)],
                        dport=ports, svc=np.where(ports == 443, SVC["ssl"], 0), dev=self.node, proc=pi,
                        scen=code, bout=bout * rng.uniform(0.995, 1.02, n) + 16,
                        bin=bin_ * rng.uniform(0.98, 1.01, n), dur=np.maximum(dur - lag, 0.05))
        params = {"sessions": n, "listen_port": self.listen_port, "out_ports": list(self.out_ports),
                  "lag_s": [0.05, 2.0], "upstream": [net.ip_text(x) for x in self.up],
                  "downstream": [net.ip_text(x) for x in self.down]}
        truth = TruthItem(self.id, "attack", "relay", "relay", {"src_ip": net.ip_text(node_ip)}, iso_ts(ts[0]),
                          iso_ts(ts[-1] + lag[-1]), params, ALL_FORMATS,
                          device_optional(sim, self.node, self.process))
        return Planted(truth, concat([inbound, outbound], "conn"), empty_dns(),
                       np.concatenate([self.up, self.down]))
