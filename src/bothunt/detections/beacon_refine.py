"""The numpy half of the beacon detection: candidate pairs' timestamps in, calibrated scores out.

All candidate pairs are tested at once with segment operations (bothunt.periodicity); only pairs that
pass the cheap interval test and have enough check-ins go on to the phase search, which costs a few
dozen passes over their events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt import periodicity as per

if TYPE_CHECKING:
    from bothunt.detections.beacon import Params


@dataclass(frozen=True)
class Scored:
    """Per candidate pair (arrays aligned with `pairs`, sorted by the normalised pair keys)."""

    pairs: pa.Table  # KEYS (normalised), n, t_first, t_last (microseconds)
    raw_keys: pa.Table  # the engine's raw KEYS of every pair, with `pair` (its row in `pairs`)
    beats: np.ndarray  # check-ins after merging bursts
    stats: per.IntervalStats
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


def normalise(raw: pa.Table) -> pa.Table:
    """Keys compared the way people read them: process file names and destination names lower-case
    (Windows and DNS are case-insensitive), process paths cut to the file name, no trailing dot."""
    pk = pc.replace_substring_regex(pc.utf8_lower(raw["pk"]), r"^.*[\\/]", "")
    dk = pc.replace_substring_regex(pc.utf8_lower(raw["dk"]), r"\.$", "")
    return pa.table({"hk": raw["hk"], "pk": pk, "sk": raw["sk"], "dk": dk})


def _times_us(lists: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Flattened list<timestamp> as int64 microseconds (UTC on both engines), and list lengths."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks() if lists.num_chunks else pa.array([], pa.list_(pa.timestamp("us")))
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(lists)
    if pa.types.is_timestamp(flat.type):
        flat = flat.cast(pa.timestamp("us", tz=flat.type.tz)).cast(pa.int64())
    return flat.to_numpy(zero_copy_only=False).astype(np.int64), lengths


def sorted_times(group: np.ndarray, t_us: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Events sorted by (group, time) with one integer sort of a composite key (group in the high bits);
    beyond 62 bits the time is rounded (to 2**k microseconds) to fit. Returns group, relative
    microseconds and the time origin."""
    if t_us.size == 0:
        return group, t_us, 0
    origin = int(t_us.min())
    rel = t_us - origin
    bits_t = max(int(rel.max()).bit_length(), 1)
    bits_g = max(int(group.max()).bit_length(), 1)
    shift = max(0, bits_t + bits_g - 62)
    tb = bits_t - shift
    key = (group.astype(np.int64) << tb) | (rel >> shift)
    key.sort()
    return key >> tb, (key & ((1 << tb) - 1)) << shift, origin


def flatten(cand: pa.Table, min_span_s: float) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray]:
    """Merge raw engine keys that normalise alike into pairs (sorted by key: the same pair index on every
    engine), drop pairs spanning less than `min_span_s`, and flatten their times into (pair, seconds
    since the earliest event) sorted by (pair, time)."""
    norm = normalise(cand)
    joined = pc.binary_join_element_wise(norm["hk"], norm["pk"], norm["sk"], norm["dk"], "\x1f")
    enc = (joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined).dictionary_encode()
    words = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    rank = np.empty(words.size, np.int64)
    rank[np.argsort(words, kind="stable")] = np.arange(words.size)
    gid = rank[enc.indices.to_numpy(zero_copy_only=False)]
    ng = words.size
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
    raw = cand.select(["hk", "pk", "sk", "dk"]).take(pa.array(rows)).append_column(
        "pair", pa.array(new_id[gid[rows]], pa.int64()))
    t_us, lengths = _times_us(cand["ts"])
    ev_group = np.repeat(gid, lengths)
    on = keep[ev_group]
    group, rel, _ = sorted_times(new_id[ev_group[on]], t_us[on])
    return pairs, raw, group, rel.astype(np.float64) / 1e6


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


def refine(cand: pa.Table, p: Params) -> Scored:
    pairs, raw_keys, group, t = flatten(cand, p.min_span_minutes * 60)
    g = pairs.num_rows
    start = per.burst_starts(group, t, p.burst_seconds)
    bg, bt = group[start], t[start]
    beats = per.group_counts(bg, g)
    st = per.interval_stats(bg, bt, g)
    tested = (beats >= p.phase_min_events) & (st.p_value <= p.phase_prefilter_p)
    ph_period, ph_r, ph_fap, ph_trials = (np.full(g, np.nan) for _ in range(4))
    if tested.any():
        sub = np.cumsum(tested) - 1
        ev = tested[bg]
        jitter = np.clip(np.nan_to_num(st.jitter, nan=1.0), 0.01, 1.0)
        window = 3.0 * jitter / np.sqrt(np.maximum(st.intervals, 1))
        ph = per.phase_search(sub[bg[ev]], bt[ev], int(tested.sum()), st.period[tested], window[tested],
                              min_events=p.phase_min_events)
        ph_period[tested], ph_r[tested] = ph.period, ph.resultant
        ph_fap[tested], ph_trials[tested] = ph.fap, ph.trials
    p_value = np.where(tested, per.combine(st.p_value, np.nan_to_num(ph_fap, nan=1.0)), st.p_value)
    locked = phase_locked(tested, ph_fap, ph_r, p.max_p_value)
    regularity = np.where(locked, np.maximum(st.regularity, np.nan_to_num(ph_r)), st.regularity)
    conf = confidence(p_value, p.confidence_p_none, p.confidence_p_full)
    periodic = ((p_value <= p.max_p_value) & (regularity >= p.min_regularity)
                & (beats >= p.min_connections) & (np.nan_to_num(st.period) >= p.min_period_seconds))
    return Scored(pairs=pairs, raw_keys=raw_keys, beats=beats, stats=st, phase_tested=tested, phase_period=ph_period,
                  phase_resultant=ph_r, phase_fap=ph_fap, phase_trials=ph_trials, p_value=p_value,
                  regularity=regularity, confidence=conf, score=regularity * conf, periodic=periodic)


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
    dk = np.asarray(pairs.column("dk").to_pylist(), dtype=object)
    hosts = host_keys(pairs)
    rhythm: dict[str, int] = {}
    contact: dict[str, int] = {}
    for d, _ in {(d, h) for d, h in zip(dk[periodic], hosts[periodic], strict=True)}:
        rhythm[d] = rhythm.get(d, 0) + 1
    wanted = set(rhythm)
    for d, _ in {(d, h) for d, h in zip(dk, hosts, strict=True) if d in wanted}:
        contact[d] = contact.get(d, 0) + 1
    per_pair = np.asarray([rhythm.get(d, 0) for d in dk], dtype=np.int64)
    return rhythm, contact, per_pair


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
