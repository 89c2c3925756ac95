"""Beacon detection against the simulator's planted beacons and benign traps (three days, Zeek and
Defender output), scored with bothunt.evaluate."""

from __future__ import annotations

from pathlib import Path

import pytest

from bothunt import simulate
from bothunt.config import Settings
from bothunt.detections import beacon
from bothunt.engine import open_tables
from bothunt.evaluate import evaluate
from bothunt.ingest import ingest_paths
from bothunt.schema import severity_rank
from bothunt.workspace import Workspace

FORMATS = ("zeek", "defender")
# Benign traps the issue names (Poisson chat polling, fleet telemetry and updates, NTP, monitoring agents
# and licence checks on their real domains); backup clients are discussed in docs/beacon.md.
QUIET_TRAPS = ("trap-chat", "trap-chat-ip", "trap-telemetry", "trap-telemetry-ip", "trap-update",
               "trap-update-ip", "trap-monitoring", "trap-monitoring-ip", "trap-licence", "trap-licence-ip",
               "trap-ntp", "trap-p2p-beacon")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    report = simulate.run(out, seed=11, hosts=50, days=3.0, scale=0.2, formats=FORMATS, scenarios=["beacon"])
    tables = {}
    for fmt in FORMATS:
        ws = out / f"ws-{fmt}"
        assert not ingest_paths([out / fmt], ws).fatal
        tables[fmt] = ws
    return report, tables


def hunt(ws: Path, settings: Settings | None = None) -> list:
    return beacon.detect(open_tables(Workspace.open(ws), "duckdb"), settings or Settings())


@pytest.mark.parametrize("fmt", FORMATS)
def test_recall_and_traps(sim, fmt):
    report, tables = sim
    findings = hunt(tables[fmt])
    ev = evaluate(findings, report.truth, "low", fmt)
    planted = [t.id for t in report.truth if t.kind == "attack" and t.detection == "beacon" and fmt in t.formats]
    print(f"\n{fmt}: matched {ev.matched_ids}, missed {ev.missed_ids}")
    for f in sorted(findings, key=lambda f: (-severity_rank(f.severity), -f.score)):
        if f.severity != "info":
            print(f"  {f.severity:8s} {f.score:.2f} {f.title}")
    for hit in ev.trap_hits:
        print(f"  trap hit: {hit.truth_id} {hit.severity} {hit.title}")
    assert len(planted) >= 9  # periods 10 s .. 6 h, jitter 0-60%, dropout, business hours, CDN, outage
    assert len(set(ev.matched_ids) & set(planted)) / len(planted) >= 0.95
    assert not [h for h in ev.trap_hits if h.truth_id in QUIET_TRAPS]


def test_svchost_c2_found_from_defender(sim):
    """C2 inside svchost.exe on 443 to a look-alike of Microsoft's settings domain: excluded twice over by
    the published rule, found here."""
    report, tables = sim
    truth = next(t for t in report.truth if t.id == "beacon-04")
    found = [f for f in hunt(tables["defender"]) if f.domain == "settings-sync-win.com"]
    assert len(found) == 1
    f = found[0]
    assert (f.process or "").lower() == "svchost.exe" and f.dst_port == 443
    assert f.host == truth.match_optional["host"]
    assert severity_rank(f.severity) >= severity_rank("high")
    assert f.evidence["connections"] == truth.params["connections"]
    kql = hunt(tables["defender"], Settings(profile="sentinel-kql"))
    assert not [k for k in kql if (k.process or "").lower() == "svchost.exe" and k.dst_port == 443]
