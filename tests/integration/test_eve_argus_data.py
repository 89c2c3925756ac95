"""Suricata EVE and Argus binetflow sources on the real third-party captures in ../shared/data.

Every expected number is counted here with plain Python (json.loads / str.split per line),
independently of the sources' bulk parsers.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from bothunt.schema import conform, empty_table
from bothunt.sources import sniff
from bothunt.sources.argus import ArgusSource
from bothunt.sources.base import ReadContext
from bothunt.sources.suricata import SuricataSource

EVE = "suricata/exposed-home-network.eve.json"


def _read(source, path: Path) -> tuple[dict[str, pa.Table], ReadContext]:
    rejects: list[tuple[int | None, str, str]] = []
    ctx = ReadContext(str(path), reject_fn=lambda line, reason, raw: rejects.append((line, reason, raw)))
    parts: dict[str, list[pa.Table]] = {t: [] for t in source.tables}
    for batch in source.read(path, ctx):
        parts[batch.table].append(conform(batch.data, batch.table))
    assert rejects == []
    return {t: pa.concat_tables(p) if p else empty_table(t) for t, p in parts.items()}, ctx


@pytest.fixture(scope="module")
def eve(shared_data: Path) -> tuple[list[dict], dict[str, pa.Table], ReadContext]:
    path = shared_data / EVE
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    tables, ctx = _read(SuricataSource(), path)
    return events, tables, ctx


def test_eve_is_sniffed_as_suricata(shared_data: Path) -> None:
    assert sniff(shared_data / EVE).id == "suricata"


def test_eve_every_event_is_a_row_or_a_counted_skip(eve: tuple[list[dict], dict[str, pa.Table], ReadContext]) -> None:
    events, tables, ctx = eve
    types = Counter(e["event_type"] for e in events)
    assert (len(events), types["flow"], types["dns"], types["alert"]) == (5000, 3512, 680, 745)
    assert tables["conn"].num_rows == types["flow"]
    assert ctx.rejected == 0
    assert ctx.skipped == len(events) - types["flow"] - types["dns"]
    assert sorted(tables["conn"]["uid"].to_pylist()) == sorted(str(e["flow_id"]) for e in events
                                                               if e["event_type"] == "flow")
    totals = [sum(e["flow"][k] for e in events if e["event_type"] == "flow")
              for k in ("bytes_toserver", "bytes_toclient", "pkts_toserver", "pkts_toclient")]
    conn = tables["conn"]
    assert [pc.sum(conn[c]).as_py() for c in ("bytes_out", "bytes_in", "pkts_out", "pkts_in")] == totals


def test_eve_states_follow_the_tcp_flags(eve: tuple[list[dict], dict[str, pa.Table], ReadContext]) -> None:
    events, tables, _ = eve
    tcp = [e["tcp"] for e in events if e["event_type"] == "flow" and "tcp" in e]
    tc = [int(t.get("tcp_flags_tc", "0"), 16) for t in tcp]
    ts = [int(t.get("tcp_flags_ts", "0"), 16) for t in tcp]
    rejected = sum(1 for c in tc if c & 0x04 and not c & 0x02)
    attempted_tcp = sum(1 for s, c in zip(ts, tc, strict=True) if s & 0x02 and c == 0)
    states = Counter(zip(tables["conn"]["proto"].to_pylist(), tables["conn"]["state"].to_pylist(), strict=True))
    assert states[("tcp", "rejected")] == rejected == 1939
    assert states[("tcp", "attempted")] == attempted_tcp
    no_reply = sum(1 for e in events if e["event_type"] == "flow" and e["proto"] != "TCP"
                   and e["flow"]["pkts_toclient"] == 0)
    assert sum(n for (proto, st), n in states.items() if proto != "tcp" and st == "attempted") == no_reply


def test_eve_dns_one_row_per_transaction(eve: tuple[list[dict], dict[str, pa.Table], ReadContext]) -> None:
    events, tables, _ = eve
    queries: Counter[tuple] = Counter()
    answers: Counter[tuple] = Counter()
    for e in events:
        if e["event_type"] == "dns":
            key = (str(e["flow_id"]), e["dns"]["id"], e["dns"]["rrname"].lower())
            (queries if e["dns"]["type"] == "query" else answers)[key] += 1
    expected = sum(max(queries[k], answers[k]) for k in queries.keys() | answers.keys())
    dns = tables["dns"]
    assert dns.num_rows == expected == 340
    assert Counter(zip(dns["uid"].to_pylist(), dns["query"].to_pylist(), strict=True)) == Counter(
        {(k[0], k[2]): max(queries[k], answers[k]) for k in queries.keys() | answers.keys()})
    assert dns.filter(pc.is_null(dns["rcode"])).num_rows == 0  # every query here was answered


def test_eve_server_names_joined_by_flow_id(eve: tuple[list[dict], dict[str, pa.Table], ReadContext]) -> None:
    events, tables, _ = eve
    flows = {e["flow_id"] for e in events if e["event_type"] == "flow"}
    names: dict[int, str] = {}
    for e in events:
        name = (e.get("tls") or {}).get("sni") or (e.get("http") or {}).get("hostname")
        if e["event_type"] != "flow" and name:
            names.setdefault(e["flow_id"], name.lower())
    expected = {str(f): n for f, n in names.items() if f in flows}
    conn = tables["conn"]
    got = {u: n for u, n in zip(conn["uid"].to_pylist(), conn["server_name"].to_pylist(), strict=True) if n}
    assert got == expected and len(got) == 41


ARGUS = {  # file -> (separator, data rows, Argus management rows)
    "test5-mixed.binetflow": ("\t", 300, 1),
    "test3-mixed.binetflow": (",", 89, 0),
    "ctu-normal-7.binetflow": (",", 9797, 0),
}


@pytest.mark.parametrize("name", sorted(ARGUS))
def test_argus_rows_and_labels(shared_data: Path, name: str) -> None:
    sep, n_rows, n_man = ARGUS[name]
    path = shared_data / "argus" / name
    header, *lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    columns = header.split(sep)
    fields = [ln.split(sep) for ln in lines]
    assert len(lines) == n_rows
    proto, label, state = (columns.index(c) for c in ("Proto", "Label", "State"))
    man = sum(1 for f in fields if f[proto] == "man")
    labels = Counter(f[label] or None for f in fields if f[proto] != "man")
    assert man == n_man

    assert sniff(path).id == "argus"
    tables, ctx = _read(ArgusSource(), path)
    conn = tables["conn"]
    assert conn.num_rows == n_rows - n_man
    assert (ctx.rejected, ctx.skipped) == (0, n_man)
    assert Counter(conn["label"].to_pylist()) == labels
    assert Counter(conn["action"].to_pylist()) == Counter(f[state] for f in fields if f[proto] != "man")
    assert conn.filter(pc.is_null(conn["ts"])).num_rows == 0


def test_argus_known_numbers(shared_data: Path) -> None:
    tables, _ = _read(ArgusSource(), shared_data / "argus" / "test5-mixed.binetflow")
    labels = Counter(tables["conn"]["label"].to_pylist())
    assert (labels["flow=Malware-UDP-DNS"], labels["flow=Malware-TCP"]) == (197, 80)
    assert sum(n for lb, n in labels.items() if lb and lb.startswith("flow=Background")) == 21

    tables, _ = _read(ArgusSource(), shared_data / "argus" / "test3-mixed.binetflow")
    conn = tables["conn"]
    scan = conn.filter(pc.equal(conn["src_ip"], "46.166.151.160"))
    assert scan.num_rows > 0 and set(scan["dst_port"].to_pylist()) == {3389}
    # S_RA / S_R: the scanned host answered with a reset
    assert Counter(conn["state"].to_pylist())["rejected"] == 15
