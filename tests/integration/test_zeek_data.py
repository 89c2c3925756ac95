"""ZeekSource on the real Zeek logs in ../shared/data/zeek (RITA test data, Stratosphere captures).

Every expectation is counted here from the raw files with plain Python (split on tabs, look columns up
by the `#fields` header), independently of the parser under test.
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from bothunt.schema import conform
from bothunt.sources import sniff
from bothunt.sources.base import ReadContext
from bothunt.sources.zeek import ZeekSource

CANONICAL = {"conn", "dns"}


def _text(path: Path) -> str:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()


def _records(path: Path) -> list[dict[str, str]]:
    """Data lines as dicts keyed by the `#fields` in force (the files here use tabs throughout)."""
    fields: list[str] = []
    out = []
    for line in _text(path).splitlines():
        if line.lstrip().startswith("#"):
            if line.startswith("#fields"):
                fields = line.split("\t")[1:]
            continue
        if line.strip():
            out.append(dict(zip(fields, line.split("\t"), strict=True)))
    return out


def _count(path: Path) -> int:
    """Data lines: neither headers nor blank."""
    return sum(1 for line in _text(path).splitlines() if line.strip() and not line.lstrip().startswith("#"))


def _path_of(path: Path) -> str:
    for line in _text(path).splitlines():
        if line.startswith("#path"):
            return line.split("\t")[1]
    raise AssertionError(f"{path} has no #path")


def _read(path: Path) -> tuple[dict[str, pa.Table], list[tuple[int | None, str, str]], ReadContext]:
    rejects: list[tuple[int | None, str, str]] = []
    ctx = ReadContext(str(path), reject_fn=lambda line, reason, raw: rejects.append((line, reason, raw)))
    out: dict[str, list[pa.Table]] = {"conn": [], "dns": []}
    for batch in ZeekSource().read(path, ctx):
        out[batch.table].append(conform(batch.data, batch.table))
    return {k: pa.concat_tables(v) for k, v in out.items() if v}, rejects, ctx


def _logs(shared_data: Path) -> list[Path]:
    return sorted(p for p in (shared_data / "zeek").glob("*/*") if p.name != "README.md")


def test_every_zeek_log_reads_completely(shared_data: Path) -> None:
    logs = _logs(shared_data)
    assert len(logs) >= 28
    for path in logs:
        assert sniff(path).id == "zeek", path
        tables, rejects, ctx = _read(path)
        kind, n = _path_of(path), _count(path)
        assert n > 0, path
        assert rejects == [] and ctx.rejected == 0, (path, rejects[:3])
        if kind in CANONICAL:
            assert {k: t.num_rows for k, t in tables.items()} == {kind: n}, path
            assert ctx.skipped == 0, path
        else:
            assert tables == {} and ctx.skipped == n, path
            assert ctx.notes[0].startswith(f"{n} records skipped: Zeek {kind} log: "), path


def test_notice_log_line_with_a_space_instead_of_a_tab_is_still_only_counted(shared_data: Path) -> None:
    """ctu-mixed-ssh-guessing/notice.log line 21 has a space where a tab belongs; notice logs are
    skipped, so it costs nothing, but it must still be counted."""
    path = shared_data / "zeek" / "ctu-mixed-ssh-guessing" / "notice.log"
    line21 = _text(path).splitlines()[20]
    assert "- SSH::Password_Guessing" in line21
    _, rejects, ctx = _read(path)
    assert rejects == [] and ctx.skipped == 13


@pytest.mark.parametrize(("capture", "name", "expected"), [
    ("ctu-botnet-230-1-njrat", "labeled-conn.log", {"Malicious": 244, "Benign": 9, "Background": 739}),
    ("ctu-normal-40-exposed", "conn.log.labeled", {"Malicious": 4201, "Benign": 1402, "Background": 60}),
    ("ctu-normal-42-exposed", "conn.log.labeled", {"Malicious": 3373, "Benign": 1937, "Background": 37}),
    ("ctu-sme-11-remcos", "conn.log.labeled", {"Malicious": 719, "Benign": 44, "Unknown": 3}),
])
def test_stratosphere_labels_arrive(shared_data: Path, capture: str, name: str, expected: dict[str, int]) -> None:
    path = shared_data / "zeek" / capture / name
    counted = Counter(r["label"] for r in _records(path))
    assert counted == expected  # the dataset's published numbers, checked against the file itself
    tables, rejects, _ = _read(path)
    assert rejects == []
    assert Counter(tables["conn"]["label"].to_pylist()) == expected


def test_remcos_rejected_connections_to_its_c2(shared_data: Path) -> None:
    path = shared_data / "zeek" / "ctu-sme-11-remcos" / "conn.log.labeled"
    counted = sum(1 for r in _records(path) if r["id.resp_h"] == "66.63.168.35" and r["id.resp_p"] == "5888"
                  and r["conn_state"] == "REJ")
    assert counted == 718
    conn = _read(path)[0]["conn"]
    to_c2 = conn.filter(pc.and_(pc.equal(conn["dst_ip"], "66.63.168.35"), pc.equal(conn["dst_port"], 5888)))
    assert Counter(to_c2["state"].to_pylist())["rejected"] == counted


def _names_by_uid(folder: Path, stamp: str = "") -> dict[str, str]:
    """uid -> name the way the join documents it: CONNECT target, else SNI, else first Host."""
    http = [r for p in folder.glob(f"http{stamp}.log*") for r in _records(p)]
    ssl = [r for p in folder.glob(f"ssl{stamp}.log*") for r in _records(p)]
    names: dict[str, str] = {}
    for r in http:
        if r["method"] == "CONNECT" and r["uid"] not in names:
            names[r["uid"]] = r["uri"].rsplit(":", 1)[0].lower()
    for r in ssl:
        if r["server_name"] not in ("-", "(empty)") and r["uid"] not in names:
            names[r["uid"]] = r["server_name"].lower()
    for r in http:
        if r["host"] not in ("-", "(empty)") and r["uid"] not in names:
            names[r["uid"]] = r["host"].rsplit(":", 1)[0].lower()
    return names


def test_rita_proxy_beacon_destination_is_named_through_the_proxy(shared_data: Path) -> None:
    folder = shared_data / "zeek" / "rita-proxy"
    names = _names_by_uid(folder)
    via_proxy = [r["uid"] for r in _records(folder / "conn.log")
                 if (r["id.orig_h"], r["id.resp_h"], r["id.resp_p"]) == ("10.136.0.18", "10.136.0.16", "3128")]
    expected = Counter(names.get(u) for u in via_proxy)
    assert expected["www.honestimnotevil.com"] == 397 and expected["www.google.com"] == 10

    conn = _read(folder / "conn.log")[0]["conn"]
    pair = conn.filter(pc.and_(pc.equal(conn["src_ip"], "10.136.0.18"),
                               pc.and_(pc.equal(conn["dst_ip"], "10.136.0.16"), pc.equal(conn["dst_port"], 3128))))
    assert Counter(pair["server_name"].to_pylist()) == expected
    assert dict(zip(conn["uid"].to_pylist(), conn["server_name"].to_pylist(), strict=True)) == {
        u: names.get(u) for u in conn["uid"].to_pylist()}


@pytest.mark.parametrize("stamp", [".15:00:00-16:00:00", ".16:00:00-17:00:00"])
def test_rita_proxy_rolling_hourly_gzip(shared_data: Path, stamp: str) -> None:
    folder = shared_data / "zeek" / "rita-proxy-rolling"
    path = folder / f"conn{stamp}.log.gz"
    records = _records(path)
    tables, rejects, ctx = _read(path)
    assert rejects == [] and tables["conn"].num_rows == len(records)
    names = _names_by_uid(folder, stamp)  # the same hour's ssl/http only
    conn = tables["conn"]
    got = dict(zip(conn["uid"].to_pylist(), conn["server_name"].to_pylist(), strict=True))
    assert got == {r["uid"]: names.get(r["uid"]) for r in records}
    assert sum(v is not None for v in got.values()) > 0
    assert any(n.startswith(f"server_name joined by uid from ssl{stamp}.log.gz, http{stamp}.log.gz")
               for n in ctx.notes)


def test_dns_queries_are_normalised(shared_data: Path) -> None:
    path = shared_data / "zeek" / "ctu-botnet-355-1-simda" / "dns.log"
    records = _records(path)
    dns = _read(path)[0]["dns"]
    assert dns["query"].to_pylist() == [None if r["query"] == "-" else r["query"].lower().rstrip(".")
                                        for r in records]
    assert dns["rcode"].to_pylist() == [None if r["rcode_name"] == "-" else r["rcode_name"] for r in records]
    nx = sum(r["rcode_name"] == "NXDOMAIN" for r in records)
    assert nx > 0 and dns["rcode"].to_pylist().count("NXDOMAIN") == nx
    answers = [None if r["answers"] == "-" else r["answers"].split(",") for r in records]
    assert dns["answers"].to_pylist() == answers


def test_ingest_of_a_whole_folder(shared_data: Path, tmp_path: Path) -> None:
    """The pipeline walks the folder and calls the source per file: rows, skips and zero rejects."""
    from bothunt.ingest import ingest_paths

    folder = shared_data / "zeek" / "rita-proxy"
    report = ingest_paths([folder], tmp_path / "ws")
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["conn.log"].rows == {"conn": _count(folder / "conn.log")}
    assert by_name["dns.log"].rows == {"dns": _count(folder / "dns.log")}
    assert by_name["ssl.log"].skipped == _count(folder / "ssl.log")
    assert by_name["http.log"].skipped == _count(folder / "http.log")
    assert report.total("rejected") == 0
