"""Regularity statistics for many event series at once, with a calibrated meaning.

Input everywhere is a pair of flat arrays: `group` (an int index per event, 0..ngroups-1) and `ts`
(seconds, float64). `sort_events` orders them by (group, ts); every other function expects that order
and works on all groups in one pass with segment operations (bincount, reduceat, one global sort), so
the cost does not depend on how many groups there are. Detections that look for rhythm (beacons,
periodic DNS lookups) share these.

Two tests against the same null model, random arrivals (a Poisson process with the series' own count
and span):

- **Interval spread** (`interval_stats`): the width W of the shortest window holding half of the
  series' log-intervals. It is scale-free, so its null distribution depends only on the number of
  intervals and is tabulated (`bothunt.periodicity_null`); `spread_pvalue` turns W into a p-value.
  Half the intervals suffice, so missing beats (intervals of 2P, 3P), gaps (nights, weekends) and a
  few extra connections do not hide a rhythm. It works for sleep-and-jitter implants whose phase
  drifts. `exp(W) - 1` reads as the jitter: a uniform +-J% jitter gives J%.
- **Phase coherence** (`phase_search`): the Rayleigh test on timestamps folded modulo a candidate
  period, searched over the periods compatible with the interval estimate and corrected for the
  number of independent periods tried (a false-alarm probability). It is the stronger test for
  schedulers that fire on a fixed clock (cron-like jobs, fixed-schedule beacons): missing beats do
  not move the phase of the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from bothunt import periodicity_null as null

# Widths below this (0.1% relative spread) are timestamp resolution, not information.
MIN_WIDTH = 1e-3
# Median width of the null for long series: the reference for "as irregular as random".
NULL_WIDTH = 1.45
_LOG_CLIP = 40.0  # |log(seconds)| never exceeds this; makes a composite sort key safe


def sort_events(group: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The permutation that orders events by (group, ts)."""
    return np.lexsort((np.asarray(ts), np.asarray(group)))


def group_counts(group: np.ndarray, ngroups: int) -> np.ndarray:
    return np.bincount(group, minlength=ngroups).astype(np.int64)


def burst_starts(group: np.ndarray, ts: np.ndarray, gap: float) -> np.ndarray:
    """True for an event that starts a burst: the first of its group, or more than `gap` seconds after
    the previous event of its group. A check-in that opens several connections counts once."""
    start = np.ones(ts.size, dtype=bool)
    if ts.size > 1:
        start[1:] = (group[1:] != group[:-1]) | (np.diff(ts) > gap)
    return start


def intervals(group: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group, seconds) of every gap between consecutive events of the same group."""
    if ts.size < 2:
        return np.zeros(0, np.int64), np.zeros(0)
    same = group[1:] == group[:-1]
    return group[1:][same], np.diff(ts)[same]


def sort_within(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` sorted inside each group (group sorted ascending, values within [-_LOG_CLIP, _LOG_CLIP]).

    One integer sort on a composite key (group in the high bits, the value quantised to the rest)
    instead of a two-key lexsort. The key is integer, not float, so a value keeps the same resolution
    (better than 1e-10 with up to 2**20 groups) whatever its group's number: with a float key, the
    values of group 178,000 lost 25 bits and results depended on how pairs happened to be numbered."""
    if group.size == 0:
        return np.asarray(values, dtype=np.float64).copy()
    group_bits = max(1, int(group[-1]).bit_length())
    value_bits = 62 - group_bits
    if value_bits < 40:  # more than 2**22 groups: exactness over speed
        return np.asarray(values, dtype=np.float64)[np.lexsort((values, group))]
    scale = float((1 << value_bits) - 1) / (2 * _LOG_CLIP)
    quantised = np.rint((np.clip(values, -_LOG_CLIP, _LOG_CLIP) + _LOG_CLIP) * scale).astype(np.int64)
    key = (group.astype(np.int64) << value_bits) | quantised
    key.sort()
    return (key & ((1 << value_bits) - 1)).astype(np.float64) / scale - _LOG_CLIP


@dataclass(frozen=True)
class IntervalStats:
    """Per-group interval statistics (arrays of length ngroups; NaN where a group has < 3 intervals)."""

    intervals: np.ndarray  # number of intervals m
    median: np.ndarray  # median interval, seconds
    q1: np.ndarray
    q3: np.ndarray
    bowley: np.ndarray  # (q3 + q1 - 2 median) / (q3 - q1): 0 for symmetric intervals
    width: np.ndarray  # shortest-half width of log-intervals (W)
    period: np.ndarray  # mean of the intervals near that shortest half's median: the beat period
    p_value: np.ndarray  # P(W this small | random arrivals with the same count)

    @property
    def jitter(self) -> np.ndarray:
        """Spread of the middle half of intervals as a fraction of the period (uniform +-J reads J)."""
        return np.expm1(self.width)

    @property
    def regularity(self) -> np.ndarray:
        """0 (as spread as random arrivals) .. 1 (metronome): 1 - W / W_null."""
        return np.clip(1.0 - np.nan_to_num(self.width, nan=NULL_WIDTH) / NULL_WIDTH, 0.0, 1.0)


def interval_stats(group: np.ndarray, ts: np.ndarray, ngroups: int) -> IntervalStats:
    """Interval statistics for every group, from events sorted by (group, ts)."""
    ig, dt = intervals(group, ts)
    m = group_counts(ig, ngroups)
    nan = np.full(ngroups, np.nan)
    if ig.size == 0:
        return IntervalStats(m, nan, nan, nan, nan, nan.copy(), nan.copy(), np.ones(ngroups))
    logs = sort_within(ig, np.log(np.maximum(dt, 1e-6)))
    starts = np.concatenate([[0], np.cumsum(m)[:-1]])
    ok = m >= 3
    q1, med, q3 = (_quantile_sorted(logs, starts, m, q, np.exp) for q in (0.25, 0.5, 0.75))
    den = q3 - q1
    bowley = np.where(den > 0, (q3 + q1 - 2 * med) / np.where(den > 0, den, 1.0), 0.0)
    width, lo = _shortest_half(logs, ig, starts, m)
    h = m // 2 + 1
    mid = np.minimum(lo + (h - 1) // 2, logs.size - 1)
    mode = np.where(ok, logs[np.maximum(mid, 0)], np.nan)
    # The densest half sits at the top of a uniform jitter band (log-density rises with the interval), so
    # its median reads high; the mean of the single-beat intervals (within x1.5 of it) does not.
    near = np.abs(np.log(np.maximum(dt, 1e-6)) - mode[ig]) <= np.log(1.5)
    k = np.bincount(ig, near, minlength=ngroups)
    period = np.where(ok & (k > 0), np.bincount(ig, np.where(near, dt, 0.0), minlength=ngroups)
                      / np.maximum(k, 1), np.nan)
    width = np.where(ok, width, np.nan)
    return IntervalStats(
        intervals=m, median=np.where(ok, med, np.nan), q1=np.where(ok, q1, np.nan),
        q3=np.where(ok, q3, np.nan), bowley=np.where(ok, bowley, np.nan), width=width, period=period,
        p_value=spread_pvalue(width, m),
    )


def _quantile_sorted(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: float,
                     transform: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Quantile of transform(values) per segment of an array sorted within segments (numpy's linear
    interpolation; transform must be increasing)."""
    pos = (np.maximum(counts, 1) - 1) * q
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    i0 = np.minimum(starts + lo, max(values.size - 1, 0))
    i1 = np.minimum(i0 + (frac > 0), max(values.size - 1, 0))
    out = transform(values[i0]) * (1 - frac) + transform(values[i1]) * frac
    return np.where(counts > 0, out, np.nan)


def _shortest_half(logs: np.ndarray, ig: np.ndarray, starts: np.ndarray, m: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Width of the shortest window of h = m//2 + 1 sorted values per segment, and its first index."""
    n = logs.size
    h = (m // 2 + 1)[ig]
    idx = np.arange(n)
    end = idx + h - 1
    seg_end = (starts + m)[ig]
    valid = end < seg_end
    w = np.where(valid, logs[np.minimum(end, n - 1)] - logs, np.inf)
    ngroups = m.size
    best = np.full(ngroups, np.inf)
    nz = m > 0
    best[nz] = np.minimum.reduceat(w, starts[nz])
    # First index reaching the minimum, per segment: candidates sorted by index, take the first per group.
    hit = np.flatnonzero(valid & (w <= best[ig]))
    first = np.full(ngroups, -1, dtype=np.int64)
    g_hit = ig[hit]
    keep = np.concatenate([[True], g_hit[1:] != g_hit[:-1]]) if hit.size else np.zeros(0, bool)
    first[g_hit[keep]] = hit[keep]
    return best, first


def spread_pvalue(width: np.ndarray, m: np.ndarray) -> np.ndarray:
    """P(W <= width) for a series of m intervals from random arrivals (vectorised; 1 where m < 3)."""
    width = np.asarray(width, dtype=np.float64)
    m = np.asarray(m, dtype=np.int64)
    p = np.ones(width.shape)
    w = np.maximum(np.nan_to_num(width, nan=np.inf), MIN_WIDTH)
    exact = (m >= 3) & (m <= null.EXACT_MAX)
    for mm in np.unique(m[exact]):
        sel = exact & (m == mm)
        p[sel] = _tabulated(w[sel], int(mm))
    big = m > null.EXACT_MAX
    if big.any():
        mu, sd = _normal_params(m[big])
        p[big] = ndtr((w[big] - mu) / sd)
    return np.clip(p, 0.0, 1.0)


def _tabulated(w: np.ndarray, m: int) -> np.ndarray:
    q = np.asarray(null.QUANTILES[m])
    levels = np.asarray(null.LEVELS)
    lq, ll = np.log(q), np.log(levels)
    lw = np.log(w)
    # Inside the table: log p linear in log W between tabulated quantiles (q ascending as p falls).
    inside = np.exp(np.interp(lw, lq[::-1], ll[::-1]))
    # Above the median: not significant; rise linearly to 1 at twice the median.
    upper = np.minimum(1.0, 0.5 + 0.5 * (w - q[0]) / q[0])
    # Below the last quantile: the null CDF falls as a power of W whose exponent grows towards h - 1 as
    # W -> 0; extrapolating with the last measured exponent overstates p (conservative).
    slope = min(max((ll[-2] - ll[-1]) / max(lq[-2] - lq[-1], 1e-9), 1.0), m // 2)
    lower = levels[-1] * (w / q[-1]) ** slope
    return np.where(w >= q[0], upper, np.where(w <= q[-1], lower, inside))


def _normal_params(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grid = np.asarray(null.GRID, dtype=np.float64)
    mus = np.asarray([null.NORMAL[g][0] for g in null.GRID])
    sds = np.asarray([null.NORMAL[g][1] for g in null.GRID]) * np.sqrt(grid)
    lm = np.log(m.astype(np.float64))
    mu = np.interp(lm, np.log(grid), mus)
    sd = np.interp(lm, np.log(grid), sds) / np.sqrt(m)
    return mu, sd


def rayleigh_p(n: np.ndarray, r: np.ndarray) -> np.ndarray:
    """P-value of the Rayleigh test of uniform phases: n phases with mean resultant length r
    (Zar's approximation, accurate from small n to the far tail)."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    rn = n * np.asarray(r, dtype=np.float64)
    return np.clip(np.exp(np.sqrt(1 + 4 * n + 4 * (n**2 - rn**2)) - (1 + 2 * n)), 0.0, 1.0)


@dataclass(frozen=True)
class PhaseResult:
    """Best fixed-clock period per group and how far its phases are from uniform."""

    period: np.ndarray
    resultant: np.ndarray  # mean resultant length R at that period (1 = every event at the same phase)
    p_value: np.ndarray  # Rayleigh p at the best period
    trials: np.ndarray  # independent periods tried
    fap: np.ndarray  # false-alarm probability: 1 - (1 - p) ** trials


def phase_search(group: np.ndarray, ts: np.ndarray, ngroups: int, guess: np.ndarray,
                 rel_window: np.ndarray, oversample: int = 3, max_steps: int = 48,
                 min_events: int = 20) -> PhaseResult:
    """Search periods within guess * (1 +- rel_window) for the strongest phase concentration.

    Frequencies are stepped by 1 / (oversample * span). The best of several correlated steps beats a
    single Rayleigh p-value, so the trial count is calibrated on random arrivals: about three per
    cycle of window width (plus the guess itself). Events must be sorted by (group, ts).
    Cost: steps x events complex multiplications and bincounts. Groups with fewer than `min_events`
    events get p = fap = 1: with a period guessed from the same few events the search over-fits and
    the false-alarm probability is no longer calibrated (tested down to 20 events).
    """
    n = group_counts(group, ngroups)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    last = max(ts.size - 1, 0)
    has = n >= max(3, min_events)
    t0 = np.where(has, ts[np.minimum(starts, last)], 0.0)
    t1 = np.where(has, ts[np.minimum(starts + n - 1, last)], 0.0)
    span = np.maximum(t1 - t0, 1e-9)
    ok = has & np.isfinite(guess) & (guess > 0)
    f0 = np.where(ok, 1.0 / np.where(ok, guess, 1.0), 0.0)
    step = 1.0 / oversample
    half = np.where(ok, np.minimum(np.nan_to_num(np.maximum(rel_window, 0) * f0 * span), step * (max_steps // 2)),
                    0.0)
    trials = 1.0 + 12.0 * half
    k = max_steps // 2
    rel = ts - t0[group]
    # z = exp(2 pi i f rel), advanced one frequency step at a time by multiplying with d.
    z = np.exp(2j * np.pi * (f0[group] - k * step / span[group]) * rel)
    d = np.exp(2j * np.pi * (step / span[group]) * rel)
    best_r = np.zeros(ngroups)
    best_f = f0.copy()
    for j in range(-k, k + 1):
        if j > -k:
            z *= d
        use = ok & (abs(j) * step <= half + 1e-12)
        if not use.any():
            continue
        c = np.bincount(group, z.real, minlength=ngroups)
        s = np.bincount(group, z.imag, minlength=ngroups)
        r = np.where(use, np.hypot(c, s) / np.maximum(n, 1), 0.0)
        better = r > best_r
        best_r = np.where(better, r, best_r)
        best_f = np.where(better, f0 + j * step / span, best_f)
    p = np.where(ok, rayleigh_p(n, best_r), 1.0)
    fap = -np.expm1(trials * np.log1p(-np.minimum(p, 1 - 1e-16)))
    fap = np.where(p < 1e-9, np.minimum(1.0, p * trials), np.where(p >= 1.0, 1.0, fap))
    period = np.where(ok & (best_f > 0), 1.0 / np.where(best_f > 0, best_f, 1.0), np.nan)
    return PhaseResult(period=period, resultant=best_r, p_value=p, trials=trials, fap=np.clip(fap, 0.0, 1.0))


def combine(*p_values: np.ndarray) -> np.ndarray:
    """Bonferroni combination of several tests of the same series: min(p) times the number of tests."""
    stack = np.vstack([np.asarray(p, dtype=np.float64) for p in p_values])
    return np.clip(stack.min(axis=0) * stack.shape[0], 0.0, 1.0)
