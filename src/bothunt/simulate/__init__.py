"""Synthetic enterprise telemetry with planted botnet activity and ground truth.

`run()` builds an organisation and its DNS world from the seed, plans the attacks and benign traps,
then walks the span in time slices: each slice's background is generated vectorised, the planted events
of that slice are merged in, and every requested format appends the slice to its files. Memory stays
bounded by the slice size whatever the total volume. Same seed and parameters, same bytes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bothunt.errors import ConfigError
from bothunt.simulate import plan
from bothunt.simulate.benign import background
from bothunt.simulate.context import Sim, assign
from bothunt.simulate.dnsworld import build_world
from bothunt.simulate.frames import Frame, concat, dns_to_conn
from bothunt.simulate.intel import write_intel
from bothunt.simulate.org import MIN_HOSTS, build_org
from bothunt.simulate.truth import TruthItem, write_truth
from bothunt.simulate.writers import FORMATS, Chunk, make_writer

DEFAULT_START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
CHUNK_CHOICES = (3600, 1800, 1200, 900, 600, 300, 120, 60)
CHUNK_EVENTS = 400_000


@dataclass
class SimReport:
    out: Path
    seed: int
    hosts: int
    days: float
    scale: float
    formats: tuple[str, ...]
    start: str
    end: str
    events: dict[str, dict[str, int]] = field(default_factory=dict)  # format -> scenario -> conn events
    dns_events: dict[str, dict[str, int]] = field(default_factory=dict)  # format -> scenario -> lookups
    files: list[Path] = field(default_factory=list)
    truth_path: Path = Path()
    truth: list[TruthItem] = field(default_factory=list)
    elapsed_s: float = 0.0

    def total(self, fmt: str) -> int:
        return sum(self.events.get(fmt, {}).values())

    def total_dns(self, fmt: str) -> int:
        return sum(self.dns_events.get(fmt, {}).values())

    @property
    def attacks(self) -> int:
        return sum(1 for t in self.truth if t.kind == "attack")

    @property
    def traps(self) -> int:
        return sum(1 for t in self.truth if t.kind == "benign")


# Measured: connections (with the UDP/53 legs of lookups) per device and day, at scale 0 (periodic
# services, agents, perimeter noise) and per unit of scale (people); the planted attacks add ~67k.
FIXED_PER_HOST_DAY = 1420.0
SCALED_PER_HOST_DAY = 1180.0
PLANTED_EVENTS = 67_000


def estimate_conn_events(hosts: int, days: float, scale: float) -> int:
    """Roughly how many conn events a run writes to Zeek (for sizing a benchmark or warning a user)."""
    return int(hosts * days * (FIXED_PER_HOST_DAY + SCALED_PER_HOST_DAY * scale) + PLANTED_EVENTS)


def scale_for(events: int, hosts: int, days: float) -> float:
    """The scale at which a run of `hosts` devices over `days` writes about `events` conn events."""
    per_scale = hosts * days * SCALED_PER_HOST_DAY
    return max((events - PLANTED_EVENTS - hosts * days * FIXED_PER_HOST_DAY) / per_scale, 0.01)


def chunk_seconds(hosts: int, scale: float) -> int:
    """The longest slice (dividing an hour, so hourly files align) whose busiest hour stays bounded."""
    peak_per_hour = 350.0 * hosts * max(scale, 0.05) + 20_000.0 * max(scale, 1.0)
    for s in CHUNK_CHOICES:
        if peak_per_hour * s / 3600.0 <= CHUNK_EVENTS:
            return s
    return CHUNK_CHOICES[-1]


def _edges(t0: float, t1: float, step: int) -> list[float]:
    edges = [t0]
    t = (np.floor(t0 / step) + 1) * step
    while t < t1:
        edges.append(float(t))
        t += step
    edges.append(t1)
    return edges


def _merge(bg: tuple[Frame, Frame], planted: tuple[Frame, Frame], t0: float, t1: float,
           next_id: int) -> tuple[Frame, np.ndarray, Frame, np.ndarray]:
    """One slice: background + planted events, sorted, with connection ids (DNS rows share the id of
    the UDP connection they ride on, as Zeek's uid does)."""
    conn = concat([bg[0], planted[0].window(t0, t1)], "conn")
    dns = concat([bg[1], planted[1].window(t0, t1)], "dns").sorted()
    both = concat([conn, dns_to_conn(dns)], "conn")
    dns_row = np.concatenate([np.full(len(conn), -1), np.arange(len(dns))])
    order = np.argsort(both["ts"], kind="stable")
    both = both.take(order)
    dns_row = dns_row[order]
    ids = np.arange(next_id, next_id + len(both), dtype=np.uint64)
    dns_ids = np.empty(len(dns), dtype=np.uint64)
    carried = dns_row >= 0
    dns_ids[dns_row[carried]] = ids[carried]
    return both, ids, dns, dns_ids


def prepare(seed: int = 7, hosts: int = 200, days: float = 1.0, scale: float = 1.0,
            start: datetime | None = None,
            scenarios: Sequence[str] | None = None) -> tuple[Sim, list[plan.Planted], dict[str, int]]:
    """The world of a run before any background is generated: organisation, DNS world, planted items and
    the scenario code of every background kind and planted item."""
    begin = (start or DEFAULT_START).astimezone(UTC).timestamp()
    sim = Sim(seed, build_org(seed, hosts), build_world(seed), float(scale), begin, begin + days * 86400.0)
    assign(sim)
    planted, codes = plan.build(sim, scenarios)
    return sim, planted, codes


def run(out: Path, seed: int = 7, hosts: int = 200, days: float = 1.0, scale: float = 1.0,
        formats: Sequence[str] = ("zeek",), start: datetime | None = None,
        progress: Callable[[int, int], None] | None = None,
        scenarios: Sequence[str] | None = None) -> SimReport:
    """Simulate `days` of an organisation of `hosts` devices and write it in every format asked for.
    `progress(done, total)` is called after each time slice. `scenarios` plants only the attacks named by
    id (`beacon-04`) or family (`beacon`, `ssh_stuffing`, `dga`, ...): an atomic test of one detection;
    the benign background and its traps are always there."""
    began = time.perf_counter()
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"unknown simulator format(s) {unknown}; known: {', '.join(FORMATS)}")
    if hosts < MIN_HOSTS:
        raise ConfigError(f"--hosts must be at least {MIN_HOSTS}")
    if days <= 0 or scale <= 0:
        raise ConfigError("--days and --scale must be positive")
    sim, planted, codes = prepare(seed, hosts, days, scale, start, scenarios)
    names = {code: name for name, code in codes.items()}
    attack_frames = (concat([p.conn for p in planted], "conn").sorted(),
                     concat([p.dns for p in planted], "dns").sorted())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rotate = days > 1
    writers = [make_writer(f, out, sim, rotate) for f in formats]
    edges = _edges(sim.t_start, sim.t_end, chunk_seconds(hosts, scale))
    next_id = 1
    for k, (t0, t1) in enumerate(itertools.pairwise(edges)):
        conn, ids, dns, dns_ids = _merge(background(sim, t0, t1), attack_frames, t0, t1, next_id)
        next_id += len(conn)
        chunk = Chunk(sim, t0, t1, conn, ids, dns, dns_ids)
        for w in writers:
            w.write(chunk)
        del chunk, conn, dns
        if progress:
            progress(k + 1, len(edges) - 1)
    report = SimReport(out, seed, hosts, days, scale, formats, plan.iso_ts(sim.t_start), plan.iso_ts(sim.t_end))
    for w in writers:
        report.files.extend(w.close())
        report.events[w.id] = {names[c]: n for c, n in sorted(w.conn_counts.items())}
        report.dns_events[w.id] = {names[c]: n for c, n in sorted(w.dns_counts.items())}
    report.truth = [p.truth for p in planted] + plan.traps(sim)
    report.files.extend(write_intel(out))
    report.truth_path = out / "truth.jsonl"
    write_truth(report.truth_path, report.truth)
    report.files.append(report.truth_path)
    report.elapsed_s = time.perf_counter() - began
    return report


__all__ = ["DEFAULT_START", "FORMATS", "SimReport", "TruthItem", "estimate_conn_events", "prepare", "run",
           "scale_for"]
