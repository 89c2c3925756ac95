"""Planted C2 beacons: intervals within the asked jitter, dropout, business hours, outages, CDN rotation,
the svchost-hidden implant, and which slow beacons are planted for a given span."""

from __future__ import annotations

import numpy as np
import pytest

from bothunt.simulate import prepare
from bothunt.simulate.attacks import Beacon, office
from bothunt.simulate.frames import REJ, S0, SF
from bothunt.simulate.net import ip_text
from bothunt.simulate.rand import rng_for


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    sim, planted, _ = prepare(seed=11, hosts=60, days=1.0, scale=0.1)
    return sim, {p.truth.id: p for p in planted}


@pytest.mark.parametrize("period,jitter", [(10.0, 0.0), (60.0, 0.2), (300.0, 0.5), (900.0, 0.6)])
def test_schedule_intervals_stay_within_jitter(period: float, jitter: float) -> None:
    b = Beacon("b", 0, period, jitter)
    ts = b.schedule(rng_for(1, 2), 0.0, period * 3000)
    iv = np.diff(ts)
    assert iv.size > 2900
    assert iv.min() >= period * (1 - jitter) - 1e-6
    assert iv.max() <= period + 1e-6
    if jitter:  # the jitter is actually used, not just allowed
        assert iv.max() - iv.min() > 0.9 * jitter * period
        assert np.mean(iv) == pytest.approx(period * (1 - jitter / 2), rel=0.02)
    else:
        assert np.allclose(iv, period)


def test_dropout_skips_that_share_of_check_ins() -> None:
    full = Beacon("b", 0, 60.0, 0.2).schedule(rng_for(3, 4), 0.0, 60.0 * 20000)
    dropped = Beacon("b", 0, 60.0, 0.2, dropout=0.3).schedule(rng_for(3, 4), 0.0, 60.0 * 20000)
    assert dropped.size / full.size == pytest.approx(0.7, abs=0.02)
    assert np.isin(dropped, full).all()  # the same schedule with check-ins missing


def test_planted_beacons_have_their_parameters(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    for bid in ("beacon-01", "beacon-02", "beacon-03", "beacon-05", "beacon-06"):
        p = planted[bid]
        c = p.conn
        period, jitter, dropout = (p.truth.params[k] for k in ("period_s", "jitter", "dropout"))
        iv = np.diff(np.sort(c["ts"]))
        assert iv.min() >= period * (1 - jitter) - 1e-6, bid
        if dropout == 0:
            assert iv.max() <= period + 1e-6, bid
        assert len(set(c["src"].tolist())) == 1 and ip_text(c["src"][0]) == p.truth.match["src_ip"]
        assert set(c["dport"].tolist()) == {p.truth.params["port"]}
        assert p.truth.params["connections"] == len(c) >= 6
        assert p.truth.start <= p.truth.end
    assert planted["beacon-03"].truth.params["port"] == 8443
    assert planted["beacon-06"].truth.params["port"] == 4444


def test_business_hours_only(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    for bid in ("beacon-04", "beacon-09"):
        ts = planted[bid].conn["ts"]
        hours = np.mod(ts, 86400) / 3600
        assert ((hours >= 8) & (hours < 18)).all() and office(ts).all()
        assert len(ts) >= 6


def test_outage_gives_failed_connections_only_during_it(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    c = planted["beacon-06"].conn
    state = c["cstate"]
    failed = np.isin(state, (S0, REJ))
    assert (state == S0).sum() > 10 and (state == REJ).sum() > 10
    assert (state[~failed] == SF).all()
    ts = c["ts"]
    # the failures form one contiguous stretch of the schedule: no success in between
    first, last = ts[failed].min(), ts[failed].max()
    assert failed[(ts >= first) & (ts <= last)].all()
    assert planted["beacon-06"].truth.params["failed"] == int(failed.sum())
    assert (c["bout"][failed] == 0).all() and (c["bin"][failed] == 0).all()


def test_cdn_fronted_beacon_rotates_addresses_consistently_with_dns(world) -> None:  # type: ignore[no-untyped-def]
    sim, planted = world
    p = planted["beacon-05"]
    domain = p.truth.match["domain"]
    assert p.truth.match == {"src_ip": p.truth.match["src_ip"], "domain": domain}
    assert "cef" not in p.truth.formats and "defender" in p.truth.formats
    c = p.conn
    used = set(c["dst"].tolist())
    assert len(used) >= 4 and used <= set(p.remote.tolist())
    w = sim.world
    dom = np.full(len(c), w.index[domain])
    answers = w.answers(dom, c["ts"], np.ones(len(c), bool))[0].to_pylist()
    assert all(ip_text(d) in a for d, a in zip(c["dst"].tolist(), answers, strict=True))
    # the implant resolves again when the 60 s TTL has run out
    q = p.dns
    assert len(q) >= len(c) // 2 and set(q["query"].to_pylist()) == {domain}
    assert (c["sni"] == w.index[domain]).all()


def test_c2_hidden_in_svchost(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    t = planted["beacon-04"].truth
    assert t.match_optional["process"] == "svchost.exe"
    assert t.params["cmdline"].endswith("svchost.exe -k netsvcs -p -s Schedule")
    assert t.match_optional["host"].endswith(".corp.example.com")


def test_slow_beacons_follow_the_span() -> None:
    _, one_day, _ = prepare(seed=11, hosts=60, days=1.0, scale=0.1)
    ids = {p.truth.id for p in one_day}
    assert "beacon-07" in ids and "beacon-08" not in ids  # 4 h yes, 6 h only with two days or more
    b7 = next(p for p in one_day if p.truth.id == "beacon-07")
    assert len(b7.conn) >= 6 and b7.truth.params["period_s"] == 4 * 3600
    _, three_days, _ = prepare(seed=11, hosts=60, days=3.0, scale=0.1)
    b8 = next(p for p in three_days if p.truth.id == "beacon-08")
    assert len(b8.conn) >= 6 and b8.truth.params["period_s"] == 6 * 3600
    _, short, _ = prepare(seed=11, hosts=60, days=0.5, scale=0.1)
    assert "beacon-07" not in {p.truth.id for p in short}  # 12 h cannot hold six 4 h check-ins
