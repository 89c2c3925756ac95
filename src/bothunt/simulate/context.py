"""What every generator needs: the organisation, the DNS world, the time span, the volume scale, and
which devices run which background software (fixed per seed, so traps are stable and listed in truth)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from bothunt.simulate import net
from bothunt.simulate.dnsworld import DnsWorld
from bothunt.simulate.frames import BG, Frame, conn, dns
from bothunt.simulate.org import RESOLVER, ROLE_DMZ, ROLE_SERVER, ROLE_WORKSTATION, Org
from bothunt.simulate.rand import mix64, rng_for

DAY = 86400.0


@dataclass
class Sim:
    seed: int
    org: Org
    world: DnsWorld
    scale: float
    t_start: float
    t_end: float
    resolver: int = net.ip(RESOLVER)
    roles: dict[str, np.ndarray] = field(default_factory=dict)
    phase: np.ndarray = field(default_factory=lambda: np.empty(0))
    rate: np.ndarray = field(default_factory=lambda: np.empty(0))
    peers: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def span(self) -> float:
        return self.t_end - self.t_start

    def dev(self, name: str) -> int:
        return self.org.named[name]


def assign(sim: Sim) -> None:
    """Decide per seed which devices run which software, their phases and activity levels."""
    rng = rng_for(sim.seed, 3)
    org = sim.org
    ws = org.of_role(ROLE_WORKSTATION)
    srv = org.of_role(ROLE_SERVER)
    windows = np.concatenate([ws, srv, org.of_role(ROLE_DMZ)])
    ws_shuffled = rng.permutation(ws)
    srv_shuffled = rng.permutation(srv)
    third = max(1, srv.size // 3)
    sim.roles = {
        "ws": ws, "srv": srv, "windows": windows,
        "teams": np.sort(ws_shuffled[: int(ws.size * 0.6)]),
        "slack": np.sort(ws_shuffled[int(ws.size * 0.6): int(ws.size * 0.85)]),
        "datadog": np.sort(srv_shuffled[:third]),
        "newrelic": np.sort(srv_shuffled[third: 2 * third]),
        "dynatrace": np.sort(srv_shuffled[2 * third:]),
        "licence": np.sort(np.concatenate([ws_shuffled[-3:], srv_shuffled[-1:]])),
        "p2p": np.sort(ws_shuffled[-5:-3]),
        "backup": np.sort(srv_shuffled[:2]),
        "misconfigured": np.sort(np.concatenate([ws_shuffled[-8:-5], srv_shuffled[-2:-1]])),
        "file_servers": np.sort(srv_shuffled[-3:]),
        "backends": np.sort(srv_shuffled[2:4]),
    }
    # a per-device phase in [0, 1) for periodic services and a per-device activity level
    sim.phase = rng.random((org.size, 16))
    sim.rate = rng.lognormal(0.0, 0.45, org.size)
    sim.peers = {
        "p2p": net.draw(rng, net.CLIENT_16, 40),
        "p2p_ports": rng.integers(20000, 60000, 40),
        "mta": net.draw(rng, net.CLIENT_16, 300),
        "admins": net.draw(rng, net.CLIENT_16, 5),
        "remote_workers": net.draw(rng, net.CLIENT_16, 25),
        "vpn_users": net.draw(rng, net.CLIENT_16, 15),
    }


def activity(ts: np.ndarray) -> np.ndarray:
    """Relative human activity in [0, 1] for UTC times: weekday office hours with a lunch dip."""
    hour = np.mod(ts, DAY) / 3600.0
    weekday = np.mod(np.floor(ts / DAY) + 3, 7) < 5  # 1970-01-01 was a Thursday
    office = np.where((hour >= 8) & (hour < 18), np.where((hour >= 12) & (hour < 13), 0.6, 1.0), 0.0)
    ramp = np.where((hour >= 7) & (hour < 8), hour - 7, 0.0) + np.where((hour >= 18) & (hour < 20),
                                                                         (20 - hour) / 2 * 0.5, 0.0)
    evening = np.where((hour >= 20) & (hour < 23), 0.08, 0.0)
    day = np.maximum(np.maximum(office, ramp), np.maximum(evening, 0.02))
    return np.where(weekday, day, day * 0.06)


def poisson_times(rng: np.random.Generator, rates: np.ndarray, t0: float, t1: float,
                  shape: str = "flat") -> tuple[np.ndarray, np.ndarray]:
    """Event times for entities with per-hour `rates`, thinned by the diurnal curve when shape='human'
    (rates are then the office-hours peak) or by 0.3 + 0.7 * activity when shape='public'."""
    counts = rng.poisson(np.asarray(rates, dtype=np.float64) * (t1 - t0) / 3600.0)
    ent = np.repeat(np.arange(counts.size), counts)
    ts = t0 + rng.random(ent.size) * (t1 - t0)
    if shape != "flat":
        a = activity(ts)
        keep = rng.random(ts.size) < (a if shape == "human" else 0.3 + 0.7 * a)
        ent, ts = ent[keep], ts[keep]
    return ent, ts


def periodic_times(sim: Sim, devs: np.ndarray, slot: int, period: float, jitter: float,
                   t0: float, t1: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Times k*period + phase (+ small normal jitter, a fraction of the period) that fall in [t0, t1)."""
    ph = sim.phase[devs, slot] * period
    margin = 2.0 * jitter * period
    k0 = np.ceil((t0 - margin - ph) / period).astype(np.int64)
    k1 = np.ceil((t1 + margin - ph) / period).astype(np.int64)
    counts = np.maximum(k1 - k0, 0)
    idx = np.repeat(np.arange(devs.size), counts)
    k = np.repeat(k0, counts) + (np.arange(idx.size) - np.repeat(np.cumsum(counts) - counts, counts))
    # the jitter of check-in k of a device is fixed by (device, slot, k), so whichever slice an event
    # lands in after jitter it is generated exactly once
    key = (devs[idx].astype(np.uint64) << np.uint64(40)) ^ (np.uint64(slot) << np.uint64(34)) ^ k.astype(np.uint64)
    u = (mix64(key ^ np.uint64(sim.seed)) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    ts = ph[idx] + k * period + (2 * u - 1) * np.sqrt(3.0) * jitter * period
    keep = (ts >= t0) & (ts < t1)
    return devs[idx][keep], ts[keep]


def named_conns(sim: Sim, rng: np.random.Generator, devs: np.ndarray, ts: np.ndarray, dom: np.ndarray,
                lookup_p: np.ndarray | float, **kw) -> tuple[Frame, Frame]:  # type: ignore[no-untyped-def]
    """Connections to DNS names (the address is one the name resolves to at that time) and, with
    probability `lookup_p` per connection (a cache miss), the lookup just before it."""
    dst = sim.world.pick(rng, dom, ts)
    c = conn(rng, ts=ts, src=sim.org.ips[devs], dst=dst, dev=devs, sni=dom, **kw)
    look = rng.random(ts.size) < lookup_p
    return c, lookups(sim, rng, devs[look], ts[look], dom[look], kw["scen"])


def lookups(sim: Sim, rng: np.random.Generator, devs: np.ndarray, ts: np.ndarray, dom: np.ndarray,
            scen: int, qtype: int = 1) -> Frame:
    ok = np.ones(ts.size, dtype=bool)
    answers, ttls = sim.world.answers(dom, ts, ok)
    before = np.maximum(ts - rng.uniform(0.005, 0.08, ts.size), sim.t_start)
    return dns(rng, ts=before, src=sim.org.ips[devs], dst=sim.resolver,
               query=sim.world.names_arr.take(pa.array(dom)), qtype=qtype, rcode=0, answers=answers,
               ttls=ttls, dev=devs, scen=scen)


__all__ = ["BG", "DAY", "Sim", "activity", "assign", "lookups", "named_conns", "periodic_times",
           "poisson_times"]
