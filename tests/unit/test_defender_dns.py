"""DefenderSource on DnsConnectionInspected: DeviceNetworkEvents rows whose AdditionalFields carries Zeek's
dns.log fields become `dns` rows. Fixtures are built from the shape of a record Defender streamed (Elastic's
m365_defender test data): AdditionalFields as a JSON object or as a JSON string in streams, as JSON text in
a quoted cell of an Advanced Hunting CSV; every value inside it a string. Then the simulator's writer of
the same records."""

from __future__ import annotations

import copy
import csv
import functools
import io
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from bothunt.schema import conform
from bothunt.simulate import run
from bothunt.simulate.writers.defender import COLUMNS
from bothunt.sources.base import ReadContext
from bothunt.sources.defender import DefenderSource

T = functools.partial(datetime, tzinfo=UTC)
DEV = "22bb10ffe3104214b20fc7de339a2b053e915e5c"
LAPTOP = "janeslaptop1.corporatedomain"

# The published record, as streamed: numbers as JSON numbers, unset columns null, AdditionalFields an object.
PUBLISHED = {
    "Timestamp": "2023-07-19T12:16:10.7489034Z", "DeviceId": DEV, "DeviceName": LAPTOP,
    "ActionType": "DnsConnectionInspected", "RemoteIP": "175.16.199.0", "RemotePort": 53, "RemoteUrl": None,
    "LocalIP": "89.160.20.112", "LocalPort": 54125, "Protocol": "Udp", "LocalIPType": None, "RemoteIPType": None,
    "InitiatingProcessFileName": None, "InitiatingProcessId": 0, "InitiatingProcessCommandLine": None,
    "InitiatingProcessParentId": 0, "InitiatingProcessAccountDomain": None, "InitiatingProcessAccountName": None,
    "InitiatingProcessTokenElevation": "None", "ReportId": 19542, "AppGuardContainerId": None,
    "AdditionalFields": {
        "direction": "Out", "trans_id": "18296", "rtt": "0.05926012992858887", "query": LAPTOP, "qclass": "1",
        "qclass_name": "C_INTERNET", "qtype": "1", "qtype_name": "A", "rcode": "0", "uid": "CpeJkh3698EpWwy4Z9",
        "rcode_name": "NOERROR", "AA": "true", "TC": "false", "RD": "true", "RA": "true",
        "answers": "[\"89.160.20.112\"]", "TTLs": "[1200.0]", "rejected": "false", "ts": "133370937691236740",
    },
}
PUBLISHED_ROW = dict(
    ts=T(2023, 7, 19, 12, 16, 10, 748903), src_ip="89.160.20.112", host=LAPTOP, dst_ip="175.16.199.0",
    query=LAPTOP, qtype="A", rcode="NOERROR", answers=["89.160.20.112"], ttls=[1200.0], source="defender",
    uid=f"{DEV}:19542", label=None)

# What an attacker controls: the name looked up, and what the attacker's server answers.
EVIL_QUERY = 'A"b=1<script>alert(\'x\')</script>.Bücher.例え.COM.'
EVIL_TXT = 'v=spf1 "quoted" <b>\\ é'


def dns_record(report: int, af: dict | str | None, *, ts: str = "2024-05-01T12:00:00Z", lip: str = "10.10.0.24",
               lport: int = 61000, rip: str = "10.0.0.53", rport: int = 53, name: str = "ws-0020.corp.example",
               action: str = "DnsConnectionInspected") -> dict:
    rec = copy.deepcopy(PUBLISHED)
    rec.update({"Timestamp": ts, "DeviceName": name, "ActionType": action, "LocalIP": lip, "LocalPort": lport,
                "RemoteIP": rip, "RemotePort": rport, "ReportId": report, "AdditionalFields": af})
    return rec


def zeek_fields(query: str | None, *, direction: str | None = "Out", qtype: str = "1", qname: str | None = "A",
                rcode: str = "0", rname: str | None = "NOERROR", answers: list | None = None,
                ttls: list | None = None, **extra: str) -> dict:
    """AdditionalFields of a DNS inspection: every value a string, answers / TTLs JSON arrays as strings."""
    af: dict = {"direction": direction, "trans_id": "4711", "rtt": "0.0012", "query": query, "qclass": "1",
                "qclass_name": "C_INTERNET", "qtype": qtype, "qtype_name": qname, "rcode": rcode, "uid": "Cx1",
                "rcode_name": rname}
    if answers is not None:
        af["answers"] = json.dumps(answers, ensure_ascii=False)
    if ttls is not None:
        af["TTLs"] = json.dumps(ttls)
    af.update(extra)
    return {k: v for k, v in af.items() if v is not None}


V6 = "2001:db8:10::24"
RECORDS = [
    PUBLISHED,
    # the device is the DNS server: the client is RemoteIP, and the device's name is not the client's
    dns_record(2, zeek_fields("WWW.Example.COM.", direction="In", qtype="28", qname="AAAA",
                              answers=["2606:2800:220:1:248:1893:25c8:1946"], ttls=[86400.0]),
               lip="10.0.0.53", lport=53, rip="10.10.0.24", rport=61001, name="dns-01.corp.example"),
    dns_record(3, zeek_fields("kq3vmx7ptz.info", rcode="3", rname="NXDOMAIN")),  # no answer: keys left out
    dns_record(4, zeek_fields("zz9fwq.top", rcode="3", rname="NXDOMAIN", answers=[], ttls=[])),
    dns_record(5, zeek_fields("mail.example.org", qtype="16", qname=None, rcode="2", rname=None)),
    dns_record(6, zeek_fields(EVIL_QUERY, qtype="16", qname="TXT", answers=[EVIL_TXT], ttls=[60.0])),
    dns_record(7, zeek_fields("ipv6.example.net", answers=["93.184.216.34", "93.184.216.35"], ttls=[300.0, 300.5])),
    dns_record(8, zeek_fields("c2.example.com", direction=None), lip="2001:DB8:10::24", lport=50000,
               rip="2001:4860:4860::8888"),
    dns_record(9, zeek_fields(None)),  # a transaction without a question
    dns_record(10, None),
    dns_record(11, '{"direction":"Out","query":"evil.example.com","qtype":"1"'),  # cut short
    dns_record(12, zeek_fields("bad-answers.example.com", answers=[]) | {"answers": "89.160.20.112"}),
    dns_record(13, zeek_fields("bad-ttls.example.com", answers=["1.2.3.4"]) | {"TTLs": "[\"soon\"]"}),
    dns_record(14, {"direction": "Out", "host": "www.gstatic.com", "method": "CONNECT"},
               action="HttpConnectionInspected", rport=8080),
    dns_record(15, {"SignatureName": "Kerberos_TGS_REQ"}, action="NetworkSignatureInspected", rport=88),
    dns_record(16, None, action="ConnectionSuccess", rport=443) | {
        "RemoteIP": "175.16.199.0", "RemoteUrl": "url.com", "InitiatingProcessFileName": "msedge.exe",
        "InitiatingProcessId": 4242, "Protocol": "Tcp"},
    # another DNS server forwarding to this one, from port 53 to port 53: only `direction` tells who asked
    dns_record(17, zeek_fields("corp.example.com", direction="In", qtype="6", qname="SOA", answers=[], ttls=[]),
               lip="10.0.0.53", lport=53, rip="10.0.0.54", rport=53, name="dns-01.corp.example"),
]
DNS_ROWS = [
    PUBLISHED_ROW,
    dict(PUBLISHED_ROW, ts=T(2024, 5, 1, 12), src_ip="10.10.0.24", host=None, dst_ip="10.0.0.53",
         query="www.example.com", qtype="AAAA", answers=["2606:2800:220:1:248:1893:25c8:1946"], ttls=[86400.0],
         uid=f"{DEV}:2"),
    dict(PUBLISHED_ROW, ts=T(2024, 5, 1, 12), src_ip="10.10.0.24", host="ws-0020.corp.example",
         dst_ip="10.0.0.53", query="kq3vmx7ptz.info", rcode="NXDOMAIN", answers=None, ttls=None, uid=f"{DEV}:3"),
    dict(PUBLISHED_ROW, ts=T(2024, 5, 1, 12), src_ip="10.10.0.24", host="ws-0020.corp.example",
         dst_ip="10.0.0.53", query="zz9fwq.top", rcode="NXDOMAIN", answers=[], ttls=[], uid=f"{DEV}:4"),
    dict(PUBLISHED_ROW, ts=T(2024, 5, 1, 12), src_ip="10.10.0.24", host="ws-0020.corp.example",
         dst_ip="10.0.0.53", query="mail.example.org", qtype="16", rcode="2", answers=None, ttls=None,
         uid=f"{DEV}:5"),
    dict(PUBLISHED_ROW, ts=T(2024, 5, 1, 12), src_ip="10.10.0.24", host="ws-0020.corp.example",
         dst_ip="10.0.0.53", query='a"b=1<script>alert(\'x\')</script>.bücher.例え.com', qtype="TXT",
         answers=[EVIL_TXT], ttls=[60.0], uid=f"{DEV}:6"),
    dict(PUBLISHED_ROW, ts=T(2024, 5, 1, 12), src_ip="10.10.0.24", host="ws-0020.corp.example",
         dst_ip="10.0.0.53", query="ipv6.example.net", answers=["93.184.216.34", "93.184.216.35"],
         ttls=[300.0, 300.5], uid=f"{DEV}:7"),
    dict(PUBLISHED_ROW, ts=T(2024, 5, 1, 12), src_ip=V6, host="ws-0020.corp.example", dst_ip="2001:4860:4860::8888",
         query="c2.example.com", answers=None, ttls=None, uid=f"{DEV}:8"),
    dict(PUBLISHED_ROW, ts=T(2024, 5, 1, 12), src_ip="10.0.0.54", host=None, dst_ip="10.0.0.53",
         query="corp.example.com", qtype="SOA", answers=[], ttls=[], uid=f"{DEV}:17"),
]
SKIPS = {  # reason -> records
    "DnsConnectionInspected without a query in AdditionalFields": 1,
    "DnsConnectionInspected without AdditionalFields: no query to read": 1,
    "HttpConnectionInspected: protocol inspection of a connection already recorded as a connection event": 1,
    "NetworkSignatureInspected: protocol inspection of a connection already recorded as a connection event": 1,
}
REJECTS = [  # (index in RECORDS, reason)
    (10, "bad AdditionalFields: not a JSON object"),
    (11, "bad answers in AdditionalFields: 89.160.20.112"),
    (12, 'bad TTLs in AdditionalFields: ["soon"]'),
]


def as_string(rec: dict) -> dict:
    """AdditionalFields as a JSON string holding the object, as other streamed records carry it."""
    af = rec["AdditionalFields"]
    return rec | {"AdditionalFields": json.dumps(af, ensure_ascii=False) if isinstance(af, dict) else af}


def eventhub(records: list[dict]) -> str:
    """One Event Hub batch on one line, AdditionalFields as each record has it (object or string)."""
    wrapped = [{"time": "2024-05-01T12:05:00Z", "tenantId": "t1", "operationName": "Publish",
                "category": "AdvancedHunting-DeviceNetworkEvents", "properties": r} for r in records]
    return json.dumps({"records": wrapped}, ensure_ascii=False) + "\n"


def storage_lines(records: list[dict]) -> str:
    """A storage account's blob: one `{"properties": ...}` a line, AdditionalFields as JSON strings."""
    return "".join(json.dumps({"properties": as_string(r)}, ensure_ascii=False) + "\n" for r in records)


def hunting_csv(records: list[dict]) -> str:
    """An Advanced Hunting CSV export: every column, AdditionalFields as JSON text in a quoted cell."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\r\n", extrasaction="ignore",
                       quoting=csv.QUOTE_MINIMAL)
    w.writeheader()
    for r in records:
        w.writerow({k: "" if v is None else str(v) for k, v in as_string(r).items()})
    return buf.getvalue()


LAYOUTS = {"eventhub.json": eventhub, "storage.json": storage_lines, "export.csv": hunting_csv}


def read(path: Path) -> tuple[dict[str, pa.Table], list[tuple], ReadContext]:
    rejects: list[tuple] = []
    ctx = ReadContext(str(path), reject_fn=lambda line, reason, raw: rejects.append((line, reason, raw)))
    tables: dict[str, list[pa.Table]] = {}
    for b in DefenderSource().read(path, ctx):
        tables.setdefault(b.table, []).append(conform(b.data, b.table))
    return {k: pa.concat_tables(v) for k, v in tables.items()}, rejects, ctx


def skip_counts(ctx: ReadContext) -> dict[str, int]:
    out = {}
    for note in ctx.notes:
        count, _, why = note.partition(" records skipped: ")
        out[why] = int(count)
    return out


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_record_is_a_row_a_reject_or_a_counted_skip(tmp_path, name):
    path = tmp_path / name
    path.write_text(LAYOUTS[name](RECORDS), encoding="utf-8")
    tables, rejects, ctx = read(path)

    assert sorted(tables) == ["conn", "dns"]
    assert tables["dns"].to_pylist() == DNS_ROWS
    conn = tables["conn"].to_pylist()
    assert [(r["action"], r["src_ip"], r["dst_ip"], r["dst_port"], r["process"], r["server_name"], r["uid"])
            for r in conn] == [("ConnectionSuccess", "10.10.0.24", "175.16.199.0", 443, "msedge.exe", "url.com",
                                f"{DEV}:16")]
    assert [r[1] for r in rejects] == [reason for _, reason in REJECTS]
    assert skip_counts(ctx) == SKIPS and ctx.skipped == sum(SKIPS.values()) and ctx.rejected == len(REJECTS)
    assert tables["dns"].num_rows + len(conn) + len(rejects) + ctx.skipped == len(RECORDS) == 17
    if name == "eventhub.json":  # the whole batch is line 1
        assert [r[0] for r in rejects] == [1, 1, 1]
    else:  # one record a line, after the header in the CSV
        first = 2 if name == "export.csv" else 1
        assert [r[0] for r in rejects] == [first + i for i, _ in REJECTS]


def test_published_record_object_and_string_additional_fields_give_the_same_row(tmp_path):
    obj, text = tmp_path / "object.json", tmp_path / "string.json"
    obj.write_text(eventhub([PUBLISHED]))
    text.write_text(eventhub([as_string(PUBLISHED)]))
    assert '"AdditionalFields": {"direction": "Out"' in obj.read_text()
    assert '"AdditionalFields": "{\\"direction\\": \\"Out\\"' in text.read_text()
    for path in (obj, text):
        tables, rejects, ctx = read(path)
        assert list(tables) == ["dns"]  # a DNS inspection never becomes a connection
        assert tables["dns"].to_pylist() == [PUBLISHED_ROW]
        assert rejects == [] and ctx.skipped == 0


def test_csv_cell_holds_quoted_json_with_doubled_quotes(tmp_path):
    text = hunting_csv([PUBLISHED])
    # RFC 4180: the JSON text in one quoted cell, its quotes doubled; the answers array keeps its backslashes
    assert '"{""direction"": ""Out"", ""trans_id"": ""18296""' in text
    assert '""answers"": ""[\\""89.160.20.112\\""]""' in text
    path = tmp_path / "DeviceNetworkEvents.csv"
    path.write_text(text)
    tables, rejects, _ = read(path)
    assert rejects == [] and tables["dns"].to_pylist() == [PUBLISHED_ROW] and "conn" not in tables


def test_attacker_written_names_and_answers_stay_data(tmp_path):
    path = tmp_path / "evil.csv"
    path.write_text(hunting_csv([RECORDS[5]]), encoding="utf-8")
    row = read(path)[0]["dns"].to_pylist()[0]
    assert row["query"] == 'a"b=1<script>alert(\'x\')</script>.bücher.例え.com'
    assert row["answers"] == ['v=spf1 "quoted" <b>\\ é']


# -- the simulator's writer ------------------------------------------------------------------------------

FILETIME_ZERO = T(1601, 1, 1)
AF_KEYS = ["direction", "trans_id", "rtt", "query", "qclass", "qclass_name", "qtype", "qtype_name", "rcode", "uid",
           "rcode_name", "AA", "TC", "RD", "RA", "answers", "TTLs", "rejected", "ts"]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    report = run(out, seed=21, hosts=50, scale=0.02, days=0.25, formats=("defender",), scenarios=("dga-dict",))
    with open(out / "defender" / "DeviceNetworkEvents.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return report, rows


def test_simulated_lookups_are_dns_inspections_with_zeek_fields(simulated):
    report, rows = simulated
    dns = [r for r in rows if r["ActionType"] == "DnsConnectionInspected"]
    assert len(dns) == report.total_dns("defender") > 0
    assert len(rows) - len(dns) == report.total("defender")
    bot = next(t for t in report.truth if t.id == "dga-dict")
    assert report.dns_events["defender"]["dga-dict"] == bot.params["lookups"] > 0
    assert {(r["RemoteIP"], r["RemotePort"], r["Protocol"], r["InitiatingProcessId"],
             r["InitiatingProcessFileName"], r["InitiatingProcessTokenElevation"]) for r in dns} == {
        ("10.0.0.53", "53", "Udp", "0", "", "None")}
    fields = [json.loads(r["AdditionalFields"]) for r in dns]
    assert all(isinstance(v, str) for af in fields for v in af.values())
    answered = [af for af in fields if "answers" in af]
    unanswered = [af for af in fields if "answers" not in af]
    assert all(list(af) == AF_KEYS for af in answered)
    assert all(list(af) == [k for k in AF_KEYS if k not in ("answers", "TTLs")] for af in unanswered)
    assert {af["rcode_name"] for af in unanswered} == {"NXDOMAIN"} and {af["direction"] for af in fields} == {"Out"}
    for af in answered:
        answers, ttls = json.loads(af["answers"]), json.loads(af["TTLs"])
        assert len(answers) == len(ttls) > 0 and all(isinstance(t, float) for t in ttls)
    for r, af in zip(dns, fields, strict=True):  # FILETIME: 100 ns ticks since 1601, the row's Timestamp
        stamp = datetime.fromisoformat(r["Timestamp"].replace("Z", "+00:00"))
        assert int(af["ts"]) == (stamp - FILETIME_ZERO) // timedelta(microseconds=1) * 10


def test_simulated_rows_are_in_time_order_with_one_report_id_each(simulated):
    _, rows = simulated
    stamps = [r["Timestamp"] for r in rows]
    assert stamps == sorted(stamps)
    assert [int(r["ReportId"]) for r in rows] == list(range(1, len(rows) + 1))
    kinds = [r["ActionType"] == "DnsConnectionInspected" for r in rows]
    assert any(a != b for a, b in itertools.pairwise(kinds))  # interleaved, not appended
