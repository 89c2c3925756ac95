"""CefSource on CEF lines built from the CEF specification and Microsoft's CEF-to-CommonSecurityLog
mapping (there is no public sample): every escape, syslog headers, time formats, garbage lines."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from bothunt.schema import conform
from bothunt.sources import base, cef
from bothunt.sources.base import ReadContext, read_head
from bothunt.sources.cef import CefSource, parse
from bothunt.sources.commonsecuritylog import CommonSecurityLogSource
from bothunt.sources.defender import DefenderSource

T = functools.partial(datetime, tzinfo=UTC)

VALID = [
    # RFC 3164 header, rt in CEF's date format, spaces and an escaped '=' inside values.
    r"<134>Nov 27 12:00:00 fw01 CEF:0|Palo Alto Networks|PAN-OS|10.1|end|TRAFFIC|3|rt=Nov 27 2024 12:00:01 "
    r"src=10.0.0.5 dst=93.184.216.34 spt=51000 dpt=443 proto=TCP act=allow in=5120 out=980 app=HTTPS "
    r"request=https://WWW.Example.com:443/login?u\=1 suser=alice sntdom=CORP externalId=77 dvchost=pa-fw01 "
    r"cs1Label=Rule Name cs1=allow web msg=first line\nsecond line",
    # RFC 5424 header: its timestamp is the event time when the CEF part has none.
    r"<134>1 2024-11-27T12:00:02.500Z fw02 CEF - - - CEF:0|Check Point|VPN-1 & FireWall-1|R81|1|Drop|5|"
    r"src=203.0.113.7 dst=10.0.0.9 spt=4444 dpt=22 proto=6 act=drop",
    # No syslog header; full key names; epoch-ms start/end; IPv6 in labelled custom address fields.
    r"CEF:0|Fortinet|FortiGate|7.0|13|traffic|3|startTime=1732708800000 endTime=1732708805250 "
    r"c6a2Label=Source IPv6 Address c6a2=2001:db8::5 c6a3Label=Destination IPv6 Address c6a3=2001:DB8:FFFF::1 "
    r"sourcePort=40000 destinationPort=853 transportProtocol=UDP deviceAction=accept bytesIn=0 bytesOut=120",
    # A zone in the date, a TLS SNI in a labelled custom string.
    r"CEF:0|Vendor|NGFW|2.0|200|conn|1|rt=Nov 27 2024 13:00:03 CET src=10.0.0.7 dst=198.51.100.20 dpt=443 "
    r"proto=TCP act=Accept cs3Label=TLS SNI cs3=API.example.net",
    # A naive date in the device's zone (dtz), dhost as the server name, shost as the endpoint.
    r"CEF:0|Vendor|NGFW|2.0|200|conn|1|rt=Nov 27 2024 13:00:04 dtz=Europe/Berlin src=10.0.0.8 "
    r"dst=198.51.100.21 dpt=80 proto=TCP act=blocked dhost=Files.Example.org shost=ws08.corp.example",
    # Year-less RFC 3164 time only: the year is the file's (set to 2025-01-01 below).
    r"<134>Dec 31 23:59:59 fw01 CEF:0|Vendor|NGFW|2.0|201|dns|1|src=10.0.0.5 dst=1.1.1.1 dpt=53 proto=UDP "
    r"act=allow",
]
EXPECTED = [
    dict(ts=T(2024, 11, 27, 12, 0, 1), duration=None, src_ip="10.0.0.5", src_port=51000, dst_ip="93.184.216.34",
         dst_port=443, proto="tcp", service="ssl", bytes_out=980, bytes_in=5120, state="established",
         action="allow", host=None, user="CORP\\alice", server_name="www.example.com", source="cef",
         uid="pa-fw01:77"),
    dict(ts=T(2024, 11, 27, 12, 0, 2, 500000), duration=None, src_ip="203.0.113.7", src_port=4444,
         dst_ip="10.0.0.9", dst_port=22, proto="tcp", service=None, bytes_out=None, bytes_in=None,
         state="rejected", action="drop", host=None, user=None, server_name=None, source="cef", uid=None),
    dict(ts=T(2024, 11, 27, 12, 0, 0), duration=5.25, src_ip="2001:db8::5", src_port=40000,
         dst_ip="2001:db8:ffff::1", dst_port=853, proto="udp", service=None, bytes_out=120, bytes_in=0,
         state="attempted", action="accept", host=None, user=None, server_name=None, source="cef", uid=None),
    dict(ts=T(2024, 11, 27, 12, 0, 3), duration=None, src_ip="10.0.0.7", src_port=None, dst_ip="198.51.100.20",
         dst_port=443, proto="tcp", service=None, bytes_out=None, bytes_in=None, state="established",
         action="Accept", host=None, user=None, server_name="api.example.net", source="cef", uid=None),
    dict(ts=T(2024, 11, 27, 12, 0, 4), duration=None, src_ip="10.0.0.8", src_port=None, dst_ip="198.51.100.21",
         dst_port=80, proto="tcp", service=None, bytes_out=None, bytes_in=None, state="rejected",
         action="blocked", host="ws08.corp.example", user=None, server_name="files.example.org", source="cef",
         uid=None),
    dict(ts=T(2024, 12, 31, 23, 59, 59), duration=None, src_ip="10.0.0.5", src_port=None, dst_ip="1.1.1.1",
         dst_port=53, proto="udp", service=None, bytes_out=None, bytes_in=None, state="established",
         action="allow", host=None, user=None, server_name=None, source="cef", uid=None),
]
GARBAGE = [
    ("this line is not CEF at all", "no CEF header (CEF:version|vendor|...)"),
    ("CEF:0|only|three|fields", "CEF header needs 7 '|'-terminated fields"),
    ("CEF:zero|V|P|1|1|n|1|src=10.0.0.1 dst=10.0.0.2", "bad CEF version 'zero'"),
    ("CEF:0|V|P|1|1|n|1|src=10.0.0.5 dst=10.0.0.6 dpt=70000 rt=1732708800000", "bad destination port: 70000"),
    ("CEF:0|V|P|1|1|n|1|src=10.0.0.5 dst=10.0.0.6 dpt=443", "missing time"),
    ("CEF:0|V|P|1|1|n|1|src=10.0.0.5 dst=10.0.0.6 rt=the day before", "bad time: the day before"),
    ("CEF:0|V|P|1|1|n|1|src=10.0.0.5 dst=10.0.0.300 rt=1732708800000", "bad destination address: 10.0.0.300"),
]
SYSTEM_EVENT = "CEF:0|V|P|1|9|config change|2|rt=1732708800000 suser=admin msg=policy installed"


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stamp = T(2025, 1, 1, 0, 30).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def read(path: Path, source=None) -> tuple[pa.Table, list[tuple], ReadContext]:
    rejects: list[tuple] = []
    ctx = ReadContext(str(path), reject_fn=lambda line, reason, raw: rejects.append((line, reason, raw)))
    batches = [conform(b.data, b.table) for b in (source or CefSource()).read(path, ctx)]
    table = pa.concat_tables(batches) if batches else conform(pa.table({}), "conn")
    return table, rejects, ctx


def project(table: pa.Table) -> list[dict]:
    return [{k: row[k] for k in EXPECTED[0]} for row in table.to_pylist()]


def test_parse_undoes_every_escape():
    line = (r"CEF:0|Sec\|Corp|Fire\\Wall|1.0|100|Traffic \| allowed|5|msg=a\=b c\\d\nnext\rend "
            r"cs1Label=Rule Name cs1=allow all  act=allow path=C:\\Temp\\x odd=tab\tstays")
    header, ext, prefix = parse(line)
    assert header == ["Sec|Corp", "Fire\\Wall", "1.0", "100", "Traffic | allowed", "5"]
    assert ext == {"msg": "a=b c\\d\nnext\rend", "cs1Label": "Rule Name", "cs1": "allow all",
                   "act": "allow", "path": "C:\\Temp\\x", "odd": "tab\\tstays"}
    assert prefix == ""


def test_parse_keeps_the_syslog_prefix_and_values_with_spaces():
    header, ext, prefix = parse("<13>Nov  7 01:02:03 host-a CEF:1|V|P|1|x|name with spaces|Low|"
                                "msg=hello world  request=http://x/?a=1&b=2 end=1")
    assert prefix == "<13>Nov  7 01:02:03 host-a "
    assert header[4] == "name with spaces"
    assert ext == {"msg": "hello world", "request": "http://x/?a=1&b=2", "end": "1"}


def test_rows_rejects_and_skips(tmp_path):
    lines = [VALID[0], GARBAGE[0][0], "", VALID[1], *[g for g, _ in GARBAGE[1:3]], VALID[2], SYSTEM_EVENT,
             *VALID[3:], *[g for g, _ in GARBAGE[3:]], "   "]
    path = write(tmp_path / "fw.log", lines)
    table, rejects, ctx = read(path)
    assert project(table) == EXPECTED
    expected_rejects = [(lines.index(g) + 1, reason, g) for g, reason in GARBAGE]
    assert rejects == expected_rejects
    assert ctx.skipped == 1 and "not a connection event" in ctx.notes[0]
    blank = sum(1 for ln in lines if not ln.strip())
    assert table.num_rows + len(rejects) + ctx.skipped + blank == len(lines)


def test_tiny_chunks_give_the_same_rows(tmp_path, monkeypatch):
    path = write(tmp_path / "fw.log", VALID + [g for g, _ in GARBAGE])
    monkeypatch.setattr(cef, "iter_chunks", functools.partial(base.iter_chunks, size=150))
    table, rejects, _ = read(path)
    assert project(table) == EXPECTED
    assert [r[0] for r in rejects] == list(range(len(VALID) + 1, len(VALID) + len(GARBAGE) + 1))


def test_cef_and_commonsecuritylog_give_the_same_row(tmp_path):
    cef_table, _, _ = read(write(tmp_path / "one.cef", VALID[:1]))
    csl = tmp_path / "one.csv"
    csl.write_text(
        "TimeGenerated [UTC],DeviceVendor,DeviceProduct,DeviceName,Computer,ReceiptTime,SourceIP,DestinationIP,"
        "SourcePort,DestinationPort,Protocol,DeviceAction,ReceivedBytes,SentBytes,ApplicationProtocol,RequestURL,"
        "SourceUserName,SourceNTDomain,ExtID,DeviceCustomString1Label,DeviceCustomString1\n"
        '"11/27/2024, 12:00:09.000 PM",Palo Alto Networks,PAN-OS,pa-fw01,fw01,Nov 27 2024 12:00:01,10.0.0.5,'
        "93.184.216.34,51000,443,TCP,allow,5120,980,HTTPS,https://WWW.Example.com:443/login?u=1,alice,CORP,77,"
        "Rule Name,allow web\n")
    csl_table, rejects, _ = read(csl, CommonSecurityLogSource())
    assert rejects == []
    a, b = cef_table.to_pylist(), csl_table.to_pylist()
    assert b[0].pop("source") == "commonsecuritylog" and a[0].pop("source") == "cef"
    assert a == b


def test_sniffing(tmp_path):
    log = write(tmp_path / "fw.log", [*VALID, GARBAGE[0][0]])
    bare = write(tmp_path / "bare.cef", VALID[2:3])
    head = read_head(log)
    assert CefSource().sniff(head, log) == 90
    assert CefSource().sniff(read_head(bare), bare) == 90
    assert DefenderSource().sniff(head, log) == 0 and CommonSecurityLogSource().sniff(head, log) == 0
    mostly_text = write(tmp_path / "mixed.log", ["hello", "world", "again", VALID[1]])
    assert CefSource().sniff(read_head(mostly_text), mostly_text) == 50
    csv_export = tmp_path / "csl.csv"
    csv_export.write_text("TimeGenerated,DeviceVendor,DeviceProduct,SourceIP,DestinationIP,Message\n"
                          "2024-11-27T12:00:00Z,V,P,10.0.0.1,10.0.0.2,CEF:0|V|P|1|1|n|1|src=10.0.0.1\n")
    json_export = tmp_path / "dne.json"
    json_export.write_text('{"Timestamp": "2024-11-27T12:00:00Z", "ActionType": "ConnectionSuccess", '
                           '"RemoteIP": "1.1.1.1", "RemotePort": 443, "LocalIP": "10.0.0.1"}\n')
    for other in (csv_export, json_export):
        assert CefSource().sniff(read_head(other), other) == 0
