"""The command line through its entry point: exit codes, stdout kept clean, one-line errors."""

import gzip
import json
import subprocess
import sys

import pytest

from bothunt.cli import main

RITA = "zeek/rita-proxy"


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_hunt_jsonl_to_stdout_is_clean_json_and_fail_on_sets_exit_code(shared_data, capsys):
    code, out, err = run(["hunt", str(shared_data / RITA), "--format", "jsonl", "--fail-on", "info"], capsys)
    lines = [json.loads(x) for x in out.splitlines()]
    assert lines, "rita-proxy should produce findings"
    assert code == 1
    assert all(set(x) >= {"id", "detection", "severity", "score", "evidence", "explanation"} for x in lines)
    assert "ingest into" in err  # the ingest table goes to stderr, not into the JSON stream
    code, out, _ = run(["hunt", str(shared_data / RITA), "--format", "jsonl", "--fail-on", "critical",
                        "--only", "inbound_flood", "-q"], capsys)
    assert code == 0


def test_hunt_writes_csv_and_keeps_workspace(shared_data, tmp_path, capsys):
    out_file = tmp_path / "f.csv"
    ws = tmp_path / "ws"
    code, _, _ = run(["hunt", str(shared_data / RITA), "--format", "csv", "--out", str(out_file),
                        "--workspace", str(ws), "-q"], capsys)
    assert code == 0
    assert out_file.read_text().startswith("id,detection,title,severity,score")
    # hunting the kept workspace again gives the same findings without parsing again
    code, out2, _ = run(["hunt", str(ws), "--format", "jsonl"], capsys)
    assert code == 0 and len(out2.splitlines()) == len(out_file.read_text().splitlines()) - 1


@pytest.mark.parametrize(("args", "message"), [
    (["hunt", "/no/such/file"], "no such file or directory"),
    (["hunt", "NOT_TELEMETRY"], "not a telemetry format bothunt reads; tried: zeek"),
    (["hunt", "EMPTY"], "file is empty"),
    (["hunt", "TRUNCATED_GZ_ONLY_HEADER"], "nothing to hunt"),
    (["hunt", "RITA", "--fail-on", "urgent"], "--fail-on must be one of"),
    (["hunt", "RITA", "--internal", "10.0.0.0/33"], "internal networks"),
    (["hunt", "RITA", "--only", "nosuchdetection"], "unknown detection 'nosuchdetection'"),
    (["hunt", "RITA", "--format", "xml"], "unknown format 'xml'"),
    (["hunt", "RITA", "--since", "yesterday"], "not an ISO 8601 time"),
    (["hunt", "RITA", "--profile", "splunk"], "unknown profile"),
])
def test_user_errors_are_one_line_and_exit_2(args, message, shared_data, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello, this is not telemetry\n")
    (tmp_path / "empty.log").write_text("")
    (tmp_path / "cut.log.gz").write_bytes(gzip.compress(b"#separator \\x09\n" + b"x" * 1000)[:30])
    subst = {"NOT_TELEMETRY": str(tmp_path / "notes.txt"), "EMPTY": str(tmp_path / "empty.log"),
             "TRUNCATED_GZ_ONLY_HEADER": str(tmp_path / "cut.log.gz"), "RITA": str(shared_data / RITA)}
    code, out, err = run([subst.get(a, a) for a in args] + ["-q"], capsys)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err and out == ""


def test_usage_error_exits_2_through_the_installed_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bothunt", "hunt", "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "No such option" in proc.stderr


def test_ingest_then_reingest_reports_unchanged(shared_data, tmp_path, capsys):
    ws = tmp_path / "ws"
    code, _, err = run(["ingest", str(shared_data / "zeek/ctu-sme-11-remcos"), "--workspace", str(ws)], capsys)
    assert code == 0 and "ingested" in err
    code, _, err = run(["ingest", str(shared_data / "zeek/ctu-sme-11-remcos"), "--workspace", str(ws)], capsys)
    assert code == 0 and "unchanged" in err and "ingested" not in err
