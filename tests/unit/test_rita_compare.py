"""bothunt's beacon score next to RITA v5's published beacon score, on the same simulated series.

RITA's formula is re-implemented here from activecm/rita `analysis/beacons.go` (v5) with its default
configuration (`config/config.go`): four sub-scores weighted 0.25 each, over a fixed 24-hour window,
timestamps in whole seconds:

- timestamp score: mean of the Bowley-skew score (1 - |skew|; skew 0 when Q3 - Q1 < 10 or the median
  equals a quartile) and the MAD score ((median - MAD) / median) of the sorted non-zero intervals;
- data-size score: the same on the per-connection originator byte counts (MAD score 0 when median < 1);
- histogram score: connections per 1/24 of the dataset's span; max of 1 - CV and a bimodal fit (share of
  non-empty bars in the two most common bar heights, bucketed at 5% of the tallest, one outlier dropped,
  only with >= 11 non-empty bars);
- duration score: only with >= 6 non-empty bars; max of the pair's coverage of the dataset span and the
  longest run of consecutive non-empty bars (wrapping) over 12.
Quartiles are Tukey hinges (montanaflynn/stats `Quartile`).

`pytest -s tests/unit/test_rita_compare.py` prints the table that docs/beacon.md shows.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from bothunt.config import Settings
from bothunt.detections import beacon, beacon_refine
from bothunt.detections.base import severity_from_score

DAY = 86_400
T0 = 1_767_571_200  # 2026-01-05 (a Monday) 00:00 UTC


# --- RITA v5 ------------------------------------------------------------------------------------------

def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if x.size else 0.0


def _quartiles(x: np.ndarray) -> tuple[float, float, float]:
    x = np.sort(x)
    n = x.size
    c1, c2 = (n // 2, n // 2) if n % 2 == 0 else ((n - 1) // 2, (n - 1) // 2 + 1)
    return _median(x[:c1]), _median(x), _median(x[c2:])


def _statistical_score(values: np.ndarray, default_mad_score: float) -> float:
    q1, q2, q3 = _quartiles(values)
    den = q3 - q1
    skew = (q1 + q3 - 2 * q2) / den if den >= 10 and q2 != q1 and q2 != q3 else 0.0
    skew_score = 1.0 - abs(skew)
    med = _median(values)
    mad = _median(np.abs(values - med))
    mad_score = (med - mad) / med if med >= 1 else default_mad_score
    if mad_score < 0 or math.isnan(mad_score):
        mad_score = 0.0
    return round((skew_score + mad_score) / 2 * 1000) / 1000


def rita_timestamp_score(ts: np.ndarray) -> float:
    deltas = np.sort(np.diff(np.sort(ts)).astype(float))
    return _statistical_score(deltas[deltas > 0], 1.0)


def rita_histogram(dmin: int, dmax: int, ts: np.ndarray, bins: int = 24) -> np.ndarray:
    edges = dmin + np.arange(bins + 1) * ((dmax - dmin) / bins)
    edges[-1] = dmax
    idx = np.minimum(np.searchsorted(edges[1:bins], ts, side="right"), bins - 1)
    return np.bincount(idx, minlength=bins)


def rita_histogram_and_duration(dmin: int, dmax: int, ts: np.ndarray) -> tuple[float, float]:
    hist = rita_histogram(dmin, dmax, ts)
    bars = int((hist > 0).sum())
    size = math.ceil(hist.max() * 0.05)
    heights: dict[int, int] = {}
    for h in hist[hist > 0]:
        b = int(math.floor(h / size) * size)
        heights[b] = heights.get(b, 0) + 1
    run = longest = 0
    for i in range(2 * hist.size):
        if hist[i % hist.size] > 0:
            run += 1
        else:
            longest, run = max(longest, run), 0
    longest = min(max(longest, run), hist.size)
    cv = hist.std() / hist.mean()
    cv_score = 0.0 if cv > 1 else round((1 - cv) * 1000) / 1000
    bimodal = 0.0
    if bars >= 11:
        top = sorted(heights.values(), reverse=True)[:2]
        bimodal = min(1.0, round(sum(top) / max(bars - 1, 1) * 1000) / 1000)
    hist_score = max(cv_score, bimodal)
    dur = 0.0
    if bars >= 6:
        coverage = min(1.0, math.ceil((ts.max() - ts.min()) / (dmax - dmin) * 1000) / 1000)
        consistency = min(1.0, math.ceil(longest / 12 * 1000) / 1000)
        dur = max(coverage, consistency)
    return hist_score, dur


def rita_score(ts: np.ndarray, sizes: np.ndarray, dmin: int, dmax: int) -> float:
    """RITA v5's beacon score for one pair (whole-second timestamps inside [dmin, dmax])."""
    ts = np.floor(ts).astype(np.int64)
    if np.unique(ts).size < 4:
        return 0.0
    hist, dur = rita_histogram_and_duration(dmin, dmax, ts)
    ds = _statistical_score(np.sort(sizes.astype(float)), 0.0)
    return round((rita_timestamp_score(ts) * 0.25 + ds * 0.25 + dur * 0.25 + hist * 0.25) * 1000) / 1000


def test_rita_reimplementation_on_hand_checked_series():
    # a metronome: every sub-score is 1
    ts = np.arange(0, DAY, 300)
    assert rita_score(ts, np.full(ts.size, 500), 0, DAY) == 1.0
    # RITA's own example: intervals 299, 301, 298 s -> IQR < 10 (skew 0), median 299, MAD 1
    assert rita_timestamp_score(np.array([0, 299, 600, 898])) == round((1 + (299 - 1) / 299) / 2, 3)
    # sizes all different by 100: median 300, MAD 100 -> (1 + 2/3) / 2
    assert _statistical_score(np.array([100.0, 200, 300, 400, 500]), 0.0) == round((1 + 200 / 300) / 2, 3)
    # six connections in one hour of a day: five bars short of the duration minimum
    assert rita_histogram_and_duration(0, DAY, np.arange(6) * 600)[1] == 0.0


# --- the same cases for both -----------------------------------------------------------------------

def sleep_cs(rng, period, jitter, span):
    """Cobalt-Strike-style sleep (as the simulator plants): each wait is period * (1 - jitter * U)."""
    t = np.cumsum(period * (1 - jitter * rng.random(int(span / (period * (1 - jitter))) + 2)))
    return t[t < span]


def office(t):
    hour = np.mod(t, DAY) / 3600
    weekday = np.mod(np.floor((T0 + t) / DAY) + 3, 7) < 5
    return weekday & (hour >= 8) & (hour < 18)


CASES = {
    "periodic 300 s, 0% jitter": lambda r, s: sleep_cs(r, 300, 0.0, s),
    "periodic 300 s, 20% jitter": lambda r, s: sleep_cs(r, 300, 0.2, s),
    "periodic 300 s, 50% jitter": lambda r, s: sleep_cs(r, 300, 0.5, s),
    "Poisson, mean 60 s": lambda r, s: np.sort(r.random(r.poisson(s / 60)) * s),
    "Poisson, mean 600 s": lambda r, s: np.sort(r.random(r.poisson(s / 600)) * s),
    "periodic 4 h, 10% jitter": lambda r, s: sleep_cs(r, 4 * 3600, 0.1, s),
    "periodic 6 h, 10% jitter": lambda r, s: sleep_cs(r, 6 * 3600, 0.1, s),
    "business hours, 900 s, 10% jitter": lambda r, s: (lambda t: t[office(t)])(sleep_cs(r, 900, 0.1, s)),
}
BEACONS = [c for c in CASES if not c.startswith("Poisson")]


def bothunt_score(ts: np.ndarray, sizes: np.ndarray) -> tuple[float, str, float, int]:
    """The detection's numpy half on one pair, as the engine would hand it over."""
    p = Settings().params(beacon.Params, "beacon")
    if ts.size < 2:
        return 0.0, "-", 1.0, ts.size
    us = ((T0 + ts) * 1e6).astype(np.int64)
    cand = pa.table({"hk": [""], "pk": [""], "sk": ["10.0.0.5"], "dk": ["c2.example"], "n": [ts.size],
                     "t_first": pa.array([us.min()]).cast(pa.timestamp("us", tz="UTC")),
                     "t_last": pa.array([us.max()]).cast(pa.timestamp("us", tz="UTC")),
                     "ts": pa.array([us.tolist()], pa.list_(pa.int64())).cast(
                         pa.list_(pa.timestamp("us", tz="UTC")))})
    s = beacon_refine.refine(cand, p)
    if s.size == 0 or not s.periodic[0]:
        return 0.0, "-", float(s.p_value[0]) if s.size else 1.0, ts.size
    breg = beacon_refine.byte_regularity(sizes.astype(float)) or 0.0
    score = float(min(1.0, s.score[0] + p.bytes_weight * breg * s.confidence[0]))
    return score, severity_from_score(score), float(s.p_value[0]), ts.size


def rows() -> list[dict]:
    out = []
    for i, (name, make) in enumerate(CASES.items()):
        rng = np.random.default_rng(100 + i)
        t3 = make(rng, 3 * DAY)
        sizes3 = rng.normal(420, 8, t3.size).round()  # a poller sends the same request every time
        last = t3 >= 2 * DAY  # RITA scores the most recent 24 hours
        t1, s1 = t3[last], sizes3[last]
        out.append({
            "case": name, "n24": int(t1.size), "n72": int(t3.size),
            "rita": rita_score(t1, s1, 2 * DAY, 3 * DAY),
            "bh24": bothunt_score(t1, s1), "bh72": bothunt_score(t3, sizes3),
        })
    return out


@pytest.fixture(scope="module")
def table() -> dict[str, dict]:
    res = rows()
    print("\n| case | RITA v5 (24 h) | bothunt, 24 h | bothunt, 3 days |")
    print("|---|---|---|---|")
    for r in res:
        cells = []
        for n, (score, sev, p, _) in ((r["n24"], r["bh24"]), (r["n72"], r["bh72"])):
            ptxt = "p<1e-300" if p <= 1e-300 else f"p={p:.0e}"
            cells.append(f"{score:.2f} {sev} ({ptxt}, n={n})" if sev != "-" else f"no finding (p={p:.1g}, n={n})")
        print(f"| {r['case']} | {r['rita']:.3f} (n={r['n24']}) | {cells[0]} | {cells[1]} |")
    return {r["case"]: r for r in res}


def test_poisson_polling(table):
    """RITA's users' complaint: random polling scores high there; it is no finding here."""
    assert table["Poisson, mean 60 s"]["rita"] >= 0.8
    for case in ("Poisson, mean 60 s", "Poisson, mean 600 s"):
        for key in ("bh24", "bh72"):
            assert table[case][key][1] == "-", (case, key)


def test_slow_beacons(table):
    """RITA's 24-hour window leaves 4-6 connections and no duration score; three days are enough here."""
    for case in ("periodic 4 h, 10% jitter", "periodic 6 h, 10% jitter"):
        assert table[case]["rita"] < table["Poisson, mean 60 s"]["rita"]
        _, sev, p, _ = table[case]["bh72"]
        assert sev in ("medium", "high", "critical") and p < 1e-6, (case, table[case]["bh72"])


def test_jittered_and_gappy_beacons(table):
    for case in BEACONS:
        assert table[case]["bh72"][1] in ("high", "critical") or case.startswith("periodic 6 h"), case
    assert table["periodic 300 s, 50% jitter"]["bh24"][1] in ("high", "critical")
    assert table["business hours, 900 s, 10% jitter"]["bh72"][2] < 1e-20
