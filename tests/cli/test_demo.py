"""`bothunt demo` end to end (what `make demo` runs), on a smaller organisation to keep it quick."""

import json

import pytest

from bothunt import detections, evaluate
from bothunt.cli import main
from bothunt.sinks.jsonl import read_findings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--hosts", "60", "--seed", "5"]) == 0
    return out


@pytest.mark.parametrize("view", ["zeek", "defender"])
def test_demo_writes_every_output_and_finds_the_planted_attacks(demo, view):
    for ext in (".jsonl", ".csv", ".ocsf.jsonl", ".html"):
        assert (demo / f"findings-{view}{ext}").stat().st_size > 0
    findings = read_findings(demo / f"findings-{view}.jsonl")
    truth = evaluate.load_truth(demo / "data" / "truth.jsonl")
    registered = set(detections.ids())
    report = evaluate.evaluate(findings, truth, fmt=view)
    overall = report.to_dict()
    print(json.dumps(overall, indent=1)[:3000])
    found = {d: s for d, s in overall["detections"].items() if s["truth"] and d in registered}
    assert found, "no planted attack observable in this view"
    for det, s in found.items():
        assert s["recall"] >= 0.8, f"{view}: {det} recall {s['recall']}"
    assert not report.trap_hits, [h.truth_id for h in report.trap_hits]  # medium+ on a benign trap


def test_findings_carry_the_class_of_their_remote_side(demo):
    findings = read_findings(demo / "findings-zeek.jsonl")
    classes = {f.evidence["remote"]["net_class"] for f in findings if "remote" in f.evidence}
    assert {"hosting", "residential_isp", "cloud"} <= classes
    mixes = [f.evidence["remote_mix"]["by_class"] for f in findings
             if f.detection == "inbound_flood" and "remote_mix" in f.evidence]
    assert mixes and all(sum(m.values()) > 0 for m in mixes)


def test_eval_command_exits_by_the_bars_given(demo, capsys):
    args = ["eval", str(demo / "findings-zeek.jsonl"), "--truth", str(demo / "data" / "truth.jsonl"),
            "--format", "zeek"]
    assert main(args) == 0  # no bar given: a report, exit 0 (it raised TypeError before)
    assert "recall" in capsys.readouterr().out
    assert main([*args, "--min-recall", "0.8"]) == 0  # the demo test above holds every detection to 0.8
    assert main([*args, "--min-recall", "1.01"]) == 1  # no detection can reach it
