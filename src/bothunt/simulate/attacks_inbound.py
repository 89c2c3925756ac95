"""Planted inbound attacks on the public-facing services: HTTP flood, SSH / RDP credential stuffing (fast,
and low-and-slow spread over hours below per-5-minute thresholds), a spam burst, a single-source SSH
brute force and a single-source port sweep."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from bothunt.simulate import net
from bothunt.simulate.attacks import Planted, iso_ts
from bothunt.simulate.benign_edge import reversed_name
from bothunt.simulate.context import Sim
from bothunt.simulate.frames import REJ, RSTO, S0, SF, SVC, conn, dns, empty_dns, lognormal
from bothunt.simulate.org import DMZ_SERVICES, proc
from bothunt.simulate.rand import rng_for
from bothunt.simulate.truth import ALL_FORMATS, TruthItem

BIN_S = 300.0

# per target service: (Zeek service, bytes out, bytes in, duration)
PROFILES = {
    "http": ("http", 380, 2400, 0.3),
    "ssh": ("ssh", 2200, 2900, 3.0),
    "rdp": ("rdp", 3100, 4200, 2.5),
    "smtp": ("smtp", 9000, 600, 1.2),
}


def bin_peaks(ts: np.ndarray, src: np.ndarray) -> tuple[int, int]:
    """Most distinct sources and most requests seen in any 5-minute bin."""
    if ts.size == 0:
        return 0, 0
    b = np.floor(ts / BIN_S).astype(np.int64)
    per_bin = np.unique(b, return_counts=True)[1]
    pairs = np.unique(np.stack([b, src.astype(np.int64)]), axis=1)
    sources = np.unique(pairs[0], return_counts=True)[1]
    return int(sources.max()), int(per_bin.max())


def listener(dev_name: str) -> str:
    return next(p for n, _, p, _ in DMZ_SERVICES if n == dev_name)


@dataclass
class InboundFlood:
    """Many requests to one service. `per_source` fixed attempts per source spread over the window with
    the attempts of one source far apart (low-and-slow), or Poisson(`per_source`) attempts at random
    times (fast). One source makes it a single-source brute force."""

    id: str
    scenario: str
    target: str  # DMZ device name
    port: int
    profile: str
    sources: int
    per_source: float
    duration: float  # seconds
    at: float  # start as a fraction of the span
    low_and_slow: bool = False
    addrs: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))

    def register(self, sim: Sim, taken: set[int], rng: np.random.Generator) -> None:
        self.addrs = net.draw_unique(rng, net.ATTACK_16, self.sources, taken)

    def times(self, rng: np.random.Generator, a: float) -> tuple[np.ndarray, np.ndarray]:
        if self.low_and_slow:
            n = int(self.sources * self.per_source)
            ts = np.sort(rng.uniform(a, a + self.duration, n))
            src = np.tile(rng.permutation(self.sources), int(self.per_source))[:n]
            return ts, src
        counts = np.maximum(rng.poisson(self.per_source, self.sources), 1)
        src = np.repeat(np.arange(self.sources), counts)
        ts = rng.uniform(a, a + self.duration, src.size)
        order = np.argsort(ts)
        return ts[order], src[order]

    def generate(self, sim: Sim, code: int) -> Planted | None:
        a = sim.t_start + self.at * sim.span
        if a + self.duration > sim.t_end:
            return None
        rng = rng_for(sim.seed, 700, code)
        ts, si = self.times(rng, a)
        n = ts.size
        svc, bo, bi, du = PROFILES[self.profile]
        dev = sim.dev(self.target)
        state = np.where(rng.random(n) < 0.9, SF, RSTO)
        sni = sim.world.index["www.corp-example.com"] if self.profile == "http" else -1
        src = self.addrs[si]
        c = conn(rng, ts=ts, src=src, dst=sim.org.ips[dev], dport=self.port, svc=SVC[svc], dev=dev,
                 proc=proc(listener(self.target)), sni=sni, scen=code, bout=lognormal(rng, n, bo, 0.2),
                 bin=lognormal(rng, n, bi, 0.2), dur=lognormal(rng, n, du, 0.4), state=state)
        q = empty_dns()
        if self.profile == "smtp":  # the mail server checks every sender against a DNSBL
            listed = rng.random(n) < 0.6
            off = pa.array(np.concatenate([[0], np.cumsum(listed)]).astype(np.int32))
            k = int(listed.sum())
            q = dns(rng, ts=ts + 0.1, src=sim.org.ips[dev], dst=sim.resolver,
                    query=reversed_name(src, "zen.spamhaus.org"), qtype=1, rcode=np.where(listed, 0, 3),
                    answers=pa.ListArray.from_arrays(off, pa.array(np.full(k, "127.0.0.4"))),
                    ttls=pa.ListArray.from_arrays(off, pa.array(np.full(k, 300.0))), dev=dev, scen=code)
        peak_src, peak_req = bin_peaks(ts, si)
        params = {"sources": self.sources, "requests": int(n), "duration_s": self.duration,
                  "category": "single_source" if self.sources == 1 else "distributed",
                  "low_and_slow": self.low_and_slow, "max_sources_per_5min": peak_src,
                  "max_requests_per_5min": peak_req, "service": svc}
        if self.sources == 1:
            params["src_ip"] = net.ip_text(self.addrs[0])
        match = {"dst_ip": net.ip_text(sim.org.ips[dev]), "dst_port": self.port}
        truth = TruthItem(self.id, "attack", self.scenario, "inbound_flood", match, iso_ts(ts[0]),
                          iso_ts(ts[-1]), params, ALL_FORMATS)
        return Planted(truth, c, q, self.addrs)


@dataclass
class PortSweep:
    """One source probes ports 1..N of one exposed host in a few minutes; closed ports answer RST or
    nothing. Defender logs only accepted inbound connections, so it cannot see the sweep."""

    id: str
    target: str
    ports: int = 1024
    duration: float = 180.0
    at: float = 0.35
    addrs: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))

    def register(self, sim: Sim, taken: set[int], rng: np.random.Generator) -> None:
        self.addrs = net.draw_unique(rng, net.ATTACK_16, 1, taken)

    def generate(self, sim: Sim, code: int) -> Planted | None:
        a = sim.t_start + self.at * sim.span
        if a + self.duration > sim.t_end:
            return None
        rng = rng_for(sim.seed, 710, code)
        ports = rng.permutation(np.arange(1, self.ports + 1))
        ts = np.sort(rng.uniform(a, a + self.duration, ports.size))
        dev = sim.dev(self.target)
        open_ports = next(p for n, _, _, p in DMZ_SERVICES if n == self.target)
        is_open = np.isin(ports, open_ports)
        state = np.where(is_open, SF, np.where(rng.random(ports.size) < 0.7, REJ, S0))
        c = conn(rng, ts=ts, src=self.addrs[0], dst=sim.org.ips[dev], dport=ports, dev=dev,
                 proc=np.where(is_open, proc(listener(self.target)), -1), scen=code, state=state,
                 bout=np.zeros(ports.size), bin=np.where(is_open, 60, 0), dur=np.where(is_open, 0.05, 0.0),
                 sport=np.full(ports.size, int(rng.integers(40000, 65000))))
        params = {"ports": self.ports, "duration_s": self.duration, "category": "single_source",
                  "src_ip": net.ip_text(self.addrs[0]), "open": [int(p) for p in open_ports]}
        truth = TruthItem(self.id, "attack", "port_sweep", "inbound_flood",
                          {"dst_ip": net.ip_text(sim.org.ips[dev])}, iso_ts(ts[0]), iso_ts(ts[-1]), params,
                          ("zeek", "zeek-json", "cef", "suricata"))
        return Planted(truth, c, empty_dns(), self.addrs)
