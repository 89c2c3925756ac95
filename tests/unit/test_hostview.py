"""Host view: which findings belong together, and the combined score by its documented rule (computed
here by hand from the numbers)."""

from dataclasses import replace

import pytest

from bothunt.hostview import CORROBORATION, TARGET_WEIGHT, UNATTRIBUTED, combine, group
from bothunt.schema import Finding


def F(det, score, sev="medium", **kw):
    return Finding(detection=det, title=f"{det} {score}", severity=sev, score=score,
                   first_seen=kw.pop("first", "2026-03-02T08:00:00Z"), last_seen=kw.pop("last", "2026-03-02T09:00:00Z"),
                   explanation="x", **kw)


def test_one_host_three_detections_is_one_group_with_the_documented_score():
    fs = [F("beacon", 0.8, host="ws-1", src_ip="10.0.0.1"),
          F("beacon", 0.3, host="WS-1", src_ip="10.0.0.1", domain="b.example"),  # same host, other case
          F("dga", 0.6, src_ip="10.0.0.1"),  # address only: the one name seen with it
          F("relay", 0.5, host="ws-1")]
    (g,) = group(fs)
    assert g.key == "host:ws-1" and len(g.findings) == 4 and g.addresses == ["10.0.0.1"]
    assert g.per_detection == {"beacon": 0.8, "dga": 0.6, "relay": 0.5}
    by_hand = 1 - (1 - 0.8) * (1 - 0.6) * (1 - 0.5) * (1 - CORROBORATION) ** 2
    assert g.score == pytest.approx(by_hand, abs=1e-4)
    assert g.severity == "critical"  # 0.97 >= 0.85
    assert g.detections == ["beacon", "dga", "relay"]


def test_inbound_target_joins_its_host_at_half_weight():
    fs = [F("relay", 0.6, host="edge", src_ip="10.9.0.5"),
          F("inbound_flood", 0.8, sev="high", dst_ip="10.9.0.5", dst_port=22, src_ip="198.51.100.7")]
    (g,) = group(fs)
    assert g.roles == {fs[0].id: "actor", fs[1].id: "target"}
    assert g.per_detection == {"relay": 0.6, "inbound_flood": pytest.approx(0.8 * TARGET_WEIGHT)}
    assert g.score == pytest.approx(1 - 0.4 * 0.6 * (1 - CORROBORATION), abs=1e-4)
    # the attacker's external address is not an internal host
    assert "198.51.100.7" not in g.addresses
    (target_only,) = group([replace(fs[1], score=0.3)])
    # 0.15 alone would be info; the high finding on it guarantees one step lower than high
    assert target_only.score == pytest.approx(0.15) and target_only.severity == "medium"


def test_info_findings_are_listed_but_not_scored_and_severity_follows_the_worst_scored():
    fs = [F("beacon", 0.9, sev="info", host="a"), F("dga", 0.25, sev="high", host="a")]
    (g,) = group(fs)
    assert g.per_detection == {"beacon": 0.0, "dga": 0.25}
    assert g.score == 0.25
    assert g.severity == "high"  # the score alone says low; its scored finding says high
    (only_info,) = group([fs[0]])
    assert only_info.score == 0.0 and only_info.severity == "info"


def test_address_shared_by_two_names_merges_nothing():
    fs = [F("beacon", 0.5, host="a", src_ip="10.0.0.9"), F("beacon", 0.5, host="b", src_ip="10.0.0.9",
                                                          domain="x.example"),
          F("dga", 0.7, src_ip="10.0.0.9")]
    groups = group(fs)
    assert sorted(g.key for g in groups) == ["host:a", "host:b", "ip:10.0.0.9"]
    assert next(g for g in groups if g.key == "ip:10.0.0.9").score == 0.7


def test_findings_without_an_internal_side_are_apart_and_last():
    fleet = F("beacon", 0.2, sev="low", domain="telemetry.example")
    sweep = F("inbound_flood", 0.5, src_ip="198.51.100.1", dst_ip="10.0.0.0/24", dst_port=22)
    groups = group([fleet, F("dga", 0.4, host="z"), sweep])
    assert [g.key for g in groups] == ["host:z", UNATTRIBUTED]
    assert groups[-1].findings == [sweep, fleet] and groups[-1].score == 0.0


def test_order_is_by_combined_score_and_times_span_all_findings():
    fs = [F("beacon", 0.3, host="low"), F("beacon", 0.9, host="high", first="2026-03-02T07:00:00.5Z"),
          F("dga", 0.2, host="high", last="2026-03-03T00:00:00Z", first="2026-03-02T07:00:00Z")]
    groups = group(fs)
    assert [g.label for g in groups] == ["high", "low"]
    assert (groups[0].first_seen, groups[0].last_seen) == ("2026-03-02T07:00:00Z", "2026-03-03T00:00:00Z")


def test_combine_rule():
    assert combine({}) == 0.0
    assert combine({"a": 0.0}) == 0.0
    assert combine({"a": 0.5}) == 0.5
    assert combine({"a": 0.5, "b": 0.5}) == pytest.approx(1 - 0.25 * (1 - CORROBORATION), abs=1e-4)
    assert combine({"a": 1.0, "b": 0.3}) == 1.0
    # more detections never lower the score
    assert combine({"a": 0.5, "b": 0.1}) > combine({"a": 0.5})


def test_many_findings_of_one_detection_do_not_add_up():
    many = [replace(F("beacon", 0.4, host="h"), id=f"id{i}") for i in range(40)]
    (g,) = group(many)
    assert g.score == 0.4
