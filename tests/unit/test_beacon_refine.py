"""The beacon detection's numpy half refines pairs in slices (threads, cache-sized arrays): the slicing must
never change a number, whatever the slice size, and raw keys that normalise alike stay one pair."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from bothunt.config import Settings
from bothunt.detections import beacon, beacon_refine

T0 = 1_767_225_600.0
DAY = 86_400.0


def candidates() -> pa.Table:
    """Raw engine rows as `candidates` returns them: beacons with jitter and gaps, random arrivals, bursts,
    a pair split over two raw keys (path and case), and pairs spanning too little time to be tested."""
    rng = np.random.default_rng(11)
    keys, lists = [], []
    for i in range(60):
        kind = i % 5
        if kind == 0:  # sleep-and-jitter beacon, some beats missed
            t = np.cumsum(300 * (1 - 0.3 * rng.random(900)))
            t = t[(t < 2 * DAY) & (rng.random(t.size) > 0.1)]
        elif kind == 1:  # fixed clock
            t = np.arange(0, 2 * DAY, 900.0) + rng.normal(0, 1, int(2 * DAY / 900))
        elif kind == 2:  # random arrivals
            t = np.sort(rng.random(rng.poisson(400)) * 2 * DAY)
        elif kind == 3:  # bursty browsing
            starts = rng.random(80) * 2 * DAY
            t = np.concatenate([s + np.cumsum(rng.exponential(3.0, rng.integers(1, 12))) for s in starts])
        else:  # 10 minutes of traffic: below min_span_minutes
            t = rng.random(50) * 600
        keys.append((f"ws-{i:02d}", "agent.exe", "", f"c{i}.example"))
        lists.append(rng.permutation(t))  # engines give no order within a list
    whole = np.arange(0, 2 * DAY, 1200.0) + rng.normal(0, 2, int(2 * DAY / 1200))
    keys += [("ws-99", "C:\\Tools\\Agent.EXE", "", "Split.Example."), ("ws-99", "agent.exe", "", "split.example")]
    lists += [whole[::2], whole[1::2]]
    us = [((T0 + t) * 1e6).astype(np.int64) for t in lists]
    ts_type = pa.timestamp("us", tz="UTC")
    return pa.table({
        **{k: [key[j] for key in keys] for j, k in enumerate(("hk", "pk", "sk", "dk"))},
        "n": pa.array([u.size for u in us], pa.int64()),
        "t_first": pa.array([u.min() for u in us]).cast(ts_type),
        "t_last": pa.array([u.max() for u in us]).cast(ts_type),
        "ts": pa.array([u.tolist() for u in us], pa.list_(pa.int64())).cast(pa.list_(ts_type)),
    })


def arrays(s: beacon_refine.Scored) -> dict[str, np.ndarray]:
    out = {f.name: getattr(s, f.name) for f in dataclasses.fields(s) if f.name not in ("pairs", "raw_keys", "stats")}
    out |= {f"stats.{f.name}": getattr(s.stats, f.name) for f in dataclasses.fields(s.stats)}
    return out


@pytest.mark.parametrize("slice_events", [40, 333, 5_000])
def test_slices_give_the_numbers_of_one_pass(monkeypatch, slice_events):
    cand = candidates()
    p = Settings().params(beacon.Params, "beacon")
    whole = beacon_refine.refine(cand, p)
    monkeypatch.setattr(beacon_refine, "SLICE_EVENTS", slice_events)
    assert len(beacon_refine.flatten(cand, p.min_span_minutes * 60)[2].slices) > 1
    sliced = beacon_refine.refine(cand, p)
    assert sliced.pairs.equals(whole.pairs) and sliced.raw_keys.equals(whole.raw_keys)
    one, many = arrays(whole), arrays(sliced)
    for name, values in one.items():
        assert np.array_equal(values, many[name], equal_nan=values.dtype.kind == "f"), name
    # The fixture exercises what slicing could break: tested phases, periodic and dropped pairs, a merge.
    assert whole.phase_tested.sum() >= 10 and 10 <= whole.periodic.sum() < whole.size
    assert whole.size == 49  # 12 short pairs dropped, the split pair merged into one
    split = whole.pairs.column("dk").to_pylist().index("split.example")
    assert whole.pairs.column("n")[split].as_py() == int(2 * DAY / 1200) and whole.periodic[split]
