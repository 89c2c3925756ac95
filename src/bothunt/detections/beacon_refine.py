"""The numpy half of the beacon detection: candidate pairs' timestamps in, calibrated scores out.

All candidate pairs are tested at once with segment operations (bothunt.periodicity); only pairs that
pass the cheap interval test and have enough check-ins go on to the phase search, which costs a few
dozen passes over their events. The pairs are refined in slices of about SLICE_EVENTS connections, one
thread per core as the engine's group-by uses every core (numpy releases the GIL in its array loops).
Slices also keep every temporary array small enough to be reused rather than freshly mapped: at ten
million events, fresh memory costs as much as the arithmetic. Every pair still gets exactly the numbers
of a single pass over all events.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt import periodicity as per

if TYPE_CHECKING:
    from bothunt.detections.beacon import Params

# Connections per slice: a few MB per array, which the allocator recycles and caches hold. Each slice
# also pays for arrays over the pairs before it (pair numbers stay global), hence the cap.
SLICE_EVENTS = 600_000
MAX_SLICES = 32
STAT_FIELDS = ("intervals", "median", "q1", "q3", "bowley", "width", "period", "p_value")
PHASE_FIELDS = ("period", "resultant", "fap", "trials")


class Stats(per.IntervalStats):
    """Interval statistics whose derived arrays are computed once: reports read them per finding."""

    jitter = cached_property(per.IntervalStats.jitter.fget)  # type: ignore[assignment]
    regularity = cached_property(per.IntervalStats.regularity.fget)  # type: ignore[assignment]


@dataclass(frozen=True)
class Scored:
    """Per candidate pair (arrays aligned with `pairs`, sorted by the normalised pair keys)."""

    pairs: pa.Table  # KEYS (normalised), n, t_first, t_last (microseconds)
    raw_keys: pa.Table  # the engine's raw KEYS of every pair, with `pair` (its row in `pairs`)
    beats: np.ndarray  # check-ins after merging bursts
    stats: Stats
    phase_tested: np.ndarray  # bool
    phase_period: np.ndarray
    phase_resultant: np.ndarray
    phase_fap: np.ndarray
    phase_trials: np.ndarray
    p_value: np.ndarray  # combined
    regularity: np.ndarray
    confidence: np.ndarray
    score: np.ndarray  # regularity x confidence (before byte support and modifiers)
    periodic: np.ndarray  # bool: passes max_p_value, min_regularity and min_connections

    @property
    def size(self) -> int:
        return self.pairs.num_rows


@dataclass(frozen=True)
class Events:
    """Candidate pairs' connection times, cut into slices of whole pairs (contiguous pair numbers).

    Every slice builds the same composite sort key (pair number in the high bits, microseconds since
    `origin` shifted right by `shift` in the low `bits`), so slicing never changes a time's rounding."""

    slices: list[tuple[int, int, pa.Array, np.ndarray]]  # first pair, end pair, list<ts> per row, row's pair
    origin: int
    shift: int
    bits: int

    def sorted(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Slice i's events sorted by (pair, time): global pair numbers and seconds since `origin`."""
        lists, row_pair = self.slices[i][2], self.slices[i][3]
        t_us, lengths = _times_us(lists)
        key = np.repeat(row_pair << self.bits, lengths)
        t_us -= self.origin
        t_us >>= self.shift
        key |= t_us
        key.sort()
        np.right_shift(key, self.bits, out=t_us)  # t_us's memory now holds the sorted pair numbers
        key &= (1 << self.bits) - 1
        key <<= self.shift
        return t_us, np.divide(key, 1e6, out=np.empty(key.size))


def normalise(raw: pa.Table) -> pa.Table:
    """Keys compared the way people read them: process file names and destination names lower-case
    (Windows and DNS are case-insensitive), process paths cut to the file name, no trailing dot."""
    pk = pc.replace_substring_regex(pc.utf8_lower(raw["pk"]), r"^.*[\\/]", "")
    dk = pc.replace_substring_regex(pc.utf8_lower(raw["dk"]), r"\.$", "")
    return pa.table({"hk": raw["hk"], "pk": pk, "sk": raw["sk"], "dk": dk})


def _times_us(lists: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Flattened list<timestamp> as int64 microseconds (a writable copy the caller may change in place),
    and list lengths."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks() if lists.num_chunks else pa.array([], pa.list_(pa.timestamp("us")))
    return _flat_us(lists).to_numpy(zero_copy_only=False).astype(np.int64), _lengths(lists)


def _flat_us(lists: pa.Array) -> pa.Array:
    """The values of list<timestamp> as int64 microseconds (UTC on both engines)."""
    flat = pc.list_flatten(lists)
    if pa.types.is_timestamp(flat.type):
        flat = flat.cast(pa.timestamp("us", tz=flat.type.tz)).cast(pa.int64())
    return flat


def _lengths(lists: pa.Array) -> np.ndarray:
    return pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)


def flatten(cand: pa.Table, min_span_s: float) -> tuple[pa.Table, pa.Table, Events]:
    """Merge raw engine keys that normalise alike into pairs (sorted by key: the same pair index on every
    engine), drop pairs spanning less than `min_span_s`, and cut their times into slices of whole pairs
    with about SLICE_EVENTS connections each."""
    norm = normalise(cand)
    joined = pc.binary_join_element_wise(norm["hk"], norm["pk"], norm["sk"], norm["dk"], "\x1f")
    # Dense ranks of the joined keys in byte order, which for UTF-8 is code point order (Python's str
    # order): pair numbers sorted by key, without a Python sort of hundreds of thousands of strings.
    gid = pc.rank(joined, sort_keys="ascending", tiebreaker="dense").to_numpy(zero_copy_only=False)
    gid = gid.astype(np.int64) - 1
    ng = int(gid.max()) + 1 if gid.size else 0
    t_first = _scalar_us(cand["t_first"])
    t_last = _scalar_us(cand["t_last"])
    n = np.bincount(gid, cand["n"].to_numpy().astype(np.int64), minlength=ng).astype(np.int64)
    lo = np.full(ng, np.iinfo(np.int64).max)
    hi = np.full(ng, np.iinfo(np.int64).min)
    np.minimum.at(lo, gid, t_first)
    np.maximum.at(hi, gid, t_last)
    keep = (hi - lo) >= int(min_span_s * 1e6)
    new_id = np.cumsum(keep) - 1
    rows = np.flatnonzero(keep[gid])
    order = np.unique(gid[rows], return_index=True)[1]
    firsts = rows[order]
    pairs = norm.take(pa.array(firsts)).append_column("n", pa.array(n[keep])).append_column(
        "t_first", pa.array(lo[keep])).append_column("t_last", pa.array(hi[keep]))
    pair_of_row = new_id[gid[rows]]
    raw = cand.select(["hk", "pk", "sk", "dk"]).take(pa.array(rows)).append_column(
        "pair", pa.array(pair_of_row, pa.int64()))
    return pairs, raw, _events(cand["ts"], rows, pair_of_row, pairs.num_rows)


def _events(ts: pa.ChunkedArray, rows: np.ndarray, pair_of_row: np.ndarray, npairs: int) -> Events:
    """The kept rows' time lists, in slices of whole pairs, with the composite key layout of all events
    (the origin and rounding that one sort of every event would use)."""
    lists = ts.combine_chunks() if ts.num_chunks else pa.array([], pa.list_(pa.timestamp("us", tz="UTC")))
    by_pair = np.argsort(pair_of_row, kind="stable")
    rows, pair_of_row = rows[by_pair], pair_of_row[by_pair]
    lengths = _lengths(lists)[rows]
    ends = np.cumsum(np.bincount(pair_of_row, lengths, minlength=npairs))
    total = int(ends[-1]) if npairs else 0
    count = min(max(-(-total // SLICE_EVENTS), 1), MAX_SLICES)
    cuts = np.unique(np.searchsorted(ends, (np.arange(1, count) * total) // count, side="right"))
    bounds = np.concatenate([[0], cuts[(cuts > 0) & (cuts < npairs)], [npairs]]).astype(np.int64)
    row_bounds = np.searchsorted(pair_of_row, bounds)
    slices, lo, hi, last = [], None, None, -1
    for i in range(bounds.size - 1):
        r = slice(int(row_bounds[i]), int(row_bounds[i + 1]))
        part = lists.take(pa.array(rows[r]))
        slices.append((int(bounds[i]), int(bounds[i + 1]), part, pair_of_row[r]))
        mm = pc.min_max(_flat_us(part))
        if mm["min"].is_valid:
            lo = mm["min"].as_py() if lo is None else min(lo, mm["min"].as_py())
            hi = mm["max"].as_py() if hi is None else max(hi, mm["max"].as_py())
            last = int(pair_of_row[r][lengths[r] > 0].max())
    if lo is None:
        return Events(slices, 0, 0, 1)
    bits_t = max((hi - lo).bit_length(), 1)
    shift = max(0, bits_t + max(last.bit_length(), 1) - 62)  # beyond 62 bits, times round to 2**shift us
    return Events(slices, lo, shift, bits_t - shift)


def _scalar_us(col: pa.ChunkedArray) -> np.ndarray:
    arr = col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    if pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.timestamp("us", tz=arr.type.tz)).cast(pa.int64())
    return arr.to_numpy(zero_copy_only=False).astype(np.int64)


def confidence(p: np.ndarray, p_none: float, p_full: float) -> np.ndarray:
    """0 at p >= p_none, 1 at p <= p_full, linear in -log10(p) between."""
    lo, hi = -np.log10(p_none), -np.log10(p_full)
    x = -np.log10(np.maximum(p, 1e-300))
    return np.clip((x - lo) / max(hi - lo, 1e-9), 0.0, 1.0)


def _refine_slice(events: Events, i: int, p: Params) -> dict[str, Any]:
    """Bursts, interval statistics and phase search for slice i's pairs (arrays over its pairs only).

    Pair numbers stay global in the interval statistics: their float rounding depends on the number."""
    g0, g1 = events.slices[i][0], events.slices[i][1]
    group, t = events.sorted(i)
    start = per.burst_starts(group, t, p.burst_seconds)
    bg, bt = group[start], t[start]
    del group, t, start
    beats = per.group_counts(bg, g1)[g0:]
    st = per.interval_stats(bg, bt, g1)
    out: dict[str, Any] = {"beats": beats, **{f: getattr(st, f)[g0:] for f in STAT_FIELDS}}
    tested = (beats >= p.phase_min_events) & (out["p_value"] <= p.phase_prefilter_p)
    out["tested"] = tested
    for f in PHASE_FIELDS:
        out["ph_" + f] = np.full(g1 - g0, np.nan)
    if tested.any():
        ev = tested[bg - g0]
        jitter = np.clip(np.nan_to_num(np.expm1(out["width"]), nan=1.0), 0.01, 1.0)
        window = 3.0 * jitter / np.sqrt(np.maximum(out["intervals"], 1))
        ph = per.phase_search((np.cumsum(tested) - 1)[bg[ev] - g0], bt[ev], int(tested.sum()),
                              out["period"][tested], window[tested], min_events=p.phase_min_events)
        for f in PHASE_FIELDS:
            out["ph_" + f][tested] = getattr(ph, f)
    return out


def refine(cand: pa.Table, p: Params) -> Scored:
    pairs, raw_keys, events = flatten(cand, p.min_span_minutes * 60)
    k = len(events.slices)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if k == 1 or cores == 1:
        parts = [_refine_slice(events, i, p) for i in range(k)]
    else:
        with ThreadPoolExecutor(min(cores, k)) as pool:
            parts = list(pool.map(lambda i: _refine_slice(events, i, p), range(k)))
    col = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    st = Stats(**{f: col[f] for f in STAT_FIELDS})
    tested, ph_fap, ph_r = col["tested"], col["ph_fap"], col["ph_resultant"]
    p_value = np.where(tested, per.combine(st.p_value, np.nan_to_num(ph_fap, nan=1.0)), st.p_value)
    locked = phase_locked(tested, ph_fap, ph_r, p.max_p_value)
    regularity = np.where(locked, np.maximum(st.regularity, np.nan_to_num(ph_r)), st.regularity)
    conf = confidence(p_value, p.confidence_p_none, p.confidence_p_full)
    beats = col["beats"]
    periodic = ((p_value <= p.max_p_value) & (regularity >= p.min_regularity)
                & (beats >= p.min_connections) & (np.nan_to_num(st.period) >= p.min_period_seconds))
    return Scored(pairs=pairs, raw_keys=raw_keys, beats=beats, stats=st, phase_tested=tested,
                  phase_period=col["ph_period"], phase_resultant=ph_r, phase_fap=ph_fap,
                  phase_trials=col["ph_trials"], p_value=p_value, regularity=regularity, confidence=conf,
                  score=regularity * conf, periodic=periodic)


def phase_locked(tested: np.ndarray, fap: np.ndarray, resultant: np.ndarray, max_p: float) -> np.ndarray:
    """A fixed clock: significant phase concentration that is also strong (most check-ins near one phase)."""
    return tested & (np.nan_to_num(fap, nan=1.0) <= max_p) & (np.nan_to_num(resultant) >= 0.5)


def host_keys(pairs: pa.Table) -> np.ndarray:
    """The internal host of each pair (host name, else source address) for prevalence."""
    hk = np.asarray(pairs.column("hk").to_pylist(), dtype=object)
    sk = np.asarray(pairs.column("sk").to_pylist(), dtype=object)
    return np.where(hk != "", hk, sk)


def prevalence(pairs: pa.Table, periodic: np.ndarray) -> tuple[dict[str, int], dict[str, int], np.ndarray]:
    """Per destination: distinct hosts with a periodic pair to it, distinct hosts with a candidate pair
    to it (repeated contact of any shape), and the periodic count for each pair."""
    hk = pairs.column("hk")
    t = pa.table({"dk": pairs.column("dk"), "host": pc.if_else(pc.not_equal(hk, ""), hk, pairs.column("sk"))})
    per_dest = t.filter(pa.array(periodic, pa.bool_())).group_by("dk").aggregate([("host", "count_distinct")])
    rhythm = dict(zip(per_dest["dk"].to_pylist(), per_dest["host_count_distinct"].to_pylist(), strict=True))
    wanted = t.filter(pc.is_in(t["dk"], per_dest["dk"])).group_by("dk").aggregate([("host", "count_distinct")])
    contact = dict(zip(wanted["dk"].to_pylist(), wanted["host_count_distinct"].to_pylist(), strict=True))
    counts = np.append(per_dest["host_count_distinct"].to_numpy().astype(np.int64), 0)
    slot = pc.fill_null(pc.index_in(t["dk"], per_dest["dk"]), len(rhythm))
    return rhythm, contact, counts[slot.to_numpy(zero_copy_only=False)]


def byte_regularity(values: np.ndarray) -> float | None:
    """1 - MAD / median of per-connection sizes (RITA's size score): 1 = every beacon the same size."""
    values = values[np.isfinite(values)]
    if values.size < 3:
        return None
    med = float(np.median(values))
    if med <= 0:
        return None
    mad = float(np.median(np.abs(values - med)))
    return max(0.0, 1.0 - mad / med)


def mad(values: np.ndarray) -> float:
    return float(np.median(np.abs(values - np.median(values)))) if values.size else float("nan")
