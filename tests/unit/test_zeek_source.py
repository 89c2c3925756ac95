"""ZeekSource on small logs built here: TSV header handling, JSON, gzip, the ssl/http join, bad input."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from bothunt.schema import CONN_SCHEMA, DNS_SCHEMA, conform, empty_table
from bothunt.sources import sniff, zeek_tsv
from bothunt.sources.base import ReadContext, read_head
from bothunt.sources.zeek import ZeekSource
from bothunt.sources.zeek_join import siblings

CONN_FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration",
               "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes", "history",
               "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents"]
CONN_TYPES = ["time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count", "count",
              "string", "bool", "bool", "count", "string", "count", "count", "count", "count", "set[string]"]
DNS_FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "trans_id", "rtt",
              "query", "qclass", "qclass_name", "qtype", "qtype_name", "rcode", "rcode_name", "AA", "TC", "RD",
              "RA", "Z", "answers", "TTLs", "rejected"]
DNS_TYPES = ["time", "string", "addr", "port", "addr", "port", "enum", "count", "interval", "string", "count",
             "string", "count", "string", "count", "string", "bool", "bool", "bool", "bool", "count",
             "vector[string]", "vector[interval]", "bool"]


def header(path: str = "conn", fields: list[str] = CONN_FIELDS, types: list[str] | None = CONN_TYPES,
           sep: str = "\t", sep_decl: str = "\\x09", unset: str = "-", empty: str = "(empty)",
           set_sep: str = ",") -> list[str]:
    lines = [f"#separator {sep_decl}", f"#set_separator{sep}{set_sep}", f"#empty_field{sep}{empty}",
             f"#unset_field{sep}{unset}"]
    if path:
        lines.append(f"#path{sep}{path}")
    lines += [f"#open{sep}2024-05-01-00-00-00", f"#fields{sep}" + sep.join(fields)]
    if types is not None:
        lines.append(f"#types{sep}" + sep.join(types))
    return lines


def conn_row(i: int = 0, ts: str | None = None, state: str = "SF", src: str = "10.0.0.5",
             dst: str = "203.0.113.9", dport: int = 443, resp_pkts: str = "5", resp_bytes: str = "900",
             uid: str | None = None, sep: str = "\t") -> str:
    vals = [ts or f"{1714521600 + i}.250000", uid or f"C{i:05d}", src, str(40000 + i), dst, str(dport), "tcp",
            "ssl", "1.500000", "300", resp_bytes, state, "T", "F", "0", "ShADadFf", "6", "560", resp_pkts,
            "1100", "(empty)"]
    return sep.join(vals)


def write(path: Path, lines: list[str] | bytes, gz: bool = False) -> Path:
    data = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def read(path: Path) -> tuple[dict[str, pa.Table], list[tuple[int | None, str, str]], ReadContext]:
    rejects: list[tuple[int | None, str, str]] = []
    ctx = ReadContext(str(path), reject_fn=lambda line, reason, raw: rejects.append((line, reason, raw)))
    out: dict[str, list[pa.Table]] = {"conn": [], "dns": []}
    for batch in ZeekSource().read(path, ctx):
        out[batch.table].append(conform(batch.data, batch.table))
    tables = {k: pa.concat_tables(v) if v else empty_table(k) for k, v in out.items()}
    return tables, rejects, ctx


def utc(s: float) -> datetime:
    return datetime.fromtimestamp(s, UTC)


# ---------------------------------------------------------------------------------------------------
# Mapping


def test_conn_row_maps_every_column(tmp_path: Path) -> None:
    lines = [*header(), conn_row(0), "#close\t2024-05-01-01-00-00"]
    tables, rejects, ctx = read(write(tmp_path / "conn.log", lines))
    assert rejects == [] and ctx.skipped == 0
    conn = tables["conn"]
    assert conn.schema == CONN_SCHEMA
    (row,) = conn.to_pylist()
    assert row["ts"] == datetime(2024, 5, 1, 0, 0, 0, 250000, tzinfo=UTC)
    assert (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"]) == ("10.0.0.5", 40000,
                                                                                 "203.0.113.9", 443)
    assert (row["proto"], row["service"], row["duration"]) == ("tcp", "ssl", 1.5)
    assert (row["bytes_out"], row["bytes_in"], row["pkts_out"], row["pkts_in"]) == (300, 900, 6, 5)
    assert (row["action"], row["state"], row["uid"], row["source"]) == ("SF", "established", "C00000", "zeek")
    assert row["label"] is None and row["direction"] is None and row["remote_ip_type"] is None


def test_capture_relative_epoch_is_kept_to_the_microsecond(tmp_path: Path) -> None:
    tables, rejects, _ = read(write(tmp_path / "conn.log", [*header(), conn_row(0, ts="19.981745")]))
    assert rejects == []
    assert tables["conn"]["ts"][0].as_py() == datetime(1970, 1, 1, 0, 0, 19, 981745, tzinfo=UTC)


@pytest.mark.parametrize(("conn_state", "resp_pkts", "resp_bytes", "state"), [
    ("S0", "0", "0", "attempted"), ("SH", "0", "0", "attempted"), ("RSTOS0", "0", "0", "attempted"),
    ("REJ", "1", "0", "rejected"), ("RSTRH", "1", "0", "rejected"),
    ("S1", "2", "10", "established"), ("SF", "2", "10", "established"), ("S2", "2", "10", "established"),
    ("S3", "2", "10", "established"), ("RSTO", "2", "10", "established"), ("RSTR", "2", "10", "established"),
    ("SHR", "1", "0", "other"), ("OTH", "0", "0", "other"), ("OTH", "3", "-", "established"),
    ("OTH", "-", "120", "established"), ("XYZ", "1", "1", "other"),
])
def test_conn_state_is_normalised(tmp_path: Path, conn_state: str, resp_pkts: str, resp_bytes: str,
                                  state: str) -> None:
    row = conn_row(0, state=conn_state, resp_pkts=resp_pkts, resp_bytes=resp_bytes)
    tables, rejects, _ = read(write(tmp_path / "conn.log", [*header(), row]))
    assert rejects == []
    assert tables["conn"].select(["action", "state"]).to_pylist() == [{"action": conn_state, "state": state}]


def test_stratosphere_label_arrives_without_detailedlabel(tmp_path: Path) -> None:
    fields, types = [*CONN_FIELDS, "label", "detailedlabel"], [*CONN_TYPES, "string", "string"]
    rows = [conn_row(0) + "\tMalicious\tCC", conn_row(1) + "\tBenign\tGoogle", conn_row(2) + "\tBackground\t(empty)",
            conn_row(3) + "\t(empty)\t(empty)"]
    tables, rejects, _ = read(write(tmp_path / "conn.log.labeled", [*header(fields=fields, types=types), *rows]))
    assert rejects == []
    assert tables["conn"]["label"].to_pylist() == ["Malicious", "Benign", "Background", None]


def test_dns_row_maps_query_answers_and_ttls(tmp_path: Path) -> None:
    rows = [
        "\t".join(["1714521600.5", "Cd1", "10.0.0.5", "5353", "10.0.0.1", "53", "udp", "7", "0.01",
                   "WWW.Example.COM.", "1", "C_INTERNET", "1", "A", "0", "NOERROR", "F", "F", "T", "T", "0",
                   "cdn.example.net,93.184.216.34", "60.000000,300.000000", "F"]),
        "\t".join(["1714521601.5", "Cd2", "10.0.0.5", "5353", "10.0.0.1", "53", "udp", "8", "-",
                   "qxzvkw.com", "1", "C_INTERNET", "1", "A", "3", "NXDOMAIN", "F", "F", "T", "T", "0",
                   "-", "-", "F"]),
        "\t".join(["1714521602.5", "Cd3", "10.0.0.5", "5353", "10.0.0.1", "53", "udp", "9", "-",
                   "txt.example.org", "1", "C_INTERNET", "16", "-", "0", "-", "F", "F", "T", "T", "0",
                   "(empty)", "(empty)", "F"]),
    ]
    tables, rejects, _ = read(write(tmp_path / "dns.log", [*header("dns", DNS_FIELDS, DNS_TYPES), *rows]))
    assert rejects == []
    dns = tables["dns"]
    assert dns.schema == DNS_SCHEMA
    got = dns.select(["query", "qtype", "rcode", "answers", "ttls", "src_ip", "dst_ip", "uid"]).to_pylist()
    assert got == [
        {"query": "www.example.com", "qtype": "A", "rcode": "NOERROR", "answers": ["cdn.example.net",
         "93.184.216.34"], "ttls": [60.0, 300.0], "src_ip": "10.0.0.5", "dst_ip": "10.0.0.1", "uid": "Cd1"},
        {"query": "qxzvkw.com", "qtype": "A", "rcode": "NXDOMAIN", "answers": None, "ttls": None,
         "src_ip": "10.0.0.5", "dst_ip": "10.0.0.1", "uid": "Cd2"},
        {"query": "txt.example.org", "qtype": "16", "rcode": "0", "answers": [], "ttls": [],
         "src_ip": "10.0.0.5", "dst_ip": "10.0.0.1", "uid": "Cd3"},
    ]
    assert dns["ts"][0].as_py() == datetime(2024, 5, 1, 0, 0, 0, 500000, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------
# Header-driven TSV


def test_declared_separator_unset_empty_and_set_separator_are_honoured(tmp_path: Path) -> None:
    fields = ["ts", "uid", "id.orig_h", "id.resp_h", "query", "qtype_name", "rcode_name", "answers", "TTLs"]
    lines = [*header("dns", fields, None, sep="|", sep_decl="\\x7c", unset="NA", empty="EMPTY", set_sep=";"),
             "1714521600.0|C1|10.0.0.5|10.0.0.1|a.example|A|NOERROR|1.2.3.4;a,b.example|30.0;40.0",
             "1714521601.0|C2|10.0.0.5|10.0.0.1|b.example|NA|NA|EMPTY|NA"]
    tables, rejects, _ = read(write(tmp_path / "x.log", lines))
    assert rejects == []
    got = tables["dns"].select(["query", "qtype", "rcode", "answers", "ttls"]).to_pylist()
    assert got == [{"query": "a.example", "qtype": "A", "rcode": "NOERROR", "answers": ["1.2.3.4", "a,b.example"],
                    "ttls": [30.0, 40.0]},
                   {"query": "b.example", "qtype": None, "rcode": None, "answers": [], "ttls": None}]


def test_fields_header_changing_mid_file_remaps_columns(tmp_path: Path) -> None:
    second = ["uid", "ts", "id.resp_h", "id.resp_p", "id.orig_h", "id.orig_p", "proto", "conn_state", "label"]
    lines = [*header(), conn_row(0), conn_row(1), "#close\t2024-05-01-01-00-00",
             *header(fields=second, types=None),
             "\t".join(["Cx", "1714525200.0", "198.51.100.7", "22", "10.0.0.9", "50000", "tcp", "REJ", "Malicious"]),
             "\t".join(["Cy", "oops", "198.51.100.7", "22", "10.0.0.9", "50001", "tcp", "REJ", "Malicious"])]
    tables, rejects, _ = read(write(tmp_path / "conn.log", lines))
    conn = tables["conn"]
    assert conn.num_rows == 3
    last = conn.to_pylist()[-1]
    assert (last["uid"], last["src_ip"], last["src_port"], last["dst_ip"], last["dst_port"]) == (
        "Cx", "10.0.0.9", 50000, "198.51.100.7", 22)
    assert (last["state"], last["label"], last["bytes_out"]) == ("rejected", "Malicious", None)
    assert [(line, reason) for line, reason, _ in rejects] == [(len(lines), "bad ts value: 'oops'")]


@pytest.mark.parametrize("many", [False, True], ids=["few-patched", "many-split-in-bulk"])
def test_mixed_tab_and_space_separators_are_recovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      many: bool) -> None:
    if many:  # take the path for blocks with many such lines
        monkeypatch.setattr(zeek_tsv, "MANY_INVALID", 1)
    fields, types = [*CONN_FIELDS, "label", "detailedlabel"], [*CONN_TYPES, "string", "string"]
    lines = [*header(fields=fields, types=types),
             conn_row(0) + "\tMalicious\tCC",
             conn_row(1) + "   Benign   Google",               # label columns joined by spaces
             conn_row(2).replace("\t", "  ") + "\tBackground\t-",  # runs of spaces throughout
             conn_row(3) + "\tMalicious",                       # one field short: rejected
             conn_row(4) + "\tMalicious\tCC\textra"]            # one field too many: rejected
    tables, rejects, _ = read(write(tmp_path / "conn.log.labeled", lines))
    conn = tables["conn"]
    assert sorted(conn["uid"].to_pylist()) == ["C00000", "C00001", "C00002"]
    assert dict(zip(conn["uid"].to_pylist(), conn["label"].to_pylist(), strict=True)) == {
        "C00000": "Malicious", "C00001": "Benign", "C00002": "Background"}
    n_header = len(header(fields=fields, types=types))
    assert [(line, reason) for line, reason, _ in rejects] == [
        (n_header + 4, "22 fields where #fields declares 23"), (n_header + 5, "24 fields where #fields declares 23")]
    assert rejects[0][2] == lines[-2]


def test_fields_header_itself_joined_by_spaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IoT-23 style: `#fields ... tunnel_parents   label   detailedlabel` and rows to match; more
    such lines than MANY_INVALID, with a short one and a blank one among them."""
    monkeypatch.setattr(zeek_tsv, "MANY_INVALID", 10)
    lines = header(types=None)
    lines[-1] = lines[-1] + "   label   detailedlabel"
    lines += [conn_row(i) + "   Malicious   PartOfAHorizontalPortScan" for i in range(30)]
    lines[-10] = conn_row(20) + "   Malicious"
    lines[-5] = "   "
    tables, rejects, _ = read(write(tmp_path / "conn.log.labeled", lines))
    assert [(line, reason) for line, reason, _ in rejects] == [(len(lines) - 9, "21 fields where #fields declares 23")]
    assert tables["conn"]["uid"].to_pylist() == [f"C{i:05d}" for i in range(30) if i not in (20, 25)]
    assert tables["conn"]["label"].to_pylist() == ["Malicious"] * 28
    assert tables["conn"]["ts"][-1].as_py() == utc(1714521600 + 29 + 0.25)


def test_kind_from_file_name_then_fields_when_no_path(tmp_path: Path) -> None:
    lines = [*header(path=""), conn_row(0)]
    tables, _, _ = read(write(tmp_path / "conn.16:00:00-17:00:00.log", lines))
    assert tables["conn"].num_rows == 1
    tables, _, _ = read(write(tmp_path / "something.log", lines))
    assert tables["conn"].num_rows == 1
    dns_lines = [*header("", DNS_FIELDS, DNS_TYPES), "\t".join(["1.0", "C", "a", "1", "b", "53", "udp", "1", "-",
                 "x.org", "1", "C_INTERNET", "1", "A", "0", "NOERROR", "F", "F", "T", "T", "0", "-", "-", "F"])]
    tables, _, _ = read(write(tmp_path / "other.log", dns_lines))
    assert tables["dns"].num_rows == 1


def test_line_numbers_are_exact_across_many_small_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zeek_tsv, "CHUNK_BYTES", 300)
    lines = header()
    bad_lines = []
    for i in range(60):
        if i % 13 == 5:
            lines.append(conn_row(i, ts=f"x{i}"))
            bad_lines.append(len(lines))
        else:
            lines.append(conn_row(i))
        if i == 30:  # a repeated header block in the middle
            lines += ["#close\t2024-05-01-01-00-00", *header()]
    tables, rejects, _ = read(write(tmp_path / "conn.log", lines))
    assert [line for line, _, _ in rejects] == bad_lines
    assert all(raw == lines[line - 1] for line, _, raw in rejects)
    assert tables["conn"].num_rows == 60 - len(bad_lines)


# ---------------------------------------------------------------------------------------------------
# Bad input


def test_bad_values_are_rejected_with_line_and_reason(tmp_path: Path) -> None:
    lines = [*header(), conn_row(0), conn_row(1, ts="-"), conn_row(2, ts="12:00:01"), conn_row(3, ts="nan"),
             conn_row(4).replace("\t40004\t", "\t99999\t"), conn_row(5).replace("\t300\t", "\tlots\t"), conn_row(6)]
    tables, rejects, _ = read(write(tmp_path / "conn.log", lines))
    assert tables["conn"]["uid"].to_pylist() == ["C00000", "C00006"]
    n = len(header())
    assert sorted((line, reason) for line, reason, _ in rejects) == [
        (n + 2, "missing ts (unset field)"), (n + 3, "bad ts value: '12:00:01'"), (n + 4, "bad ts value: nan"),
        (n + 5, "id.orig_p out of range: 99999"), (n + 6, "bad orig_bytes value: 'lots'")]


@pytest.mark.parametrize("with_bad_ts", [False, True])
def test_outcome_of_a_row_does_not_depend_on_its_neighbours(tmp_path: Path, with_bad_ts: bool) -> None:
    """A bad value elsewhere sends the block down the per-value path; a non-finite duration must be
    treated the same there as in the bulk path (kept)."""
    lines = [*header(), conn_row(0).replace("\t1.500000\t", "\tnan\t"), conn_row(1, ts="x" if with_bad_ts else None)]
    tables, rejects, _ = read(write(tmp_path / "conn.log", lines))
    assert tables["conn"]["uid"].to_pylist() == (["C00000"] if with_bad_ts else ["C00000", "C00001"])
    assert len(rejects) == int(with_bad_ts)


def test_too_few_fields_rejected_and_neighbours_kept(tmp_path: Path) -> None:
    lines = [*header(), conn_row(0), "1714521600.0\tCshort\t10.0.0.5", conn_row(2)]
    tables, rejects, _ = read(write(tmp_path / "conn.log", lines))
    assert tables["conn"]["uid"].to_pylist() == ["C00000", "C00002"]
    assert [(line, reason) for line, reason, _ in rejects] == [(len(lines) - 1, "3 fields where #fields declares 21")]


def test_non_utf8_bytes_keep_the_row(tmp_path: Path) -> None:
    text = ("\n".join([*header(), conn_row(0), conn_row(1, uid="Cbad"), conn_row(2)]) + "\n").encode()
    text = text.replace(b"Cbad", b"C\xff\xfebad")
    tables, rejects, ctx = read(write(tmp_path / "conn.log", text))
    assert rejects == []
    assert tables["conn"]["uid"].to_pylist() == ["C00000", "C\ufffd\ufffdbad", "C00002"]
    assert any(note.startswith(f"line(s) {len(header()) + 2}:") for note in ctx.notes)


def test_empty_and_header_only_files_give_nothing_and_no_error(tmp_path: Path) -> None:
    for name, content in (("conn.log", b""), ("conn2.log", ("\n".join(header()) + "\n").encode())):
        tables, rejects, ctx = read(write(tmp_path / name, content))
        assert tables["conn"].num_rows == 0 and rejects == [] and ctx.rejected == 0
        assert any("no records" in note for note in ctx.notes)


def test_truncated_gzip_keeps_rows_before_the_damage(tmp_path: Path) -> None:
    lines = [*header(), *[conn_row(i) for i in range(3000)]]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "conn.log.gz"
    path.write_bytes(data[: len(data) // 2])
    tables, rejects, ctx = read(path)
    n = tables["conn"].num_rows
    assert 0 < n < 3000
    assert tables["conn"]["uid"].to_pylist() == [f"C{i:05d}" for i in range(n)]
    assert any("input ends early" in note for note in ctx.notes)
    assert len(rejects) <= 1 and all(r[1].startswith("truncated input") for r in rejects)


def test_data_before_any_fields_header_is_rejected(tmp_path: Path) -> None:
    lines = ["#separator \\x09", conn_row(0), *header()[1:], conn_row(1)]
    tables, rejects, _ = read(write(tmp_path / "conn.log", lines))
    assert tables["conn"]["uid"].to_pylist() == ["C00001"]
    assert [(line, reason) for line, reason, _ in rejects] == [(2, "data line before any #fields header")]


def test_gzip_and_rotated_names(tmp_path: Path) -> None:
    lines = [*header(), *[conn_row(i) for i in range(10)]]
    path = write(tmp_path / "conn.16:00:00-17:00:00.log.gz", lines, gz=True)
    assert read_head(path).startswith(b"#separator")
    tables, rejects, _ = read(path)
    assert tables["conn"].num_rows == 10 and rejects == []


# ---------------------------------------------------------------------------------------------------
# JSON


def test_json_lines_both_spellings_and_both_time_forms(tmp_path: Path) -> None:
    recs = [
        {"ts": 1714521600.25, "uid": "C1", "id.orig_h": "10.0.0.5", "id.orig_p": 40000, "id.resp_h": "203.0.113.9",
         "id.resp_p": 443, "proto": "tcp", "conn_state": "SF", "orig_bytes": 3, "resp_bytes": 4, "duration": 2},
        {"ts": 1714521601, "uid": "C2", "id_orig_h": "10.0.0.6", "id_orig_p": 40001, "id_resp_h": "203.0.113.9",
         "id_resp_p": 80, "proto": "tcp", "conn_state": "S0"},
        {"ts": 1714521602.5, "uid": "C3", "id": {"orig_h": "10.0.0.7", "orig_p": 40002, "resp_h": "203.0.113.9",
         "resp_p": 22}, "proto": "tcp", "conn_state": "REJ"},
    ]
    path = tmp_path / "conn.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    tables, rejects, _ = read(path)
    assert rejects == []
    got = tables["conn"].select(["ts", "uid", "src_ip", "src_port", "dst_port", "state", "duration"]).to_pylist()
    assert got == [
        {"ts": utc(1714521600.25), "uid": "C1", "src_ip": "10.0.0.5", "src_port": 40000, "dst_port": 443,
         "state": "established", "duration": 2.0},
        {"ts": utc(1714521601), "uid": "C2", "src_ip": "10.0.0.6", "src_port": 40001, "dst_port": 80,
         "state": "attempted", "duration": None},
        {"ts": utc(1714521602.5), "uid": "C3", "src_ip": "10.0.0.7", "src_port": 40002, "dst_port": 22,
         "state": "rejected", "duration": None},
    ]
    iso = [{"ts": "2024-05-01T00:00:00.250000Z", "uid": "Cd", "id.orig_h": "10.0.0.5", "id.resp_h": "10.0.0.1",
            "query": "Example.ORG", "qtype_name": "A", "rcode_name": "NXDOMAIN", "answers": ["1.2.3.4"],
            "TTLs": [30.0]}]
    path = tmp_path / "some.log"
    path.write_text("".join(json.dumps(r) + "\n" for r in iso))
    tables, rejects, _ = read(path)
    assert rejects == []
    assert tables["dns"].select(["ts", "query", "rcode", "answers", "ttls"]).to_pylist() == [
        {"ts": datetime(2024, 5, 1, 0, 0, 0, 250000, tzinfo=UTC), "query": "example.org", "rcode": "NXDOMAIN",
         "answers": ["1.2.3.4"], "ttls": [30.0]}]


def test_json_bad_lines_are_isolated_and_rejected(tmp_path: Path) -> None:
    good = {"ts": 1714521600.0, "uid": "C", "id.orig_h": "10.0.0.5", "id.orig_p": 1, "id.resp_h": "1.1.1.1",
            "id.resp_p": 53, "proto": "udp", "conn_state": "SF"}
    lines, bad = [], []
    for i in range(200):
        if i in (17, 18, 150):
            lines.append('{"ts": 1714521600.0, "uid": "Cbad", "id.orig_p": "not a port"}' if i != 18 else "{oops")
            bad.append(len(lines) + 1)  # a blank line goes first, below
        else:
            lines.append(json.dumps({**good, "uid": f"C{i}"}))
    path = tmp_path / "conn.log"
    path.write_text("\n" + "\n".join(lines) + "\n")
    tables, rejects, _ = read(path)
    assert [line for line, _, _ in rejects] == bad
    assert all(reason.startswith("not a Zeek JSON record") for _, reason, _ in rejects)
    assert tables["conn"]["uid"].to_pylist() == [f"C{i}" for i in range(200) if i not in (17, 18, 150)]


def test_json_other_logs_are_skipped_by_field_set(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_text(json.dumps({"ts": 1.0, "uid": "C", "id.orig_h": "a", "server_name": "x", "version": "TLSv13"})
                    + "\n")
    tables, rejects, ctx = read(path)
    assert tables["conn"].num_rows == 0 and rejects == []
    assert ctx.skipped == 1 and ctx.notes[0] == "1 records skipped: Zeek ssl log: joined into conn.server_name by uid"


# ---------------------------------------------------------------------------------------------------
# ssl/http join


SSL_FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "version", "server_name"]
HTTP_FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "trans_depth", "method", "host",
               "uri"]


def _ssl(uid: str, name: str) -> str:
    return "\t".join(["1.0", uid, "10.0.0.5", "1", "10.0.0.1", "3128", "TLSv13", name])


def _http(uid: str, method: str, host: str, uri: str) -> str:
    return "\t".join(["1.0", uid, "10.0.0.5", "1", "10.0.0.1", "3128", "1", method, host, uri])


def test_server_name_join_prefers_connect_then_sni_then_first_host(tmp_path: Path) -> None:
    conn = [*header(), *[conn_row(i, uid=u) for i, u in enumerate(["Ca", "Cb", "Cc", "Cd", "Ce", "Cf"])]]
    write(tmp_path / "conn.log", conn)
    write(tmp_path / "ssl.log", [*header("ssl", SSL_FIELDS, None), _ssl("Ca", "sni-a.example"),
                                 _ssl("Cb", "SNI-B.example."), _ssl("Cf", "-")])
    write(tmp_path / "http.log", [*header("http", HTTP_FIELDS, None),
                                  _http("Ca", "CONNECT", "proxy-target-a.example", "target-a.example:443"),
                                  _http("Cc", "GET", "first.example", "/"), _http("Cc", "GET", "second.example", "/"),
                                  _http("Cd", "CONNECT", "host-d.example:443", "-"),
                                  _http("Ce", "GET", "[2001:db8::1]:8080", "/x")])
    tables, rejects, ctx = read(tmp_path / "conn.log")
    assert rejects == []
    got = dict(zip(tables["conn"]["uid"].to_pylist(), tables["conn"]["server_name"].to_pylist(), strict=True))
    assert got == {"Ca": "target-a.example", "Cb": "sni-b.example", "Cc": "first.example", "Cd": "host-d.example",
                   "Ce": "2001:db8::1", "Cf": None}
    assert any(n == "server_name joined by uid from http.log, ssl.log: 5 of 6 conn rows named"
               or n == "server_name joined by uid from ssl.log, http.log: 5 of 6 conn rows named" for n in ctx.notes)


def test_join_uses_only_siblings_with_the_same_rotation_stamp(tmp_path: Path) -> None:
    write(tmp_path / "conn.16:00:00-17:00:00.log.gz", [*header(), conn_row(0, uid="Ca")], gz=True)
    write(tmp_path / "ssl.16:00:00-17:00:00.log.gz", [*header("ssl", SSL_FIELDS, None), _ssl("Ca", "right.example")],
          gz=True)
    write(tmp_path / "ssl.15:00:00-16:00:00.log.gz", [*header("ssl", SSL_FIELDS, None), _ssl("Ca", "wrong.example")],
          gz=True)
    write(tmp_path / "ssl.log.labeled", [*header("ssl", SSL_FIELDS, None), _ssl("Ca", "wrong.example")])
    sib = siblings(tmp_path / "conn.16:00:00-17:00:00.log.gz")
    assert [p.name for p in sib["ssl"]] == ["ssl.16:00:00-17:00:00.log.gz"] and sib["http"] == []
    assert [p.name for p in siblings(tmp_path / "conn.log.labeled")["ssl"]] == ["ssl.log.labeled"]
    tables, _, _ = read(tmp_path / "conn.16:00:00-17:00:00.log.gz")
    assert tables["conn"]["server_name"].to_pylist() == ["right.example"]


@pytest.mark.parametrize(("path", "reason"), [
    ("ssl", "Zeek ssl log: joined into conn.server_name by uid"),
    ("http", "Zeek http log: joined into conn.server_name by uid (CONNECT target or Host)"),
    ("notice", "Zeek notice log: Zeek's own alerts, not connections (bothunt runs its own detections)"),
    ("dhcp", "Zeek dhcp log: no canonical table for it"),
])
def test_logs_without_a_canonical_table_are_skipped_with_reason(tmp_path: Path, path: str, reason: str) -> None:
    lines = [*header(path, SSL_FIELDS, None), _ssl("Ca", "a.example"), "", _ssl("Cb", "b.example"),
             "#close\tx", *header(path, SSL_FIELDS, None), _ssl("Cc", "c.example")]
    tables, rejects, ctx = read(write(tmp_path / f"{path}.log", lines))
    assert tables["conn"].num_rows == tables["dns"].num_rows == 0 and rejects == []
    assert ctx.skipped == 3 and ctx.notes == [f"3 records skipped: {reason}"]


# ---------------------------------------------------------------------------------------------------
# Sniffing


def test_sniff_picks_zeek_for_tsv_and_zeek_json_only(tmp_path: Path) -> None:
    src = ZeekSource()
    tsv = write(tmp_path / "conn.log", [*header(), conn_row(0)])
    assert src.sniff(read_head(tsv), tsv) == 100
    assert sniff(tsv).id == "zeek"
    jz = tmp_path / "z.json"
    jz.write_text(json.dumps({"ts": 1.0, "uid": "C", "id.orig_h": "a", "id.resp_h": "b"}) + "\n")
    assert src.sniff(read_head(jz), jz) == 90
    eve = tmp_path / "eve.json"
    eve.write_text(json.dumps({"timestamp": "x", "event_type": "flow", "src_ip": "a", "dest_ip": "b"}) + "\n")
    assert src.sniff(read_head(eve), eve) == 0
    assert src.sniff(b"Date,Source,Destination\n1,2,3\n", tmp_path / "x.csv") == 0


def test_counts_of_a_realistic_mix(tmp_path: Path) -> None:
    """Rows and rejects add up to the data lines of the file, counted here by hand."""
    states = ["SF", "S0", "REJ", "OTH"]
    lines = [*header()]
    for i in range(500):
        lines.append(conn_row(i, state=states[i % 4], ts="bad" if i % 97 == 0 else None))
    tables, rejects, _ = read(write(tmp_path / "conn.log", lines))
    data_lines = sum(1 for ln in lines if ln and not ln.startswith("#"))
    assert tables["conn"].num_rows + len(rejects) == data_lines == 500
    assert len(rejects) == 6
    # conn_row's responder sent 5 packets, so its OTH rows count as established.
    expected = {"SF": "established", "S0": "attempted", "REJ": "rejected", "OTH": "established"}
    assert Counter(tables["conn"]["state"].to_pylist()) == Counter(
        expected[states[i % 4]] for i in range(500) if i % 97)
