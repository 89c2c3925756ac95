"""Regularity statistics: exact values on small series, calibration against random arrivals, power on
jittered / slow / gappy beacons. Timestamps are built with numpy in the tests (fixed seeds)."""

from __future__ import annotations

import numpy as np
import pytest

from bothunt import periodicity as per
from bothunt import periodicity_null as null

DAY = 86_400.0


def _series(times: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Flat (group, ts) sorted by (group, ts) from one array of times per group."""
    group = np.concatenate([np.full(len(t), i, dtype=np.int64) for i, t in enumerate(times)])
    ts = np.concatenate([np.asarray(t, dtype=np.float64) for t in times])
    order = per.sort_events(group, ts)
    return group[order], ts[order]


def _sleep(rng: np.random.Generator, period: float, jitter: float, dropout: float, span: float) -> np.ndarray:
    """A sleep-and-jitter implant: each wait is period * (1 +- jitter), some beats missed."""
    n = int(span / period * 1.5) + 2
    t = np.cumsum(period * (1 + rng.uniform(-jitter, jitter, n)))
    t = t[t < span]
    return t[rng.random(t.size) >= dropout]


def _fixed(rng: np.random.Generator, period: float, jitter: float, dropout: float, span: float) -> np.ndarray:
    """A fixed-clock scheduler: beat k at k * period +- jitter * period, some beats missed."""
    k = np.arange(int(span / period))
    t = np.sort(k * period + rng.uniform(-jitter, jitter, k.size) * period)
    return t[rng.random(t.size) >= dropout]


def _poisson(rng: np.random.Generator, mean: float, span: float) -> np.ndarray:
    return np.sort(rng.random(rng.poisson(span / mean)) * span)


def test_bursts_and_intervals_exact():
    group, ts = _series([np.array([0.0, 0.5, 10.0, 10.1, 10.2, 30.0]), np.array([5.0, 6.0, 9.5])])
    start = per.burst_starts(group, ts, gap=1.0)
    # group 0: 0 | 0.5 merged | 10 | 10.1, 10.2 merged | 30 ; group 1: 5 | 6.0 merged (gap exactly 1) | 9.5
    assert start.tolist() == [True, False, True, False, False, True, True, False, True]
    ig, dt = per.intervals(group[start], ts[start])
    assert ig.tolist() == [0, 0, 1]
    assert dt.tolist() == [10.0, 20.0, 4.5]


def test_sort_within_matches_lexsort():
    rng = np.random.default_rng(1)
    group = np.sort(rng.integers(0, 500, 20_000))
    values = rng.normal(0, 5, group.size)
    expected = values[np.lexsort((values, group))]
    np.testing.assert_allclose(per.sort_within(group, values), expected, atol=1e-6)


def test_sort_within_resolution_does_not_depend_on_group_number():
    # The same log-intervals in group 0 and in group 300,000 must come back the same: a float composite
    # key lost ~25 bits at that group number, so later pairs had coarser statistics than earlier ones.
    values = np.log(np.array([300.0, 300.000001, 299.999999, 3600.5, 0.25]))
    expected = np.sort(values)
    for g in (0, 300_000):
        group = np.full(values.size, g)
        group = np.concatenate([[0], group]) if g else group
        vals = np.concatenate([[1.0], values]) if g else values
        out = per.sort_within(group, vals)[-values.size:]
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)
        assert np.all(np.diff(out) > 0)  # 1e-6 apart in seconds stays distinct and ordered


def test_sort_within_many_groups_falls_back_to_exact_sort():
    group = np.array([0, 0, (1 << 23) + 5, (1 << 23) + 5])
    values = np.array([2.0, -1.0, 0.5, 0.25])
    assert per.sort_within(group, values).tolist() == [-1.0, 2.0, 0.25, 0.5]
    assert per.sort_within(np.array([], dtype=np.int64), np.array([])).size == 0


def test_interval_stats_quartiles_match_numpy():
    rng = np.random.default_rng(2)
    times = [np.sort(rng.random(n) * 1000) for n in (4, 9, 30, 101)]
    group, ts = _series(times)
    st = per.interval_stats(group, ts, len(times))
    for i, t in enumerate(times):
        d = np.diff(t)
        q1, med, q3 = np.quantile(d, [0.25, 0.5, 0.75])
        assert st.intervals[i] == d.size
        assert st.median[i] == pytest.approx(med, rel=1e-6)
        assert st.q1[i] == pytest.approx(q1, rel=1e-6)
        assert st.q3[i] == pytest.approx(q3, rel=1e-6)
        assert st.bowley[i] == pytest.approx((q3 + q1 - 2 * med) / (q3 - q1), rel=1e-5)
        # shortest half of log-intervals, by brute force
        logs = np.sort(np.log(d))
        h = d.size // 2 + 1
        assert st.width[i] == pytest.approx(min(logs[k + h - 1] - logs[k] for k in range(d.size - h + 1)),
                                            abs=1e-6)


def test_metronome_and_too_short():
    group, ts = _series([np.arange(50) * 60.0, np.array([0.0, 60.0, 120.0])])
    st = per.interval_stats(group, ts, 2)
    assert st.period[0] == pytest.approx(60.0)
    assert st.width[0] == pytest.approx(0.0, abs=1e-9)
    assert st.p_value[0] < 1e-30
    assert st.regularity[0] == pytest.approx(1.0)
    # two intervals: nothing to test
    assert st.intervals[1] == 2 and np.isnan(st.width[1]) and st.p_value[1] == 1.0


def test_random_arrivals_are_calibrated():
    """P(p <= alpha) under the null is alpha, for short and long series (binomial bounds)."""
    rng = np.random.default_rng(3)
    sizes = np.concatenate([rng.integers(5, 40, 2000), rng.integers(60, 600, 2000)])
    group, ts = _series([np.sort(rng.random(n) * 3 * DAY) for n in sizes])
    st = per.interval_stats(group, ts, sizes.size)
    for alpha, lo, hi in ((0.05, 0.035, 0.065), (0.01, 0.004, 0.017)):
        for part in (slice(0, 2000), slice(2000, 4000)):
            rate = np.mean(st.p_value[part] <= alpha)
            assert lo <= rate <= hi, (alpha, part, rate)
    assert np.median(st.regularity) < 0.1


@pytest.mark.parametrize(("period", "mode", "jitter", "dropout", "max_p"), [
    (10.0, "sleep", 0.5, 0.3, 1e-12),
    (60.0, "sleep", 0.2, 0.0, 1e-30),
    (300.0, "fixed", 0.2, 0.3, 1e-10),
    (3600.0, "sleep", 0.3, 0.2, 1e-4),
    (4 * 3600.0, "sleep", 0.1, 0.0, 1e-4),   # the case: 18 check-ins over three days
    (6 * 3600.0, "fixed", 0.05, 0.1, 1e-3),
])
def test_beacons_are_found(period, mode, jitter, dropout, max_p):
    rng = np.random.default_rng(int(period) + int(100 * jitter))
    make = _sleep if mode == "sleep" else _fixed
    group, ts = _series([make(rng, period, jitter, dropout, 3 * DAY)])
    st = per.interval_stats(group, ts, 1)
    assert st.p_value[0] <= max_p
    assert st.regularity[0] >= 0.5


def test_poisson_polling_is_not_a_beacon():
    """Chat-style polling at 60 s and 600 s means: no series reaches the report threshold."""
    rng = np.random.default_rng(4)
    times = [_poisson(rng, mean, 3 * DAY) for mean in (60.0, 600.0) for _ in range(100)]
    group, ts = _series(times)
    st = per.interval_stats(group, ts, len(times))
    assert np.mean(st.p_value <= 1e-3) <= 0.02
    assert st.regularity.max() < 0.3


def test_jitter_and_period_estimates():
    rng = np.random.default_rng(5)
    times = [_sleep(rng, 120.0, 0.2, 0.0, 3 * DAY), _sleep(rng, 120.0, 0.1, 0.3, 3 * DAY)]
    group, ts = _series(times)
    st = per.interval_stats(group, ts, 2)
    assert st.jitter[0] == pytest.approx(0.2, abs=0.03)  # uniform +-20% reads as 20%
    # 30% missing beats: half the intervals are still single beats, so the period holds
    assert 120.0 <= st.period[1] <= 120.0 * 1.12
    assert st.median[1] > st.period[1]  # the plain median is pulled up by the doubled intervals


def test_gaps_do_not_hide_a_business_hours_beacon():
    rng = np.random.default_rng(6)
    t = _fixed(rng, 300.0, 0.1, 0.0, 5 * DAY)
    office = (np.mod(t, DAY) >= 9 * 3600) & (np.mod(t, DAY) < 17 * 3600)
    group, ts = _series([t[office]])
    st = per.interval_stats(group, ts, 1)
    assert st.p_value[0] < 1e-30
    assert st.period[0] == pytest.approx(300.0, rel=0.05)


def test_spread_pvalue_shape():
    w = np.linspace(0.0, 3.0, 61)
    for m in (3, 10, 64, 65, 500, 10_000):
        p = per.spread_pvalue(w, np.full(w.size, m))
        assert np.all(np.diff(p) >= 0), m  # wider spread, larger p
        assert p[-1] == pytest.approx(1.0, abs=1e-3)
        assert p[0] < (0.01 if m == 3 else 1e-6)  # three intervals cannot be very significant
    assert per.spread_pvalue(np.array([0.0]), np.array([2]))[0] == 1.0


def test_null_table_reproduces():
    """The shipped table matches a fresh simulation (a different seed) within Monte Carlo error."""
    rng = np.random.default_rng(99)
    for m in (7, 20, 64):
        w = null.simulate(m, 40_000, rng)
        table = dict(zip(null.LEVELS, null.QUANTILES[m], strict=True))
        for level in (0.5, 0.1, 0.01):
            assert np.mean(w <= table[level]) == pytest.approx(level, rel=0.2, abs=0.002), (m, level)
    w = null.simulate(256, 5000, rng)
    mu, sd = null.NORMAL[256]
    assert w.mean() == pytest.approx(mu, abs=0.01)
    assert w.std() == pytest.approx(sd, rel=0.1)


def test_rayleigh_p():
    assert per.rayleigh_p(np.array([50]), np.array([0.0]))[0] == pytest.approx(1.0, abs=1e-6)
    rng = np.random.default_rng(7)
    theta = rng.random((20_000, 30)) * 2 * np.pi
    r = np.abs(np.exp(1j * theta).mean(axis=1))
    p = per.rayleigh_p(np.full(r.size, 30), r)
    assert np.mean(p <= 0.01) == pytest.approx(0.01, abs=0.004)


def test_phase_search_locks_a_fixed_clock():
    rng = np.random.default_rng(8)
    t = _fixed(rng, 4 * 3600.0, 0.1, 0.3, 7 * DAY)  # ~29 beats, 30% missing
    group, ts = _series([t])
    st = per.interval_stats(group, ts, 1)
    ph = per.phase_search(group, ts, 1, st.period, 3 * st.jitter / np.sqrt(st.intervals))
    assert ph.period[0] == pytest.approx(4 * 3600.0, rel=0.005)
    assert ph.resultant[0] > 0.8
    assert ph.fap[0] < 1e-6


def test_phase_search_is_calibrated_on_random_arrivals():
    rng = np.random.default_rng(9)
    sizes = rng.integers(20, 200, 1500)
    group, ts = _series([np.sort(rng.random(n) * 3 * DAY) for n in sizes])
    st = per.interval_stats(group, ts, sizes.size)
    ph = per.phase_search(group, ts, sizes.size, st.period, 3 * np.minimum(st.jitter, 1) / np.sqrt(st.intervals))
    assert np.mean(ph.fap <= 0.01) <= 0.02
    assert np.mean(per.combine(st.p_value, ph.fap) <= 0.01) <= 0.02


def test_combine_is_bonferroni():
    out = per.combine(np.array([0.01, 0.5, 0.9]), np.array([0.2, 0.001, 0.9]))
    np.testing.assert_allclose(out, [0.02, 0.002, 1.0])


def test_phase_search_leaves_short_series_untested():
    """Below `min_events` the search would over-fit its own guess: p and false-alarm stay 1."""
    group, ts = _series([np.arange(12) * 3600.0])
    st = per.interval_stats(group, ts, 1)
    ph = per.phase_search(group, ts, 1, st.period, np.full(1, 0.1))
    assert ph.fap[0] == pytest.approx(1.0) and ph.p_value[0] == 1.0
    assert per.phase_search(group, ts, 1, st.period, np.full(1, 0.1), min_events=10).fap[0] < 1e-6
