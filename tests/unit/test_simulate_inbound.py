"""Planted inbound floods and ORB relays: source counts, per-5-minute peaks, single sources, the port
sweep, relay lags and matching bytes. Statistics are recomputed here from the raw events."""

from __future__ import annotations

import numpy as np
import pytest

from bothunt.simulate import prepare
from bothunt.simulate.frames import REJ, S0, SVC
from bothunt.simulate.net import ip_text, is_internal
from bothunt.simulate.org import PROCS


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    sim, planted, _ = prepare(seed=5, hosts=60, days=1.0, scale=0.1)
    return sim, {p.truth.id: p for p in planted}


def peaks(ts: np.ndarray, src: np.ndarray) -> tuple[int, int]:
    """Most distinct sources and most events in any 5-minute bin, counted with plain Python."""
    sources: dict[int, set[int]] = {}
    events: dict[int, int] = {}
    for t, s in zip(ts.tolist(), src.tolist(), strict=True):
        b = int(t // 300)
        sources.setdefault(b, set()).add(s)
        events[b] = events.get(b, 0) + 1
    return max(len(v) for v in sources.values()), max(events.values())


@pytest.mark.parametrize("fid,sources,port,service", [
    ("flood-http", 1500, 80, "http"), ("stuff-ssh-fast", 400, 22, "ssh"), ("stuff-rdp-fast", 250, 3389, "rdp"),
    ("spam-burst", 800, 25, "smtp"), ("stuff-ssh-slow", 300, 22, "ssh"), ("stuff-rdp-slow", 300, 3389, "rdp"),
    ("brute-ssh-single", 1, 22, "ssh"),
])
def test_flood_sources_and_target(world, fid: str, sources: int, port: int, service: str) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    p = planted[fid]
    c = p.conn
    assert len(set(c["src"].tolist())) == sources
    assert not is_internal(c["src"]).any()
    assert set(c["dport"].tolist()) == {port} and (c["svc"] == SVC[service]).all()
    assert {ip_text(d) for d in set(c["dst"].tolist())} == {p.truth.match["dst_ip"]}
    assert p.truth.match == {"dst_ip": p.truth.match["dst_ip"], "dst_port": port}
    assert p.truth.detection == "inbound_flood" and p.truth.params["requests"] == len(c)
    listening = {PROCS[i].file for i in set(c["proc"].tolist())}
    assert listening == {{22: "sshd.exe", 3389: "svchost.exe", 80: "w3wp.exe", 25: "EdgeTransport.exe"}[port]}


def test_fast_floods_cross_the_kql_thresholds(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    for fid in ("flood-http", "stuff-ssh-fast", "stuff-rdp-fast", "spam-burst"):
        c = planted[fid].conn
        src_peak, req_peak = peaks(c["ts"], c["src"])
        assert src_peak >= 50 and req_peak >= 500, fid
        assert (src_peak, req_peak) == (planted[fid].truth.params["max_sources_per_5min"],
                                        planted[fid].truth.params["max_requests_per_5min"])


def test_low_and_slow_stays_under_every_5_minute_threshold(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    for fid in ("stuff-ssh-slow", "stuff-rdp-slow"):
        c = planted[fid].conn
        src_peak, req_peak = peaks(c["ts"], c["src"])
        assert src_peak < 50 and req_peak < 500, fid
        assert c["ts"].max() - c["ts"].min() > 5.5 * 3600
        per_source: dict[int, list[float]] = {}
        for s, t in zip(c["src"].tolist(), c["ts"].tolist(), strict=True):
            per_source.setdefault(s, []).append(t)
        assert {len(v) for v in per_source.values()} == {2}
        assert min(max(v) - min(v) for v in per_source.values()) > 3600  # a source's tries are far apart


def test_single_source_brute_force_and_port_sweep(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    brute = planted["brute-ssh-single"]
    assert brute.truth.params["category"] == "single_source" and len(brute.conn) > 1500
    assert brute.truth.params["src_ip"] == ip_text(brute.conn["src"][0])
    sweep = planted["sweep-single"]
    c = sweep.conn
    assert len(set(c["src"].tolist())) == 1
    assert sorted(c["dport"].tolist()) == list(range(1, 1025))
    assert c["ts"].max() - c["ts"].min() <= 180
    closed = ~np.isin(c["dport"], sweep.truth.params["open"])
    assert np.isin(c["cstate"][closed], (S0, REJ)).all()
    assert sweep.truth.match == {"dst_ip": ip_text(c["dst"][0])}
    assert "defender" not in sweep.truth.formats


def test_spam_burst_is_checked_against_a_dnsbl(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    p = planted["spam-burst"]
    q = p.dns
    assert len(q) == len(p.conn)
    assert all(name.endswith(".zen.spamhaus.org") for name in q["query"].to_pylist())


@pytest.mark.parametrize("rid,in_port,out_ports", [("relay-01", 443, {443}), ("relay-02", 8081, {31337, 9001, 4433})])
def test_relay_lags_and_matching_bytes(world, rid: str, in_port: int, out_ports: set[int]) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    p = planted[rid]
    c = p.conn
    node = p.truth.match["src_ip"]
    inbound = np.asarray([ip_text(d) == node for d in c["dst"].tolist()])
    outbound = np.asarray([ip_text(s) == node for s in c["src"].tolist()])
    assert (inbound ^ outbound).all() and inbound.sum() == outbound.sum() == p.truth.params["sessions"]
    up, down = set(c["src"][inbound].tolist()), set(c["dst"][outbound].tolist())
    assert not up & down and not is_internal(np.asarray(list(up | down))).any()
    assert set(c["dport"][inbound].tolist()) == {in_port} and set(c["dport"][outbound].tolist()) <= out_ports
    # every inbound session is followed by an outbound one within 0.05-2 s carrying the same bytes
    in_ts, out_ts = c["ts"][inbound], c["ts"][outbound]
    lag = out_ts - in_ts
    assert lag.min() >= 0.05 and lag.max() <= 2.0
    ratio_out = c["bout"][outbound] / c["bout"][inbound]
    ratio_in = c["bin"][outbound] / c["bin"][inbound]
    assert ((ratio_out > 0.99) & (ratio_out < 1.1)).all() and ((ratio_in > 0.97) & (ratio_in < 1.03)).all()
    assert p.truth.match_optional["process"] == "dllhost.exe"
