"""CommonSecurityLogSource on Sentinel exports built from Microsoft's published CommonSecurityLog schema
(there is no public sample): the portal's CSV export, JSON variants, bad rows, a missing column."""

from __future__ import annotations

import csv
import functools
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from bothunt.errors import InputError
from bothunt.schema import conform
from bothunt.sources.base import ReadContext, read_head
from bothunt.sources.cef import CefSource
from bothunt.sources.commonsecuritylog import CommonSecurityLogSource
from bothunt.sources.defender import DefenderSource

# A Log Analytics "Export to CSV" of CommonSecurityLog: the table's columns, times suffixed [UTC].
HEADER = [
    "TenantId", "SourceSystem", "TimeGenerated [UTC]", "ReceiptTime", "DeviceVendor", "DeviceProduct",
    "DeviceEventClassID", "LogSeverity", "OriginalLogSeverity", "DeviceAction", "SimplifiedDeviceAction",
    "Computer", "CommunicationDirection", "DeviceFacility", "DestinationPort", "DestinationIP",
    "DeviceAddress", "DeviceName", "Message", "Protocol", "SourcePort", "SourceIP", "RemoteIP", "RemotePort",
    "MaliciousIP", "ThreatSeverity", "IndicatorThreatType", "ThreatDescription", "ThreatConfidence",
    "ReportReferenceLink", "MaliciousIPLongitude", "MaliciousIPLatitude", "MaliciousIPCountry",
    "DeviceVersion", "Activity", "ApplicationProtocol", "EventCount", "DestinationDnsDomain",
    "DestinationServiceName", "DestinationTranslatedAddress", "DestinationTranslatedPort", "DeviceDnsDomain",
    "DeviceExternalID", "DeviceInboundInterface", "DeviceNtDomain", "DeviceOutboundInterface",
    "DevicePayloadId", "ProcessName", "DeviceTranslatedAddress", "DestinationHostName",
    "DestinationMACAddress", "DestinationNTDomain", "DestinationProcessId", "DestinationUserPrivileges",
    "DestinationProcessName", "DeviceTimeZone", "DestinationUserID", "DestinationUserName", "DeviceMacAddress",
    "ProcessID", "EndTime", "ExternalID", "ExtID", "FileCreateTime", "FileHash", "FileID", "FileName",
    "FilePath", "FilePermission", "FileType", "FileSize", "ReceivedBytes", "RequestURL",
    "RequestClientApplication", "RequestContext", "RequestCookies", "RequestMethod", "SentBytes",
    "SourceHostName", "SourceMACAddress", "SourceNTDomain", "SourceDnsDomain", "SourceServiceName",
    "SourceTranslatedAddress", "SourceTranslatedPort", "SourceProcessId", "SourceUserPrivileges",
    "SourceProcessName", "StartTime", "SourceUserID", "SourceUserName", "EventType", "EventOutcome",
    "Reason", "DeviceCustomString1Label", "DeviceCustomString1", "AdditionalExtensions", "Type", "_ResourceId",
]


def row(time, action, src, sport, dst, dport, proto, **more) -> dict:
    r = dict.fromkeys(HEADER, "")
    r.update({"TenantId": "4f0e7f0e-0000-4000-8000-000000000001", "SourceSystem": "OpsManager",
              "TimeGenerated [UTC]": time, "DeviceVendor": "Palo Alto Networks", "DeviceProduct": "PAN-OS",
              "DeviceVersion": "10.1", "DeviceEventClassID": "end", "Activity": "TRAFFIC", "LogSeverity": "3",
              "DeviceAction": action, "SourceIP": src, "SourcePort": sport, "DestinationIP": dst,
              "DestinationPort": dport, "Protocol": proto, "Computer": "collector01", "DeviceName": "pa-fw01",
              "Type": "CommonSecurityLog", "DeviceCustomString1Label": "Rule", "DeviceCustomString1": "r1",
              "Message": 'msg with "quotes", and commas'})
    r.update(more)
    return r


GOOD = [
    row("11/27/2024, 12:00:05.250 PM", "allow", "10.0.0.5", "51000", "93.184.216.34", "443", "TCP",
        SentBytes="980", ReceivedBytes="5120", ApplicationProtocol="HTTPS", SourceHostName="ws05.corp.example",
        SourceUserName="alice", SourceNTDomain="CORP", RequestURL="https://Portal.Example.com/login?x=1,2",
        ExtID="1001", CommunicationDirection="Outbound"),
    row("11/27/2024, 12:00:06.000 PM", "allow", "10.0.0.5", "51001", "203.0.113.80", "8443", "TCP",
        SentBytes="74", ReceivedBytes="0", ExtID="1002"),
    row("11/27/2024, 12:00:07.000 PM", "deny", "198.51.100.9", "40000", "10.0.0.20", "3389", "TCP",
        StartTime="2024-11-27T11:59:58Z", EndTime="2024-11-27T12:00:00.500Z", DestinationHostName="RDP.corp.example",
        CommunicationDirection="Inbound"),
    row("2024-11-27T12:00:08Z", "Drop", "2001:db8::7", "5353", "2001:DB8::1:53", "53", "UDP", DeviceName="",
        Computer=""),
    row("2024-11-27T12:00:09.5Z", "alert", "10.0.0.6", "", "192.0.2.1", "", "ICMP",
        SourceUserName="bob", ReceiptTime="Nov 27 2024 13:00:09 CET", DeviceTimeZone="Europe/Berlin"),
]
T = functools.partial(datetime, tzinfo=UTC)
EXPECTED = [
    dict(ts=T(2024, 11, 27, 12, 0, 5, 250000), duration=None, src_ip="10.0.0.5", src_port=51000,
         dst_ip="93.184.216.34", dst_port=443, proto="tcp", service="ssl", direction=None, bytes_out=980,
         bytes_in=5120, state="established", action="allow", host="ws05.corp.example", user="CORP\\alice",
         server_name="portal.example.com", source="commonsecuritylog", uid="pa-fw01:1001"),
    dict(ts=T(2024, 11, 27, 12, 0, 6), duration=None, src_ip="10.0.0.5", src_port=51001, dst_ip="203.0.113.80",
         dst_port=8443, proto="tcp", service=None, direction=None, bytes_out=74, bytes_in=0, state="attempted",
         action="allow", host=None, user=None, server_name=None, source="commonsecuritylog", uid="pa-fw01:1002"),
    dict(ts=T(2024, 11, 27, 11, 59, 58), duration=2.5, src_ip="198.51.100.9", src_port=40000, dst_ip="10.0.0.20",
         dst_port=3389, proto="tcp", service=None, direction=None, bytes_out=None, bytes_in=None,
         state="rejected", action="deny", host=None, user=None, server_name="rdp.corp.example",
         source="commonsecuritylog", uid=None),
    dict(ts=T(2024, 11, 27, 12, 0, 8), duration=None, src_ip="2001:db8::7", src_port=5353, dst_ip="2001:db8::1:53",
         dst_port=53, proto="udp", service=None, direction=None, bytes_out=None, bytes_in=None, state="rejected",
         action="Drop", host=None, user=None, server_name=None, source="commonsecuritylog", uid=None),
    dict(ts=T(2024, 11, 27, 12, 0, 9), duration=None, src_ip="10.0.0.6", src_port=None, dst_ip="192.0.2.1",
         dst_port=None, proto="icmp", service=None, direction=None, bytes_out=None, bytes_in=None, state="other",
         action="alert", host=None, user="bob", server_name=None, source="commonsecuritylog", uid=None),
]
SKIPPED = [row("11/27/2024, 12:01:00.000 PM", "", "", "", "", "", "", Activity="SYSTEM", Message="commit done")]
BAD = [
    (row("11/27/2024, 12:02:00.000 PM", "allow", "10.0.0.999", "1", "8.8.8.8", "53", "UDP"),
     "bad source address: 10.0.0.999"),
    (row("11/27/2024, 12:02:01.000 PM", "allow", "10.0.0.5", "1", "8.8.8.8", "dns", "UDP"),
     "bad destination port: dns"),
    (row("sometime tuesday", "allow", "10.0.0.5", "1", "8.8.8.8", "53", "UDP"), "bad time: sometime tuesday"),
]


def to_csv(rows: list[dict], header: list[str] = HEADER) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\r\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def read(path: Path) -> tuple[pa.Table, list[tuple], ReadContext]:
    rejects: list[tuple] = []
    ctx = ReadContext(str(path), reject_fn=lambda line, reason, raw: rejects.append((line, reason, raw)))
    batches = [conform(b.data, b.table) for b in CommonSecurityLogSource().read(path, ctx)]
    table = pa.concat_tables(batches) if batches else conform(pa.table({}), "conn")
    return table, rejects, ctx


def project(table: pa.Table) -> list[dict]:
    return [{k: r[k] for k in EXPECTED[0]} for r in table.to_pylist()]


def json_record(r: dict) -> dict:
    """A row as Log Analytics writes JSON: plain column names, numbers as numbers, no empty values."""
    numeric = {"SourcePort", "DestinationPort", "SentBytes", "ReceivedBytes"}
    out = {k.replace(" [UTC]", ""): (int(v) if k in numeric else v) for k, v in r.items() if v != ""}
    if "TimeGenerated" in out and "/" in out["TimeGenerated"]:  # JSON carries ISO times
        out["TimeGenerated"] = datetime.strptime(out["TimeGenerated"], "%m/%d/%Y, %I:%M:%S.%f %p").isoformat() + "Z"
    return out


def test_csv_export_rows_rejects_and_skips(tmp_path):
    rows = [GOOD[0], BAD[0][0], *GOOD[1:3], *SKIPPED, BAD[1][0], *GOOD[3:], BAD[2][0]]
    path = tmp_path / "CommonSecurityLog.csv"
    path.write_text(to_csv(rows))
    table, rejects, ctx = read(path)
    assert project(table) == EXPECTED
    assert [(r[0], r[1]) for r in rejects] == [(rows.index(b) + 2, reason) for b, reason in BAD]
    assert "10.0.0.999" in rejects[0][2]
    assert ctx.skipped == 1 and "not a connection event" in ctx.notes[0]
    assert table.num_rows + len(rejects) + ctx.skipped == len(rows)


@pytest.mark.parametrize("layout", ["lines", "records", "array"])
def test_json_exports_give_the_csv_rows(tmp_path, layout):
    recs = [json_record(r) for r in GOOD]
    text = {
        "lines": "\n".join(json.dumps(r) for r in recs) + "\n",
        "records": json.dumps({"records": [{"time": r["TimeGenerated"], "properties": r} for r in recs]}),
        "array": json.dumps(recs, indent=2),
    }[layout]
    path = tmp_path / f"csl-{layout}.json"
    path.write_text(text)
    table, rejects, _ = read(path)
    assert rejects == []
    assert project(table) == EXPECTED


def test_export_without_destination_ip_is_an_input_error(tmp_path):
    path = tmp_path / "projected.csv"
    path.write_text(to_csv(GOOD, [h for h in HEADER if h != "DestinationIP"]))
    with pytest.raises(InputError, match="DestinationIP"):
        read(path)


def test_sniffing(tmp_path):
    export = tmp_path / "csl.csv"
    export.write_text(to_csv(GOOD))
    stream = tmp_path / "csl.json"
    stream.write_text("\n".join(json.dumps(json_record(r)) for r in GOOD) + "\n")
    for path in (export, stream):
        head = read_head(path)
        assert CommonSecurityLogSource().sniff(head, path) == 95
        assert DefenderSource().sniff(head, path) == 0 and CefSource().sniff(head, path) == 0
    dne = tmp_path / "dne.csv"
    dne.write_text("Timestamp,DeviceId,DeviceName,ActionType,RemoteIP,RemotePort,LocalIP,LocalPort,Protocol\n"
                   "2024-11-27T12:00:00Z,d1,ws1,ConnectionSuccess,1.1.1.1,443,10.0.0.1,5000,Tcp\n")
    fw = tmp_path / "fw.log"
    fw.write_text("<134>Nov 27 12:00:00 fw01 CEF:0|V|P|1|1|n|1|src=10.0.0.1 dst=10.0.0.2 "
                  "deviceVendor=x DeviceProduct=y\n")
    for other in (dne, fw):
        assert CommonSecurityLogSource().sniff(read_head(other), other) == 0
