"""bothunt.evaluate on hand-made findings and truth: matching rule, precision, recall, trap hits."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from bothunt.errors import InputError
from bothunt.evaluate import evaluate, load_truth, matches, render_rich
from bothunt.schema import Finding
from bothunt.simulate.truth import TruthItem, write_truth

T0, T1 = "2024-03-04T08:00:00Z", "2024-03-04T12:00:00Z"


def finding(detection: str, severity: str = "high", first: str | None = "2024-03-04T09:00:00Z",
            last: str | None = "2024-03-04T10:00:00Z", **entities) -> Finding:  # type: ignore[no-untyped-def]
    return Finding(detection=detection, title=f"{detection} test", severity=severity, score=0.5,
                   first_seen=first, last_seen=last, explanation="test", **entities)


def item(tid: str, detection: str, match: dict, kind: str = "attack", **kw) -> TruthItem:  # type: ignore[no-untyped-def]
    return TruthItem(tid, kind, detection, detection, match, kw.pop("start", T0), kw.pop("end", T1), **kw)


TRUTH = [
    item("b1", "beacon", {"src_ip": "10.0.0.1", "dst_ip": "45.137.1.1", "dst_port": 443},
         match_optional={"process": "svchost.exe", "host": "ws-0001.corp.example.com"}),
    item("b2", "beacon", {"src_ip": "10.0.0.2", "domain": "evil-cdn.net"}, formats=("zeek", "defender")),
    item("b3", "beacon", {"src_ip": "10.0.0.3", "dst_ip": "45.137.3.3", "dst_port": 8443}),
    item("f1", "inbound_flood", {"dst_ip": "192.168.100.10", "dst_port": 80}),
    item("d1", "dga", {"src_ip": "10.0.0.9"}, formats=("zeek", "suricata")),
    item("trap-ntp", "beacon", {"dst_port": 123}, kind="benign"),
    item("trap-surge", "inbound_flood", {"dst_ip": ["192.168.100.10"]}, kind="benign",
         start="2024-03-04T14:00:00Z", end="2024-03-04T15:00:00Z"),
]


def test_matching_rule_keys_domains_and_optional_entities() -> None:
    b1, b2 = TRUTH[0], TRUTH[1]
    assert matches(finding("beacon", src_ip="10.0.0.1", dst_ip="45.137.1.1", dst_port=443), b1)
    assert not matches(finding("relay", src_ip="10.0.0.1", dst_ip="45.137.1.1", dst_port=443), b1)
    assert not matches(finding("beacon", src_ip="10.0.0.1", dst_ip="45.137.1.1"), b1)  # port missing
    assert not matches(finding("beacon", src_ip="10.0.0.1", dst_ip="45.137.1.1", dst_port=444), b1)
    # optional entities: checked only when the finding carries them; case-insensitive; short host name
    assert matches(finding("beacon", src_ip="10.0.0.1", dst_ip="45.137.1.1", dst_port=443,
                           process="SVCHOST.EXE", host="WS-0001"), b1)
    assert not matches(finding("beacon", src_ip="10.0.0.1", dst_ip="45.137.1.1", dst_port=443,
                               process="chrome.exe"), b1)
    assert not matches(finding("beacon", src_ip="10.0.0.1", dst_ip="45.137.1.1", dst_port=443,
                               host="ws-0002.corp.example.com"), b1)
    # domain: equal or a subdomain, case-insensitive; not a suffix that is not a label boundary
    assert matches(finding("beacon", src_ip="10.0.0.2", domain="Evil-CDN.net"), b2)
    assert matches(finding("beacon", src_ip="10.0.0.2", domain="a.b.evil-cdn.net."), b2)
    assert not matches(finding("beacon", src_ip="10.0.0.2", domain="notevil-cdn.net"), b2)


def test_time_overlap() -> None:
    b3 = TRUTH[2]
    ents = {"src_ip": "10.0.0.3", "dst_ip": "45.137.3.3", "dst_port": 8443}
    assert matches(finding("beacon", first="2024-03-04T11:59:59Z", last="2024-03-04T13:00:00Z", **ents), b3)
    assert matches(finding("beacon", first="2024-03-04T07:00:00Z", last="2024-03-04T08:00:00Z", **ents), b3)
    assert not matches(finding("beacon", first="2024-03-04T12:00:01Z", last="2024-03-04T13:00:00Z", **ents), b3)
    assert not matches(finding("beacon", first="2024-03-04T06:00:00Z", last="2024-03-04T07:59:59Z", **ents), b3)
    assert matches(finding("beacon", first=None, last=None, **ents), b3)
    assert matches(finding("beacon", first=None, last="2024-03-04T09:00:00+00:00", **ents), b3)


FINDINGS = [
    # two findings on the same beacon: both true positives, one item matched
    finding("beacon", src_ip="10.0.0.1", dst_ip="45.137.1.1", dst_port=443, process="svchost.exe"),
    finding("beacon", "medium", src_ip="10.0.0.1", dst_ip="45.137.1.1", dst_port=443),
    finding("beacon", "medium", src_ip="10.0.0.2", domain="x.evil-cdn.net"),
    # NTP: a trap hit at medium, and one at low that is a false positive but not a paged trap hit
    finding("beacon", "medium", src_ip="10.0.0.50", dst_ip="52.1.1.1", dst_port=123),
    finding("beacon", "low", src_ip="10.0.0.51", dst_ip="52.1.1.1", dst_port=123),
    # info is below the default floor: ignored
    finding("beacon", "info", src_ip="10.0.0.3", dst_ip="45.137.3.3", dst_port=8443),
    finding("inbound_flood", dst_ip="192.168.100.10", dst_port=80),
    # the surge trap, in its own window
    finding("inbound_flood", "high", "2024-03-04T14:10:00Z", "2024-03-04T14:20:00Z", dst_ip="192.168.100.10",
            dst_port=443),
    # a detection with no truth at all
    finding("relay", "high", src_ip="10.0.0.77"),
]


def test_scores_exact() -> None:
    r = evaluate(FINDINGS, TRUTH)
    beacon, flood, relay, dga = (r.detections[k] for k in ("beacon", "inbound_flood", "relay", "dga"))
    assert (beacon.truth, beacon.matched, beacon.findings, beacon.true_positives) == (3, 2, 5, 3)
    assert beacon.recall == pytest.approx(2 / 3) and beacon.precision == pytest.approx(3 / 5)
    assert (flood.truth, flood.matched, flood.findings, flood.true_positives) == (1, 1, 2, 1)
    assert flood.precision == pytest.approx(0.5) and flood.recall == 1.0
    assert (relay.truth, relay.findings, relay.true_positives, relay.recall, relay.precision) == (0, 1, 0, None, 0.0)
    assert (dga.truth, dga.matched, dga.recall, dga.precision) == (1, 0, 0.0, None)
    assert sorted(r.matched_ids) == ["b1", "b2", "f1"]
    assert sorted(r.missed_ids) == ["b3", "d1"]
    assert sorted((t.truth_id, t.severity) for t in r.trap_hits) == [("trap-ntp", "medium"), ("trap-surge", "high")]
    assert len(r.false_positive_ids) == 4  # two NTP, the surge, the relay
    assert r.recall == pytest.approx(3 / 5)
    assert r.precision == pytest.approx(4 / 8)
    assert r.passes(0.6, 0.5) and not r.passes(0.61, 0.5) and not r.passes(0.6, 0.51)
    assert not r.passes(0.0, 0.5, per_detection=True)  # relay precision 0
    assert r.passes(0.0, 0.0, per_detection=True)


def test_severity_floor_and_format_filter() -> None:
    r = evaluate(FINDINGS, TRUTH, min_severity="medium")
    assert r.detections["beacon"].findings == 4 and r.detections["beacon"].true_positives == 3
    # in CEF, b2 (domain-keyed) and d1 (DNS) are not observable: they are neither expected nor missed
    r = evaluate(FINDINGS, TRUTH, fmt="cef")
    assert sorted(r.missed_ids) == ["b3"] and "b2" not in r.matched_ids
    assert r.detections["beacon"].truth == 2 and r.detections["beacon"].true_positives == 2
    assert "dga" not in r.detections


def test_empty_inputs() -> None:
    r = evaluate([], TRUTH)
    assert r.recall == 0.0 and r.precision is None and not r.passes(0.1, 0.0)
    assert evaluate([], []).passes(1.0, 1.0)


def test_truth_round_trip_and_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "truth.jsonl"
    assert write_truth(path, TRUTH) == len(TRUTH)
    assert load_truth(path) == [TruthItem.from_dict(json.loads(line)) for line in path.read_text().splitlines()]
    assert load_truth(path)[0].match_optional["process"] == "svchost.exe"
    assert load_truth(path)[1].formats == ("zeek", "defender")
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(InputError, match=r"truth.jsonl:8"):
        load_truth(path)


def test_render_rich_lists_every_detection() -> None:
    console = Console(width=160, record=True)
    console.print(render_rich(evaluate(FINDINGS, TRUTH)))
    text = console.export_text()
    for det in ("beacon", "inbound_flood", "relay", "dga", "all"):
        assert det in text
    assert "66.7%" in text and "missed: " in text and "b3" in text
