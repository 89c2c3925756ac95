"""Planted DNS attacks: DGA bots (random-character and dictionary-word names), DNS tunnelling through many
unique long high-entropy subdomains (TXT heavy), and a fast-flux C2 domain."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.simulate import net
from bothunt.simulate.attacks import Planted, device_optional, iso_ts
from bothunt.simulate.context import Sim, lookups
from bothunt.simulate.frames import SVC, Frame, concat, conn, dns, empty_conn, lognormal, strings
from bothunt.simulate.org import proc
from bothunt.simulate.rand import BASE32, LOWER, random_strings, rng_for
from bothunt.simulate.truth import DNS_FORMATS, TruthItem

DGA_TLDS = ("com", "net", "org", "info", "biz", "ru", "top")
# Not the words the benign long tail is built from, so a dictionary-DGA name never collides with one.
DGA_WORDS = (
    "ability", "account", "advice", "amount", "answer", "article", "basket", "battle", "bottle", "branch",
    "bridge", "brother", "button", "camera", "candle", "castle", "chance", "cheese", "circle", "copper",
    "corner", "cotton", "couple", "danger", "desert", "dinner", "doctor", "dragon", "engine", "fabric",
    "father", "finger", "flower", "friend", "future", "garage", "ground", "guitar", "hammer", "island",
    "jacket", "jungle", "kettle", "ladder", "lesson", "letter", "manner", "marble", "master", "meadow",
    "mirror", "monkey", "mother", "needle", "number", "orange", "parrot", "pencil", "pepper", "picture",
    "planet", "pocket", "powder", "rabbit", "ribbon", "rocket", "saddle", "season", "shadow", "silence",
    "spirit", "spring", "square", "summer", "sunset", "system", "temple", "thunder", "ticket", "timber",
    "tongue", "valley", "velvet", "window", "winter", "wonder", "yellow", "zipper",
)


def entropy(label: str) -> float:
    _, counts = np.unique(np.frombuffer(label.encode(), dtype=np.uint8), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


@dataclass
class Dga:
    """Bursts of lookups of generated names, nearly all NXDOMAIN; in one burst a name resolves and the
    bot then connects to it a few times, irregularly."""

    id: str
    victim: int
    style: str  # "random" | "dict"
    bursts: int = 10
    burst_size: tuple[int, int] = (40, 120)
    interval: float = 7200.0
    at: float = 0.05
    resolve_burst: int = 2
    process: str = "taskhostw.exe"
    names: list[list[str]] = field(default_factory=list)
    resolved: str = ""
    addrs: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))

    def _name(self, rng: np.random.Generator) -> str:
        if self.style == "random":
            label = random_strings(rng, 1, int(rng.integers(12, 21)), LOWER)[0].decode()
            return f"{label}.{DGA_TLDS[rng.integers(len(DGA_TLDS))]}"
        a, b = rng.choice(len(DGA_WORDS), 2, replace=False)
        return f"{DGA_WORDS[a]}{DGA_WORDS[b]}.{('com', 'net')[rng.integers(2)]}"

    def register(self, sim: Sim, taken: set[int], rng: np.random.Generator) -> None:
        seen: set[str] = set(sim.world.index)
        for _ in range(self.bursts):
            burst: list[str] = []
            while len(burst) < int(rng.integers(*self.burst_size)):
                name = self._name(rng)
                if name not in seen:
                    seen.add(name)
                    burst.append(name)
            self.names.append(burst)
        self.addrs = net.draw_unique(rng, net.ATTACK_16, 1, taken)
        if self.resolve_burst < self.bursts:
            burst = self.names[self.resolve_burst]
            self.resolved = burst[len(burst) // 2]
            sim.world.add(self.resolved, "attack", self.addrs, 1, 300)

    def generate(self, sim: Sim, code: int) -> Planted | None:
        rng = rng_for(sim.seed, 800, code)
        a = sim.t_start + self.at * sim.span
        starts = a + np.arange(self.bursts) * self.interval + rng.uniform(0, 300, self.bursts)
        keep = [i for i in range(self.bursts) if starts[i] + 120 < sim.t_end]
        if len(keep) < 2:
            return None
        frames: list[Frame] = []
        conns = empty_conn()
        ip = sim.org.ips[self.victim]
        for i in keep:  # per burst
            names = self.names[i]
            ts = starts[i] + np.sort(rng.uniform(0, 40, len(names)))
            hit = np.asarray([n == self.resolved for n in names])
            off = pa.array(np.concatenate([[0], np.cumsum(hit)]).astype(np.int32))
            frames.append(dns(rng, ts=ts, src=ip, dst=sim.resolver, query=pa.array(names), qtype=1,
                              rcode=np.where(hit, 0, 3),
                              answers=pa.ListArray.from_arrays(off, pa.array([net.ip_text(self.addrs[0])] *
                                                                             int(hit.sum()), pa.string())),
                              ttls=pa.ListArray.from_arrays(off, pa.array(np.full(int(hit.sum()), 300.0))),
                              dev=self.victim, scen=code))
            if hit.any():
                t = ts[hit][0] + np.sort(rng.uniform(1, 7200, 8))
                t = t[t < sim.t_end]
                conns = conn(rng, ts=t, src=ip, dst=self.addrs[0], dport=443, svc=SVC["ssl"], dev=self.victim,
                             proc=proc(self.process), sni=sim.world.index[self.resolved], scen=code)
        q = concat(frames, "dns")
        rcode = np.asarray(q["rcode"])
        params = {"style": self.style, "bursts": len(keep), "lookups": len(q),
                  "nxdomain_ratio": round(float((rcode == 3).mean()), 4), "resolved": self.resolved or None,
                  "resolved_ip": net.ip_text(self.addrs[0]) if self.resolved else None,
                  "examples": self.names[keep[0]][:5]}
        truth = TruthItem(self.id, "attack", f"dga_{self.style}", "dga", {"src_ip": net.ip_text(ip)},
                          iso_ts(q["ts"].min()), iso_ts(q["ts"].max()), params, DNS_FORMATS,
                          device_optional(sim, self.victim, self.process))
        return Planted(truth, conns, q, self.addrs)


@dataclass
class DnsTunnel:
    """Data carried out in DNS: every query a new long base32 name under one domain, mostly TXT."""

    id: str
    victim: int
    domain: str = "cloudsyncmetrics.com"
    rate: float = 0.5  # queries per second
    duration: float = 3 * 3600.0
    at: float = 0.55
    addrs: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))

    def register(self, sim: Sim, taken: set[int], rng: np.random.Generator) -> None:
        self.addrs = net.draw_unique(rng, net.ATTACK_16, 1, taken)

    def generate(self, sim: Sim, code: int) -> Planted | None:
        a = sim.t_start + self.at * sim.span
        b = min(a + self.duration, sim.t_end)
        rng = rng_for(sim.seed, 810, code)
        n = rng.poisson(self.rate * (b - a))
        if n < 50:
            return None
        ts = np.sort(rng.uniform(a, b, n))
        seq = pc.utf8_lpad(pa.array(np.arange(n)).cast(pa.string()), 5, "0")
        l1 = strings(random_strings(rng, n, 52, BASE32))
        l2 = strings(random_strings(rng, n, 30, BASE32))
        names = pc.binary_join_element_wise(pc.binary_join_element_wise(seq, l1, ""), l2, pa.scalar("t"),
                                            pa.scalar(self.domain), ".")
        qtype = np.where(rng.random(n) < 0.75, 16, np.where(rng.random(n) < 0.6, 1, 5))
        off = pa.array(np.arange(n + 1, dtype=np.int32))
        txt = strings(random_strings(rng, n, 96, BASE32))
        cname = pc.binary_join_element_wise(strings(random_strings(rng, n, 40, BASE32)), pa.scalar(self.domain), ".")
        answer = pc.if_else(pa.array(qtype == 16), txt,
                            pc.if_else(pa.array(qtype == 1), pa.scalar(net.ip_text(self.addrs[0])), cname))
        q = dns(rng, ts=ts, src=sim.org.ips[self.victim], dst=sim.resolver, query=names, qtype=qtype, rcode=0,
                answers=pa.ListArray.from_arrays(off, answer),
                ttls=pa.ListArray.from_arrays(off, pa.array(np.zeros(n))), dev=self.victim, scen=code)
        sample = l1.to_pylist()[:200]
        params = {"queries": int(n), "unique_names": int(n), "txt_share": round(float((qtype == 16).mean()), 4),
                  "mean_query_length": float(np.mean(pc.utf8_length(names).to_numpy())),
                  "mean_label_entropy": round(float(np.mean([entropy(s) for s in sample])), 3)}
        truth = TruthItem(self.id, "attack", "dns_tunnel", "dns_c2",
                          {"src_ip": net.ip_text(sim.org.ips[self.victim]), "domain": self.domain},
                          iso_ts(ts[0]), iso_ts(ts[-1]), params, DNS_FORMATS)
        return Planted(truth, empty_conn(), q, self.addrs)


@dataclass
class FastFlux:
    """A C2 name with a short TTL whose answers rotate through many addresses in many networks."""

    id: str
    victims: tuple[int, ...]
    domain: str = "secure-docs-portal.top"
    addresses: int = 150
    answers: int = 6
    ttl: int = 120
    lookups_per_hour: float = 6.0
    window: tuple[float, float] = (0.1, 0.9)
    addrs: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))

    def register(self, sim: Sim, taken: set[int], rng: np.random.Generator) -> None:
        self.addrs = net.draw_unique(rng, net.ATTACK_16, self.addresses, taken)
        sim.world.add(self.domain, "attack", self.addrs, self.answers, self.ttl, step=self.answers)

    def generate(self, sim: Sim, code: int) -> Planted | None:
        rng = rng_for(sim.seed, 820, code)
        a = sim.t_start + self.window[0] * sim.span
        b = sim.t_start + self.window[1] * sim.span
        v = np.asarray(self.victims)
        counts = rng.poisson(self.lookups_per_hour * (b - a) / 3600.0, v.size)
        devs = np.repeat(v, counts)
        ts = rng.uniform(a, b, devs.size)
        order = np.argsort(ts)
        devs, ts = devs[order], ts[order]
        if ts.size < 6:
            return None
        dom = np.full(ts.size, sim.world.index[self.domain])
        q = lookups(sim, rng, devs, ts, dom, code)
        go = rng.random(ts.size) < 0.5
        c = conn(rng, ts=ts[go] + 0.1, src=sim.org.ips[devs[go]], dst=sim.world.pick(rng, dom[go], ts[go]),
                 dport=443, svc=SVC["ssl"], dev=devs[go], proc=proc("rundll32.exe"), sni=dom[go], scen=code,
                 bout=lognormal(rng, int(go.sum()), 500, 0.3), bin=lognormal(rng, int(go.sum()), 3000, 0.5))
        nets = len({int(x) >> 16 for x in self.addrs.tolist()})
        params = {"ttl": self.ttl, "addresses": self.addresses, "networks_16": nets,
                  "answers_per_lookup": self.answers, "lookups": int(ts.size), "connections": len(c),
                  "victims": [net.ip_text(sim.org.ips[d]) for d in self.victims]}
        truth = TruthItem(self.id, "attack", "fast_flux", "dns_c2", {"domain": self.domain}, iso_ts(ts[0]),
                          iso_ts(ts[-1]), params, DNS_FORMATS)
        return Planted(truth, c, q, self.addrs)


__all__ = ["DGA_WORDS", "Dga", "DnsTunnel", "FastFlux", "device_optional", "entropy"]
