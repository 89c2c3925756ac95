"""bothunt.simulate.run: determinism per seed, the report against the files (counted independently),
truth.jsonl, hourly rotation for multi-day runs, scenario selection and argument errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bothunt.errors import ConfigError
from bothunt.simulate import FORMATS, run
from bothunt.simulate.truth import load_truth

SMALL = {"hosts": 50, "scale": 0.02, "days": 0.25,
         "scenarios": ("beacon-03", "beacon-06", "relay-02", "sweep-single", "dga-dict")}


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def data_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip() and not line.startswith(b"#"))


@pytest.fixture(scope="module")
def small(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("sim")
    calls: list[tuple[int, int]] = []
    report = run(out / "a", seed=21, formats=FORMATS, progress=lambda d, t: calls.append((d, t)), **SMALL)
    return out, report, calls


def test_same_seed_same_bytes_other_seed_other_bytes(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, report, _ = small
    again = run(tmp_path / "b", seed=21, formats=FORMATS, **SMALL)
    first = digests(out / "a")
    assert first == digests(tmp_path / "b")
    assert len(first) == 4 + 4 + 1 + 1 + 1 + 1 + 2  # zeek x4, zeek-json x4, defender, cef, suricata, truth, intel x2
    assert again.events == report.events
    other = run(tmp_path / "c", seed=22, formats=("zeek",), **SMALL)
    assert digests(tmp_path / "c")["zeek/conn.log"] != first["zeek/conn.log"]
    assert other.total("zeek") != report.total("zeek")


def test_report_matches_the_files(small) -> None:  # type: ignore[no-untyped-def]
    out, report, calls = small
    root = out / "a"
    assert report.total("zeek") == data_lines(root / "zeek/conn.log") == data_lines(root / "zeek-json/conn.log")
    assert report.total_dns("zeek") == data_lines(root / "zeek/dns.log")
    defender_rows = data_lines(root / "defender/DeviceNetworkEvents.csv") - 1  # header
    assert report.total("defender") + report.total_dns("defender") == defender_rows
    assert report.total_dns("defender") == report.total_dns("zeek") > 0  # every lookup is a managed device's
    assert report.total("cef") == data_lines(root / "cef/firewall.cef")
    with open(root / "suricata/eve.json", "rb") as fh:
        kinds = [json.loads(line)["event_type"] for line in fh]
    assert kinds.count("flow") == report.total("suricata") and kinds.count("dns") == report.total_dns("suricata")
    assert report.total("defender") < report.total("zeek") and report.total("cef") < report.total("zeek")
    assert report.events["zeek"]["sweep-single"] == 1024 == report.events["cef"]["sweep-single"]
    assert report.events["defender"].get("sweep-single", 0) == 1  # only port 443 is open (1194 > 1024)
    assert calls[-1][0] == calls[-1][1] == len(calls) and len(calls) >= 6
    assert root / "truth.jsonl" in report.files and report.truth_path == root / "truth.jsonl"


def test_truth_file(small) -> None:  # type: ignore[no-untyped-def]
    out, report, _ = small
    truth = load_truth(out / "a" / "truth.jsonl")
    assert truth == report.truth
    attacks = [t for t in truth if t.kind == "attack"]
    assert sorted(t.id for t in attacks) == sorted(SMALL["scenarios"])
    assert len({t.id for t in truth}) == len(truth)
    assert {t.detection for t in truth} <= {"beacon", "inbound_flood", "relay", "dga", "dns_c2"}
    traps = {t.id: t for t in truth if t.kind == "benign"}
    assert traps["trap-ntp"].match == {"dst_port": 123} and "trap-web-surge" in traps
    for t in attacks:
        assert report.start <= t.start <= t.end <= report.end
        assert set(t.formats) <= set(FORMATS)


def test_zeek_headers_look_like_zeek(small) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = small
    lines = (out / "a" / "zeek" / "conn.log").read_text().splitlines()
    assert lines[0] == "#separator \\x09" and lines[4] == "#path\tconn" and lines[-1].startswith("#close\t")
    fields, types = lines[6].split("\t")[1:], lines[7].split("\t")[1:]
    assert fields[:6] == ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
    assert len(fields) == len(types) == 21
    for row in lines[8:50]:
        assert len(row.split("\t")) == 21
    uids = [row.split("\t")[1] for row in lines[8:-1]]
    assert len(set(uids)) == len(uids) and all(len(u) == 18 and u[0] == "C" for u in uids)


def test_multi_day_runs_rotate_hourly(tmp_path: Path) -> None:
    report = run(tmp_path, seed=3, hosts=50, scale=0.01, days=2.0, scenarios=("beacon-08",))
    conn = sorted((tmp_path / "zeek").rglob("conn.*.log"))
    assert len(conn) == 48
    assert conn[0].relative_to(tmp_path / "zeek").as_posix() == "2024-03-04/conn.00:00:00-01:00:00.log"
    assert sum(data_lines(p) for p in conn) == report.total("zeek")
    text = conn[5].read_text().splitlines()
    assert text[5] == "#open\t2024-03-04-05-00-00" and text[-1] == "#close\t2024-03-04-06-00-00"
    ts = [float(line.split("\t")[0]) for line in text[8:-1]]
    assert ts and min(ts) >= 1709528400 - 1 and max(ts) < 1709532000
    assert [t.id for t in report.truth if t.kind == "attack"] == ["beacon-08"]


def test_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown simulator format"):
        run(tmp_path, formats=("pcap",))
    with pytest.raises(ConfigError, match="hosts"):
        run(tmp_path, hosts=10)
    with pytest.raises(ConfigError, match="unknown scenario"):
        run(tmp_path, hosts=50, scale=0.01, days=0.1, scenarios=("beacon-99",))
