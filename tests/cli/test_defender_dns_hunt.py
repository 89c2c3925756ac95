"""`bothunt hunt --only dga` on the simulator's Defender export alone (no Zeek, no Suricata): the DGA bots are
found from Defender's DnsConnectionInspected records, named by the device name Defender gives them, with the
live C2 connection and its process from Defender's connection events; nothing else is reported, so none of
the benign look-alikes that go through the same resolver (Chrome's probes, search-suffix NXDOMAIN noise,
CDN names, anti-virus and reverse lookups) is flagged."""

from __future__ import annotations

from importlib import resources

import pyarrow.parquet as pq
import pytest

from bothunt.cli import main
from bothunt.evaluate import evaluate
from bothunt.schema import severity_rank
from bothunt.simulate import run
from bothunt.simulate.org import RESOLVER
from bothunt.sinks.jsonl import read_findings
from bothunt.workspace import Workspace

pytestmark = pytest.mark.skipif(
    not resources.files("bothunt").joinpath("data", "dga_model.npz").is_file(),
    reason="src/bothunt/data/dga_model.npz is not built yet (tools/train_dga.py)")

BOTS = ("dga-random", "dga-dict")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("defender-only")
    report = run(out, seed=7, hosts=60, days=1.0, scale=0.3, formats=("defender",))
    assert sorted(p.name for p in (out / "defender").iterdir()) == ["DeviceNetworkEvents.csv"]
    return out, report


def test_dga_bots_found_from_defender_dns_alone(simulated, engine_con, tmp_path, capsys):  # type: ignore[no-untyped-def]
    engine, _ = engine_con
    out, report = simulated
    found, ws = tmp_path / "dga.jsonl", tmp_path / "ws"
    code = main(["hunt", str(out / "defender"), "--only", "dga", "--format", "jsonl", "--out", str(found),
                 "--workspace", str(ws), "--engine", engine, "-q"])
    capsys.readouterr()
    assert code == 0

    # the export became connections and lookups, none rejected or skipped
    workspace = Workspace.open(ws)
    rows = {name: sum(pq.ParquetFile(p).metadata.num_rows for p in workspace.parts(name)) for name in ("conn", "dns")}
    assert rows == {"conn": report.total("defender"), "dns": report.total_dns("defender")}
    assert rows["dns"] > 0

    findings = read_findings(found)
    truth = {t.id: t for t in report.truth}
    bots = [truth[b] for b in BOTS]
    assert {f.detection for f in findings} == {"dga"}
    assert sorted((f.src_ip, f.host, f.domain) for f in findings) == sorted(
        (b.match["src_ip"], b.match_optional["host"], b.params["resolved"]) for b in bots)
    assert all(severity_rank(f.severity) >= severity_rank("medium") for f in findings)
    assert RESOLVER not in {f.src_ip for f in findings}
    for f in findings:
        bot = next(b for b in bots if b.match["src_ip"] == f.src_ip)
        c2 = f.evidence["live_c2"][0]["connection"]
        assert (c2["dst_ip"], c2["dst_port"], c2["process"]) == (
            bot.params["resolved_ip"], 443, bot.match_optional["process"])
        assert f.process == bot.match_optional["process"]  # the finding names the process, not only evidence

    dga_truth = [t for t in report.truth if t.detection == "dga"]
    assert {t.id for t in dga_truth if t.kind == "benign"} >= {"trap-nxdomain", "trap-chrome-probe", "trap-cdn-dga"}
    scored = evaluate(findings, dga_truth, min_severity="info", fmt="defender")
    assert sorted(scored.matched_ids) == sorted(BOTS) and scored.trap_hits == []
