"""Benign DNS that looks like DGA or tunnelling: Chrome's random single-label probes at browser start,
misconfigured hosts appending search suffixes (steady NXDOMAIN noise), and anti-virus reputation lookups
that encode file hashes in names (DNSBL and reverse lookups come with mail and web in benign_edge)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.simulate.context import BG, DAY, Sim, poisson_times
from bothunt.simulate.frames import Frame, dns, strings
from bothunt.simulate.rand import HEX, LOWER, random_strings

CHROME_PROBE_LEN = 10
MISCONFIGURED_NAMES = (
    "intranet.corp.example.com.corp.local", "wpad.corp.local", "fileserver.corp.example.com.corp.example.com",
    "printer01.corp.example.com.corp.local", "isatap.corp.local", "sharepoint.corp.example.com.corp.local",
    "proxy.corp.local", "dc-01.corp.example.com.corp.local",
)
AV_SUFFIX = "p.sophosxl.net"


def browser_starts(sim: Sim, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    """(device, time) of browser starts: each weekday morning, and on some afternoons again."""
    ws = sim.roles["ws"]
    days = np.arange(np.floor(t0 / DAY) * DAY, t1, DAY)
    morning = days[:, None] + 7.8 * 3600 + sim.phase[ws, 7][None, :] * 5400
    afternoon = days[:, None] + 13 * 3600 + sim.phase[ws, 8][None, :] * 10800
    again = np.broadcast_to(sim.phase[ws, 9][None, :] < 0.5, afternoon.shape)
    ts = np.concatenate([morning.ravel(), afternoon[again].ravel()])
    dev = np.concatenate([np.tile(ws, days.size), np.broadcast_to(ws, afternoon.shape)[again].ravel()])
    weekday = np.mod(np.floor(ts / DAY) + 3, 7) < 5
    keep = (ts >= t0) & (ts < t1) & weekday
    return dev[keep], ts[keep]


def chrome_probes(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    dev, ts = browser_starts(sim, t0, t1)
    dev, ts = np.repeat(dev, 3), np.repeat(ts, 3) + np.tile([0.0, 0.004, 0.009], ts.size)
    names = strings(random_strings(rng, ts.size, CHROME_PROBE_LEN, LOWER))
    return [], [dns(rng, ts=ts, src=sim.org.ips[dev], dst=sim.resolver, query=names, qtype=1, rcode=3,
                    answers=None, ttls=None, dev=dev, scen=BG["chrome_probe"])]


def nxdomain_noise(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    devs = sim.roles["misconfigured"]
    ent, ts = poisson_times(rng, np.full(devs.size, 40.0), t0, t1)
    names = pa.array(MISCONFIGURED_NAMES).take(pa.array(rng.integers(0, len(MISCONFIGURED_NAMES), ts.size)))
    d = devs[ent]
    return [], [dns(rng, ts=ts, src=sim.org.ips[d], dst=sim.resolver, query=names,
                    qtype=np.where(rng.random(ts.size) < 0.5, 1, 28), rcode=3, answers=None, ttls=None, dev=d,
                    scen=BG["nxdomain"])]


def av_lookups(sim: Sim, rng: np.random.Generator, t0: float, t1: float) -> tuple[list[Frame], list[Frame]]:
    """File-reputation lookups: a hash per file, many unique high-entropy labels under one domain."""
    ws = sim.roles["ws"]
    ent, ts = poisson_times(rng, 6.0 * sim.scale * sim.rate[ws], t0, t1, "human")
    d = ws[ent]
    hashes = strings(random_strings(rng, ts.size, 32, HEX))
    names = pc.binary_join_element_wise(hashes, pa.scalar(AV_SUFFIX), ".")
    n = ts.size
    offsets = pa.array(np.arange(n + 1, dtype=np.int32))
    answers = pa.ListArray.from_arrays(offsets, pa.array(np.full(n, "127.0.0.1")))
    ttls = pa.ListArray.from_arrays(offsets, pa.array(np.full(n, 300.0)))
    return [], [dns(rng, ts=ts, src=sim.org.ips[d], dst=sim.resolver, query=names, qtype=1, rcode=0,
                    answers=answers, ttls=ttls, dev=d, scen=BG["av_lookup"])]
