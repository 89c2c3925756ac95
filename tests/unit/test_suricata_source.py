"""SuricataSource on small EVE files built here: flow -> conn, dns (v1, v2, v3) -> dns, skips, rejects."""

from __future__ import annotations

import functools
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from bothunt.schema import conform, empty_table
from bothunt.sources import base, suricata
from bothunt.sources.base import ReadContext
from bothunt.sources.suricata import SuricataSource


def _flow(fid: int, proto: str = "TCP", ts_flags: str | None = "1b", tc_flags: str | None = "1b",
          toclient: int = 3, **extra: object) -> dict:
    event = {
        "timestamp": "2021-06-06T16:00:09.000000+0200", "flow_id": fid, "event_type": "flow",
        "src_ip": "192.168.1.10", "src_port": 50000 + fid % 1000, "dest_ip": "203.0.113.5", "dest_port": 443,
        "proto": proto, "app_proto": "tls",
        "flow": {"pkts_toserver": 4, "pkts_toclient": toclient, "bytes_toserver": 400, "bytes_toclient": 900,
                 "start": "2021-06-06T16:00:00.250000+0200", "end": "2021-06-06T16:00:02.750000+0200",
                 "age": 2, "state": "closed", "reason": "shutdown", "alerted": False},
        "host": "sensor-1",
    }
    if ts_flags is not None:
        event["tcp"] = {"tcp_flags": ts_flags, "tcp_flags_ts": ts_flags, "tcp_flags_tc": tc_flags or "00"}
    event.update(extra)
    return event


def _dns(fid: int, when: str, dns: dict, src: str = "192.168.1.10", sport: int = 40000,
         dst: str = "192.168.1.1", dport: int = 53) -> dict:
    return {"timestamp": f"2021-06-06T16:{when}+0000", "flow_id": fid, "event_type": "dns", "src_ip": src,
            "src_port": sport, "dest_ip": dst, "dest_port": dport, "proto": "UDP", "dns": dns}


def _write(tmp_path: Path, lines: list[dict | str], name: str = "eve.json") -> Path:
    text = "".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines)
    path = tmp_path / name
    path.write_text(text)
    return path


def _read(path: Path) -> tuple[dict[str, pa.Table], list[tuple[int | None, str, str]], ReadContext]:
    rejects: list[tuple[int | None, str, str]] = []
    ctx = ReadContext(str(path), reject_fn=lambda line, reason, raw: rejects.append((line, reason, raw)))
    out: dict[str, list[pa.Table]] = {"conn": [], "dns": []}
    for batch in SuricataSource().read(path, ctx):
        out[batch.table].append(conform(batch.data, batch.table))
    tables = {k: pa.concat_tables(v) if v else empty_table(k) for k, v in out.items()}
    return tables, rejects, ctx


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of ~1.5 kB, so a few events each: exercises everything that crosses chunks."""
    monkeypatch.setattr(base, "PIECE_BYTES", 64)
    monkeypatch.setattr(suricata, "iter_chunks", functools.partial(base.iter_chunks, size=1500))


# --- sniffing ----------------------------------------------------------------------------------------

def test_sniff_by_content() -> None:
    src = SuricataSource()
    eve = (json.dumps(_flow(1)) + "\n").encode()
    assert src.sniff(eve, Path("x.log")) == 100
    assert src.sniff(b"\n" + eve, Path("x")) == 100
    assert src.sniff(eve[:120], Path("x")) == 80  # first line cut by the sniff window
    assert src.sniff(b'{"event_type": "stats", "stats": {"uptime"', Path("x")) == 50
    assert src.sniff(b'{"Timestamp": "2024-01-01", "ActionType": "ConnectionSuccess"}\n', Path("x")) == 0
    assert src.sniff(b"#separator \\x09\n#fields\tts\tuid\n", Path("eve.json")) == 0
    assert src.sniff(b"StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr\n", Path("x")) == 0


# --- flow -> conn ------------------------------------------------------------------------------------

def test_flow_event_maps_to_conn(tmp_path: Path) -> None:
    tables, rejects, _ = _read(_write(tmp_path, [_flow(1234567890123)]))
    assert rejects == []
    row = tables["conn"].to_pylist()[0]
    assert row["ts"] == datetime(2021, 6, 6, 14, 0, 0, 250000, tzinfo=UTC)  # flow.start, +0200 -> UTC
    assert row["duration"] == pytest.approx(2.5)
    assert (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"]) == (
        "192.168.1.10", 50123, "203.0.113.5", 443)
    assert (row["proto"], row["service"], row["state"], row["action"]) == ("tcp", "ssl", "established",
                                                                          "closed/shutdown")
    assert (row["bytes_out"], row["bytes_in"], row["pkts_out"], row["pkts_in"]) == (400, 900, 4, 3)
    assert (row["uid"], row["source"]) == ("1234567890123", "suricata")
    # filled centrally by the pipeline, and EVE's `host` is the sensor, not an endpoint
    assert row["direction"] is None and row["remote_ip_type"] is None and row["host"] is None


@pytest.mark.parametrize(
    ("proto", "ts_flags", "tc_flags", "toclient", "expected"),
    [
        ("TCP", "1b", "1b", 3, "established"),   # full handshake and FIN both ways
        ("TCP", "06", "12", 1, "established"),   # SYN, SYN-ACK, client RST (half-open scan of an open port)
        ("TCP", "02", "14", 1, "rejected"),      # SYN answered by RST-ACK: closed port
        ("TCP", "c2", "14", 1, "rejected"),      # same with ECN bits
        ("TCP", "02", "00", 0, "attempted"),     # SYN, no answer
        ("TCP", "18", "18", 5, "established"),   # picked up mid-stream, both sides sent data
        ("TCP", "00", "00", 0, "other"),         # no flags at all
        ("UDP", None, None, 2, "established"),   # packets came back
        ("UDP", None, None, 0, "attempted"),
    ],
)
def test_conn_state_from_tcp_flags_and_packets(tmp_path: Path, proto: str, ts_flags: str | None,
                                               tc_flags: str | None, toclient: int, expected: str) -> None:
    tables, _, _ = _read(_write(tmp_path, [_flow(7, proto, ts_flags, tc_flags, toclient)]))
    assert tables["conn"]["state"].to_pylist() == [expected]


def test_icmp_type_code_and_app_proto_words(tmp_path: Path) -> None:
    icmp = _flow(8, "ICMP", None, None, 1, icmp_type=8, icmp_code=0, app_proto="failed")
    del icmp["src_port"], icmp["dest_port"]
    dns_flow = _flow(9, "UDP", None, None, 1, app_proto="dns")
    tables, rejects, _ = _read(_write(tmp_path, [icmp, dns_flow]))
    assert rejects == []
    rows = tables["conn"].to_pylist()
    assert [(r["proto"], r["src_port"], r["dst_port"], r["service"]) for r in rows] == [
        ("icmp", 8, 0, None), ("udp", 50009, 443, "dns")]


def test_server_name_from_tls_and_http_across_chunks(tmp_path: Path, small_chunks: None) -> None:
    tls = {"timestamp": "2021-06-06T16:00:01+0200", "flow_id": 11, "event_type": "tls",
           "tls": {"sni": "C2.Example.NET", "version": "TLS 1.2"}}
    http = {"timestamp": "2021-06-06T16:00:01+0200", "flow_id": 12, "event_type": "http",
            "http": {"hostname": "updates.example.org", "url": "/"}}
    filler = [_flow(100 + i) for i in range(4)]  # pushes the flow events into later chunks
    tables, rejects, ctx = _read(_write(tmp_path, [tls, http, *filler, _flow(12), _flow(11), _flow(13)]))
    assert rejects == []
    names = dict(zip(tables["conn"]["uid"].to_pylist(), tables["conn"]["server_name"].to_pylist(), strict=True))
    assert names["11"] == "c2.example.net" and names["12"] == "updates.example.org"
    assert names["13"] is None and names["100"] is None
    assert ctx.skipped == 2


# --- dns ---------------------------------------------------------------------------------------------

def _q(fid: int, when: str, name: str, qid: int = 1, rrtype: str = "A", tx: int = 0) -> dict:
    return _dns(fid, when, {"type": "query", "id": qid, "rrname": name, "rrtype": rrtype, "tx_id": tx})


def test_dns_v1_records_grouped_into_one_response(tmp_path: Path) -> None:
    at = "00:01.000100"
    v1 = {"type": "answer", "id": 5, "flags": "8180", "qr": True, "rcode": "NOERROR"}
    lines = [
        _q(1, "00:01.000000", "WWW.Example.COM.", qid=5),
        _dns(1, at, {**v1, "rrname": "www.example.com", "rrtype": "CNAME", "ttl": 300, "rdata": "edge.cdn.net"}),
        _dns(1, at, {**v1, "rrname": "edge.cdn.net", "rrtype": "A", "ttl": 20, "rdata": "198.51.100.7"}),
        # NXDOMAIN in v1: one answer event without records
        _q(2, "00:02.000000", "qxkzv.biz", qid=6),
        _dns(2, "00:02.000200", {"type": "answer", "id": 6, "rcode": "NXDOMAIN", "rrname": "qxkzv.biz"}),
        # NODATA in v1: only the SOA authority record, named after the zone
        _q(3, "00:03.000000", "www.example.org", qid=7, rrtype="AAAA"),
        _dns(3, "00:03.000300", {**v1, "id": 7, "rrname": "example.org", "rrtype": "SOA", "ttl": 60}),
        # never answered
        _q(4, "00:04.000000", "lost.example", qid=8),
    ]
    tables, rejects, _ = _read(_write(tmp_path, lines))
    assert rejects == []
    rows = tables["dns"].to_pylist()
    got = [(r["uid"], r["query"], r["qtype"], r["rcode"], r["answers"], r["ttls"]) for r in rows]
    assert got == [
        ("1", "www.example.com", "A", "NOERROR", ["edge.cdn.net", "198.51.100.7"], [300.0, 20.0]),
        ("2", "qxkzv.biz", "A", "NXDOMAIN", None, None),
        ("3", "www.example.org", "AAAA", "NOERROR", None, None),
        ("4", "lost.example", "A", None, None, None),
    ]
    assert rows[0]["ts"] == datetime(2021, 6, 6, 16, 0, 1, tzinfo=UTC)  # the query's time
    assert {(r["src_ip"], r["dst_ip"]) for r in rows} == {("192.168.1.10", "192.168.1.1")}


def test_dns_v2_answers_grouped_and_retransmissions(tmp_path: Path) -> None:
    v2 = {"version": 2, "type": "answer", "id": 2, "flags": "8180", "qr": True, "rrname": "www.google.com",
          "rrtype": "A", "rcode": "NOERROR",
          "answers": [{"rrname": "www.google.com", "rrtype": "A", "ttl": 91, "rdata": "172.217.23.196"}],
          "grouped": {"A": ["172.217.23.196"]}}
    grouped_only = {"version": 2, "type": "answer", "id": 9, "rrname": "a.example", "rrtype": "A",
                    "rcode": "NOERROR", "grouped": {"A": ["192.0.2.1", "192.0.2.2"],
                                                     "MX": ["mail.a.example"]}}
    lines = [
        # two transactions with the same id in one flow (as in the real capture): two rows, not four
        _q(1, "26:27.431769", "www.google.com", qid=2, tx=0),
        _q(1, "26:27.431775", "www.google.com", qid=2, tx=1),
        _dns(1, "26:27.442512", v2), _dns(1, "26:27.442517", v2),
        _dns(2, "26:28.000000", grouped_only),  # query logging off: the response alone is a row
    ]
    tables, rejects, _ = _read(_write(tmp_path, lines))
    assert rejects == []
    rows = tables["dns"].to_pylist()
    assert [(r["uid"], r["query"], r["answers"], r["ttls"]) for r in rows] == [
        ("1", "www.google.com", ["172.217.23.196"], [91.0]),
        ("1", "www.google.com", ["172.217.23.196"], [91.0]),
        ("2", "a.example", ["192.0.2.1", "192.0.2.2"], None),
    ]
    assert [r["ts"].microsecond for r in rows[:2]] == [431769, 431775]


def test_dns_v3_request_response_with_responder_as_src(tmp_path: Path) -> None:
    request = {"version": 3, "type": "request", "tx_id": 0, "id": 0, "flags": "100", "rd": True,
               "rcode": "NOERROR", "queries": [{"rrname": "www.suricata.io", "rrtype": "A"}]}
    response = {"version": 3, "type": "response", "tx_id": 1, "id": 0, "flags": "8180", "rcode": "NOERROR",
                "queries": [{"rrname": "www.suricata.io", "rrtype": "A"}],
                "answers": [{"rrname": "www.suricata.io", "rrtype": "CNAME", "ttl": 3597, "rdata": "suricata.io"},
                            {"rrname": "suricata.io", "rrtype": "A", "ttl": 597, "rdata": "35.212.0.44"},
                            {"rrname": "suricata.io", "rrtype": "SOA", "ttl": 5, "soa": {"mname": "ns"}}]}
    lines = [_dns(1, "00:00.000000", request),
             _dns(1, "00:00.020000", response, src="192.168.1.1", sport=53, dst="192.168.1.10", dport=40000)]
    tables, rejects, _ = _read(_write(tmp_path, lines))
    assert rejects == []
    assert tables["dns"].to_pylist() == [{
        "ts": datetime(2021, 6, 6, 16, 0, tzinfo=UTC), "src_ip": "192.168.1.10", "host": None,
        "dst_ip": "192.168.1.1", "query": "www.suricata.io", "qtype": "A", "rcode": "NOERROR",
        "answers": ["suricata.io", "35.212.0.44"], "ttls": [3597.0, 597.0], "source": "suricata",
        "uid": "1", "label": None}]


def test_dns_pairs_across_chunks_without_duplicates(tmp_path: Path, small_chunks: None) -> None:
    names = [f"h{i}-" + "a" * (i * 37 % 200) + ".example" for i in range(40)]  # varied line lengths
    lines: list[dict | str] = []
    for i, name in enumerate(names):  # one transaction every 20 s; each chunk holds only a few events
        sec = 20 * i
        when = f"{sec // 60:02d}:{sec % 60:02d}"
        lines.append(_q(1000 + i, f"{when}.000000", name, qid=i))
        answer = [{"rrname": name, "rrtype": "A", "ttl": 60, "rdata": f"192.0.2.{i}"}]
        lines.append(_dns(1000 + i, f"{when}.500000", {"version": 2, "type": "answer", "id": i, "rrname": name,
                                                       "rrtype": "A", "rcode": "NOERROR", "answers": answer}))
    path = _write(tmp_path, lines)
    # chunks end after an odd number of lines at least once: a query and its response are split
    seen = [first for first, _ in base.iter_chunks(path, ReadContext(str(path)), size=1500)]
    assert len(seen) > 8 and any(first % 2 == 0 for first in seen)
    tables, rejects, _ = _read(path)
    assert rejects == []
    rows = tables["dns"].to_pylist()
    assert sorted(r["query"] for r in rows) == sorted(names)  # each once: no unpaired halves
    assert all(r["answers"] == [f"192.0.2.{int(r['uid']) - 1000}"] for r in rows)


# --- skips and rejects -------------------------------------------------------------------------------

def test_other_event_types_are_skipped_with_a_reason_each(tmp_path: Path) -> None:
    alert = {"timestamp": "2021-06-06T16:00:00+0200", "flow_id": 1, "event_type": "alert",
             "alert": {"signature": "ET SCAN", "metadata": {"tag": ["x"]}}, "flow": {"start": "x"}}
    stats = {"timestamp": "2021-06-06T16:00:00+0200", "event_type": "stats", "stats": {"uptime": 5}}
    other = {"timestamp": "2021-06-06T16:00:00+0200", "flow_id": 2, "event_type": "smb", "smb": {"id": 1}}
    tables, rejects, ctx = _read(_write(tmp_path, [alert, alert, stats, other, _flow(5)]))
    assert rejects == []
    assert tables["conn"].num_rows == 1 and ctx.skipped == 4 and ctx.rejected == 0
    assert sorted(ctx.notes) == sorted([
        "2 records skipped: EVE alert events: " + suricata.SKIP_REASONS["alert"],
        "1 records skipped: EVE stats events: " + suricata.SKIP_REASONS["stats"],
        "1 records skipped: EVE smb events: smb events belong to no canonical table",
    ])


def test_bad_lines_are_rejected_with_line_numbers_and_neighbours_kept(tmp_path: Path) -> None:
    bad_start = _flow(30)
    bad_start["flow"]["start"] = "yesterday"
    bad_start["timestamp"] = "soon"
    lines: list[dict | str] = [
        _flow(1),                                     # 1
        "garbage between events",                     # 2
        _flow(2),                                     # 3
        "",                                           # 4 blank: not a record
        '{"event_type": "flow", "src_port": "abc"}',  # 5 wrong type for a field
        "[1, 2, 3]",                                  # 6 JSON, not an object
        json.dumps(_flow(3)) + " " + json.dumps(_flow(4)),  # 7 two events on one line
        {"timestamp": "2021-06-06T16:00:00+0200", "flow_id": 5},  # 8 no event_type
        bad_start,                                    # 9
        _dns(6, "00:00.000000", {"type": "notify", "id": 1, "rrname": "x.example"}),  # 10
        _dns(6, "xx:00.000000", {"type": "query", "id": 1, "rrname": "x.example"}),   # 11 bad timestamp
        _flow(6),                                     # 12
    ]
    path = _write(tmp_path, lines)
    with open(path, "a") as fh:
        fh.write(json.dumps(_flow(7))[:60])           # 13 truncated last line, no newline
    tables, rejects, ctx = _read(path)
    assert tables["conn"]["uid"].to_pylist() == ["1", "2", "6"]
    assert tables["dns"].num_rows == 0
    got = {line: reason for line, reason, _ in rejects}
    assert sorted(got) == [2, 5, 6, 7, 8, 9, 10, 11, 13]
    assert got[2].startswith("not a Suricata EVE JSON object")
    assert got[7] == "more than one JSON value on one line"
    assert got[8] == "not a Suricata EVE event: no event_type"
    assert got[9] == "flow event without a valid flow.start or timestamp"
    assert got[10] == "dns event of unknown type notify"
    assert got[11] == "dns event without a valid timestamp"
    assert dict((line, raw) for line, _, raw in rejects)[2] == "garbage between events"
    assert ctx.rejected == 9


def test_gzip_input(tmp_path: Path) -> None:
    path = tmp_path / "eve.json.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(_flow(i)) + "\n" for i in range(3)).encode()))
    tables, rejects, _ = _read(path)
    assert rejects == [] and tables["conn"]["uid"].to_pylist() == ["0", "1", "2"]


def test_event_longer_than_a_parse_block(tmp_path: Path) -> None:
    stats = {"timestamp": "2021-06-06T16:00:00+0200", "event_type": "stats",
             "stats": {f"counter_{i}": i for i in range(120_000)}}  # ~2 MB on one line
    path = _write(tmp_path, [_flow(1), stats, _flow(2)])
    assert path.stat().st_size > 2 << 20
    tables, rejects, ctx = _read(path)
    assert rejects == [] and ctx.skipped == 1
    assert tables["conn"]["uid"].to_pylist() == ["1", "2"]


def test_parsing_a_chunk_leaves_no_reference_cycle_holding_its_tables() -> None:
    # Parsed tables must be freed when the chunk is done, not when Python's cycle collector next runs:
    # a recursive closure made every chunk's tables a cycle, and a 574 MB EVE file grew to 1.4 GB.
    import gc

    events = [json.dumps(_flow(i)) for i in range(40)]
    events[7] = "{not json"
    events[23] = '{"timestamp": "2024-01-01T00:00:00Z"} {"event_type": "flow"}'
    chunk = ("\n".join(events) + "\n").encode()
    rejects: list[int | None] = []
    ctx = ReadContext("eve.json", reject_fn=lambda line, reason, raw: rejects.append(line))
    gc.collect()
    gc.disable()
    try:
        table = suricata.parse_eve(suricata._Lines(chunk, 1), ctx)
        del table
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert rejects == [8, 24]
