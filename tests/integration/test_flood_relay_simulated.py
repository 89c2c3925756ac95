"""inbound_flood and relay against the simulator's ground truth, in every format it writes.

One simulated organisation (two days, so services have a day of history) is written once per module in
Zeek, Defender, CEF and Suricata; each format is ingested and hunted on its own and scored with
bothunt.evaluate. Every planted flood, stuffing, spam run, brute force, sweep and ORB node the format can
see must be found with the right category and time range, and no benign trap (the legitimate surge, the
VPN gateway, the reverse proxy, the P2P clients) may reach medium.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from bothunt.config import Settings
from bothunt.detections import inbound_flood, relay
from bothunt.engine import open_tables
from bothunt.evaluate import evaluate, matches
from bothunt.ingest import ingest_paths
from bothunt.schema import SEVERITIES
from bothunt.simulate import run as simulate
from bothunt.workspace import Workspace

pytestmark = pytest.mark.slow
FORMATS = ("zeek", "defender", "cef", "suricata")
DETECTIONS = ("inbound_flood", "relay")


def expected_category(item) -> str:
    if item.scenario == "port_sweep":
        return "port_scan"
    if item.params.get("category") == "single_source":
        return "brute_force"
    if item.params.get("low_and_slow"):
        return "low_and_slow_stuffing"
    return {"http_flood": "http_flood", "spam": "spam"}.get(item.scenario, "credential_stuffing")


def seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    report = simulate(out, seed=11, hosts=50, days=2, scale=0.1, formats=FORMATS)
    return out, report.truth


@pytest.fixture(scope="module", params=FORMATS)
def hunted(request, sim, tmp_path_factory):
    out, truth = sim
    ws = tmp_path_factory.mktemp(f"ws-{request.param}")
    ingest_paths([out / request.param], ws)
    tables = open_tables(Workspace.open(ws))
    findings = inbound_flood.detect(tables, Settings()) + relay.detect(tables, Settings())
    return request.param, findings, [t for t in truth if t.detection in DETECTIONS]


def test_every_planted_attack_is_found(hunted):
    fmt, findings, truth = hunted
    report = evaluate(findings, truth, min_severity="low", fmt=fmt)
    print(f"\n{fmt}: " + ", ".join(f"{d}: recall {s.recall}, precision {s.precision}"
                                   for d, s in report.detections.items()))
    assert report.missed_ids == []
    assert {d: s.recall for d, s in report.detections.items()} == {d: 1.0 for d in DETECTIONS}


def test_category_and_time_range(hunted):
    fmt, findings, truth = hunted
    for item in truth:
        if item.kind != "attack" or fmt not in item.formats or item.detection != "inbound_flood":
            continue
        found = [f for f in findings if matches(f, item) and f.evidence["category"] == expected_category(item)]
        assert found, f"{item.id}: no finding of category {expected_category(item)}"
        f = min(found, key=lambda f: abs(seconds(f.first_seen) - seconds(item.start)))
        tolerance = 3600 if item.params.get("low_and_slow") else 300  # the campaign's bin width
        assert abs(seconds(f.first_seen) - seconds(item.start)) <= tolerance, (item.id, f.first_seen, item.start)
        assert abs(seconds(f.last_seen) - seconds(item.end)) <= tolerance, (item.id, f.last_seen, item.end)
        distributed = item.params.get("category") == "distributed"
        assert (f.src_ip is None) == distributed
        if not distributed:
            assert f.src_ip == item.params["src_ip"]


def test_orb_nodes_found_including_legs_on_443(hunted):
    fmt, findings, truth = hunted
    for item in truth:
        if item.kind == "attack" and item.detection == "relay" and fmt in item.formats:
            [f] = [f for f in findings if matches(f, item)]
            assert SEVERITIES.index(f.severity) >= SEVERITIES.index("high"), f.explanation
            assert f.evidence["legs_to"] == "public"
            assert {o["value"] for o in f.evidence["operators"]} <= set(item.params["upstream"])
            if 443 in item.params["out_ports"]:
                assert f.evidence["legs_on_80_443_53"] > 0 and f.dst_port == 443


def test_no_trap_at_medium_or_above(hunted):
    fmt, findings, truth = hunted
    report = evaluate(findings, truth, min_severity="low", fmt=fmt)
    assert report.trap_hits == []
    traps = [t for t in truth if t.kind == "benign" and fmt in t.formats]
    assert {t.scenario for t in traps} >= {"web_surge", "vpn", "rproxy", "p2p"}
    for f in findings:
        for t in traps:
            if matches(f, t):
                assert SEVERITIES.index(f.severity) < SEVERITIES.index("medium"), (t.id, f.title)
