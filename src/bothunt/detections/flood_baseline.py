"""Robust per-service baselines and campaign merging, in numpy, for the inbound-flood detection.

A service's bins are compared with the bins *before* them (median and MAD of a trailing window), so a
campaign cannot hide in its own baseline and a service that has always been busy is not an anomaly.
Only bins that already pass the absolute minimums are evaluated, so the cost is per candidate bin.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

MAD_SIGMA = 1.4826  # MAD of a normal sample times this is its standard deviation


@dataclass(frozen=True)
class Baseline:
    """Per evaluated bin: how many preceding bins there were, their median and robust spread, and the
    level a bin had to exceed (NaN where the bin was judged by the floors instead)."""

    history: np.ndarray
    median: np.ndarray
    mad: np.ndarray
    threshold: np.ndarray


def trailing_stats(values: np.ndarray, at: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(history length, median, MAD) of values[t - window : t] for every t in `at`."""
    at = np.asarray(at, dtype=np.int64)
    if at.size == 0:
        empty = np.empty(0)
        return empty.astype(np.int64), empty, empty
    offs = np.arange(-window, 0, dtype=np.int64)
    idx = at[:, None] + offs[None, :]
    valid = idx >= 0
    win = np.where(valid, values[np.clip(idx, 0, None)].astype(np.float64), np.nan)
    history = valid.sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no history, judged by floors
        med = np.nanmedian(win, axis=1)
        mad = np.nanmedian(np.abs(win - med[:, None]), axis=1)
    return history, med, mad


def robust_threshold(med: np.ndarray, mad: np.ndarray, k: float, min_ratio: float) -> np.ndarray:
    """The level a count must exceed: k robust deviations above the median (never less than a Poisson
    deviation, so a silent service's threshold is not zero) and at least `min_ratio` times the median."""
    scale = np.maximum(np.maximum(MAD_SIGMA * mad, np.sqrt(np.maximum(med, 0.0))), 1.0)
    return np.maximum(med + k * scale, min_ratio * med)


def flag_against_history(series: list[np.ndarray], candidates: np.ndarray, fallback: np.ndarray, *, window: int,
                         min_history: int, k: float, min_ratio: float) -> tuple[np.ndarray, list[Baseline]]:
    """Flag candidate bins where any series exceeds its trailing baseline (with enough history) or, without
    enough history, where `fallback` holds (the floors). Returns (flags over the grid, baselines at the
    candidate positions, one per series)."""
    at = np.flatnonzero(candidates)
    flags = np.zeros(candidates.shape[0], dtype=bool)
    baselines: list[Baseline] = []
    above_any = np.zeros(at.size, dtype=bool)
    history = np.zeros(at.size, dtype=np.int64)
    for values in series:
        history, med, mad = trailing_stats(values, at, window)
        thr = robust_threshold(med, mad, k, min_ratio)
        enough = history >= min_history
        thr = np.where(enough, thr, np.nan)
        baselines.append(Baseline(history=history, median=med, mad=mad, threshold=thr))
        above_any |= enough & (values[at] > thr)
    enough = history >= min_history
    flags[at] = np.where(enough, above_any, fallback[at])
    return flags, baselines


def level_threshold(values: np.ndarray, k: float, min_ratio: float) -> float:
    """The level of a whole series (median and MAD of all its bins): the fallback for a service whose
    trailing history is too short, so a service that is always this busy is not an anomaly."""
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med)))
    return float(robust_threshold(np.array([med]), np.array([mad]), k, min_ratio)[0])


def extend(flags: np.ndarray, values: np.ndarray, first: int, last: int, level: float) -> tuple[int, int]:
    """Grow a run of flagged bins over its neighbours that are still above `level` (hysteresis: a campaign's
    ramp-up and tail bins belong to it even when they alone would not be flagged)."""
    while first > 0 and not flags[first - 1] and values[first - 1] > level:
        first -= 1
    while last + 1 < values.size and not flags[last + 1] and values[last + 1] > level:
        last += 1
    return first, last


def runs(flags: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """Inclusive (first, last) index pairs of flagged positions, joining runs separated by at most
    `max_gap` unflagged positions."""
    pos = np.flatnonzero(flags)
    if pos.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(pos) > max_gap + 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [pos.size - 1]])
    return [(int(pos[s]), int(pos[e])) for s, e in zip(starts, ends, strict=True)]


def dense(positions: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Scatter sparse (position, value) pairs into a zero-filled grid."""
    out = np.zeros(size, dtype=np.float64)
    out[positions] = values
    return out
