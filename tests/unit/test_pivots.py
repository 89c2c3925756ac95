"""Pivot queries: attacker-written values stay inside string literals (KQL and SQL lexed here, by rules
written from the languages' documentation, not from pivots.py), and the SQL runs on a real workspace in
DuckDB and returns exactly the finding's events."""

import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bothunt.pivots import kql_str, pivots, sql_str
from bothunt.schema import Finding, conform
from bothunt.sinks.html_sample import one_each

EVIL = "a\"b'c\\d\ne\tf // g -- h /* i */ ; | j `k` \u2028 \u202e \x00 ') OR 1=1 --\" or true //"
COMMENT = re.compile(r"^(//|--) bothunt [A-Za-z0-9_.-]* finding [A-Za-z0-9_.-]*: [a-zA-Z ()_,/.-]+$")


def expected(value: str, keep: str) -> str:
    """What a literal may hold: characters a literal cannot carry become U+FFFD (except `keep`)."""
    return "".join(ch if ch in keep or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp") else "\ufffd"
                   for ch in value)


# -- lexers ------------------------------------------------------------------------------------------

def lex_kql(q: str) -> tuple[str, list[str], list[str]]:
    """(code with each string literal replaced by S, the literals decoded, the comments). KQL strings: "..."
    or '...', backslash escapes \\\\ \\" \\' \\n \\t; a raw newline cannot be inside one."""
    code, lits, comments, i = [], [], [], 0
    escapes = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}
    while i < len(q):
        if q.startswith("//", i):
            j = q.find("\n", i)
            j = len(q) if j < 0 else j
            comments.append(q[i:j])
            i = j
        elif q[i] in "\"'":
            quote, i, buf = q[i], i + 1, []
            while True:
                assert i < len(q), "unterminated literal"
                ch = q[i]
                assert ch != "\n", "raw newline in a literal"
                if ch == "\\":
                    assert q[i + 1] in escapes, f"unknown escape \\{q[i + 1]}"
                    buf.append(escapes[q[i + 1]])
                    i += 2
                elif ch == quote:
                    i += 1
                    break
                else:
                    buf.append(ch)
                    i += 1
            lits.append("".join(buf))
            code.append("S")
        else:
            assert not q.startswith("@\"", i) and q[i] != "`", "verbatim literal or backtick outside a literal"
            code.append(q[i])
            i += 1
    return "".join(code), lits, comments


def lex_sql(q: str) -> tuple[str, list[str], list[str]]:
    """Standard SQL: '...' with '' for a quote; -- comments to the end of the line; no /* */ or "..." used."""
    code, lits, comments, i = [], [], [], 0
    while i < len(q):
        if q.startswith("--", i):
            j = q.find("\n", i)
            j = len(q) if j < 0 else j
            comments.append(q[i:j])
            i = j
        elif q[i] == "'":
            i, buf = i + 1, []
            while True:
                assert i < len(q), "unterminated literal"
                if q[i] == "'":
                    if q.startswith("''", i):
                        buf.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(q[i])
                i += 1
            lits.append("".join(buf))
            code.append("S")
        else:
            assert not q.startswith("/*", i) and q[i] != '"', "block comment or quoted identifier"
            assert q[i] != ";" or not q[i + 1:].strip(), "a second statement"
            code.append(q[i])
            i += 1
    return "".join(code), lits, comments


def lex(p):
    return lex_kql(p.query) if p.language == "kql" else lex_sql(p.query)


# -- findings with every attacker-controlled value replaced ------------------------------------------

def _swap(f: Finding, v: str) -> Finding:
    ev = dict(f.evidence)
    if "top_sources" in ev:
        ev["top_sources"] = [{**t, "ip": v + str(i)} for i, t in enumerate(ev["top_sources"])]
    if "dst_ips" in ev:
        ev["dst_ips"] = [v + "1", v + "2"]
    if "sample_names" in ev and ev["sample_names"] and isinstance(ev["sample_names"][0], dict):
        ev["sample_names"] = [{**s, "name": v + str(i)} for i, s in enumerate(ev["sample_names"])]
    ev["coincidence"] = {"scale": v} if f.detection == "relay" else ev.get("coincidence")
    ev["bin_seconds"] = v if f.detection == "inbound_flood" else ev.get("bin_seconds")
    return replace(f, host=v + "h", src_ip=v + "s", process=v + "p", domain=v + "d", dst_ip=v + "x",
                   user=v + "u", id=v, detection=f.detection, evidence=ev)


@pytest.mark.parametrize("f", one_each(), ids=lambda f: f.detection + "-" + f.id[:6])
def test_attacker_values_stay_inside_literals(f):
    benign, evil = _swap(f, "benign"), _swap(f, EVIL)
    pb, pe = pivots(benign, "/ws"), pivots(evil, "/ws")
    assert [p.title for p in pb] == [p.title for p in pe] and pb
    for b, e in zip(pb, pe, strict=True):
        code_b, lits_b, _ = lex(b)
        code_e, lits_e, com_e = lex(e)
        assert code_e == code_b, f"{e.language} structure changed by the values:\n{e.query}"
        assert len(lits_e) == len(lits_b)
        assert all(COMMENT.match(c) for c in com_e), com_e
        keep = "\n\t"
        want = expected(EVIL, keep)
        decoded = [lit for lit in lits_e if want in lit]
        assert decoded, f"no literal carries the value in\n{e.query}"


def test_comments_keep_only_safe_characters():
    f = replace(one_each()[0], id="x\n| drop table\r--*/", detection="beacon")
    for p in pivots(f):
        first = p.query.splitlines()[0]
        assert first.endswith(": connections of the pair") or "finding xdroptable--" in first
        assert "\r" not in p.query and "drop table" not in p.query


def test_kql_and_sql_literals():
    assert kql_str('a"b\\c\nd\te') == '"a\\"b\\\\c\\nd\\te"'
    assert kql_str("x\u202ey\x00z\u2028") == '"x\ufffdy\ufffdz\ufffd"'
    assert sql_str("O'Brien\\n") == "'O''Brien\\n'"
    assert sql_str("a\nb\x00") == "'a\nb\ufffd'"


@pytest.mark.parametrize("value", ["O'Brien", "\\'; DROP TABLE x; --", "a\nb\tc", "é漢字😀", "'''", "\\", EVIL])
def test_duckdb_reads_sql_literals_back(value):
    got = duckdb.connect().execute("SELECT " + sql_str(value)).fetchall()[0][0]
    assert got == expected(value, "\n\t")


# -- the SQL against a workspace --------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOST = "ws-'017\"; --"
DOMAIN = "c2'.evil\\example"


def _conn_row(t, **kw):
    row = {"ts": T0 + timedelta(seconds=t), "src_ip": "10.1.2.17", "dst_ip": "203.0.113.50", "src_port": 50000,
           "dst_port": 443, "proto": "tcp", "direction": "outbound", "state": "established", "host": HOST,
           "process": "upd'ater.exe", "server_name": DOMAIN, "bytes_out": 500, "bytes_in": 100, "source": "defender"}
    row.update(kw)
    return row


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("ws")
    rows = [_conn_row(300 * k) for k in range(12)]  # the pair, inside the finding's window
    rows += [_conn_row(-86400 + k) for k in range(3)]  # the pair, a day before: outside the window
    rows += [_conn_row(60 * k + 7, host="ws-benign", src_ip="10.1.2.99", process="x.exe") for k in range(5)]
    rows += [_conn_row(60 * k + 9, server_name="other.example", dst_ip="198.51.100.1") for k in range(4)]
    # inbound sessions to the relay device and outbound legs right after them
    for k in range(6):
        rows.append(_conn_row(1000 + 100 * k, direction="inbound", src_ip=f"45.77.1.{k % 2}", dst_ip="10.9.0.5",
                              dst_port=8443, host="edge'fw", server_name=None, process="nginx"))
        rows.append(_conn_row(1000.2 + 100 * k, src_ip="10.9.0.5", dst_ip=f"192.0.2.{k}", host="edge'fw",
                              server_name=None, process="nginx"))
    rows.append(_conn_row(1050, src_ip="10.9.0.5", dst_ip="192.0.2.99", host="edge'fw", server_name=None))  # no parent
    # an inbound SSH campaign against 10.9.0.5:22 (one row per attempt)
    for k in range(40):
        rows.append(_conn_row(1800 + 10 * k, direction="inbound", src_ip=f"198.51.100.{k % 7}", dst_ip="10.9.0.5",
                              dst_port=22, state="rejected", host=None, server_name=None, process=None))
    conn = conform(pa.Table.from_pylist(rows), "conn")
    (ws / "conn" / "day=2026-03-02").mkdir(parents=True)
    pq.write_table(conn, ws / "conn" / "day=2026-03-02" / "a.parquet")
    dns = [{"ts": T0 + timedelta(seconds=30 * k), "src_ip": "10.1.2.17", "host": HOST, "query": f"q{k}x.com",
            "qtype": "A", "rcode": "NXDOMAIN" if k % 4 else "NOERROR", "answers": [], "ttls": []} for k in range(40)]
    dns += [{"ts": T0 + timedelta(seconds=5 * k), "src_ip": "10.1.2.22", "host": "ws-022",
             "query": f"{'a' * 40}{k}.t.exfil-example.net", "qtype": "TXT", "rcode": "NOERROR", "answers": [],
             "ttls": [0.0]} for k in range(25)]
    (ws / "dns" / "day=2026-03-02").mkdir(parents=True)
    pq.write_table(conform(pa.Table.from_pylist(dns), "dns"), ws / "dns" / "day=2026-03-02" / "a.parquet")
    return ws


def _sql(f, ws, title):
    (p,) = [p for p in pivots(f, str(ws)) if p.language == "sql" and p.title == title]
    return duckdb.connect().sql(p.query)


def _beacon():
    f = one_each()[0]
    return replace(f, host=HOST, process="upd'ater.exe", domain=DOMAIN,
                   first_seen=(T0 - timedelta(minutes=5)).isoformat(),
                   last_seen=(T0 + timedelta(hours=1)).isoformat(), evidence={"dst_ips": ["203.0.113.50"]})


def test_beacon_sql_returns_exactly_the_pair(workspace):
    rows = _sql(_beacon(), workspace, "The pair's connections and the gap before each").fetchall()
    assert len(rows) == 12
    assert {r[1] for r in rows} == {HOST} and {r[7] for r in rows} == {DOMAIN}
    assert [r[-1] for r in rows[1:]] == [300.0] * 11
    who = dict((r[0], r[1]) for r in _sql(_beacon(), workspace, "Every host that contacts the destination").fetchall())
    assert who == {HOST: 12, "ws-benign": 5}


def test_flood_sql_counts_every_attempt(workspace):
    f = replace(one_each()[1], first_seen=(T0 + timedelta(seconds=1800)).isoformat(),
                last_seen=(T0 + timedelta(seconds=2200)).isoformat())
    bins = _sql(f, workspace, "Attempts and sources per 5-minute bin").fetchall()
    assert sum(r[1] for r in bins) == 40 and max(r[2] for r in bins) == 7
    tops = _sql(f, workspace, "The busiest sources and their outcomes").fetchall()
    assert sum(r[1] for r in tops) == 40 and len(tops) == 7


def test_relay_sql_pairs_each_inbound_session_with_its_leg(workspace):
    f = replace(one_each()[2], host="edge'fw", src_ip="10.9.0.5", first_seen=(T0 + timedelta(seconds=1000)).isoformat(),
                last_seen=(T0 + timedelta(seconds=1600)).isoformat())
    rows = _sql(f, workspace, "Inbound sessions and the outbound legs that followed").fetchall()
    assert [(r[3], r[5]) for r in rows] == [(f"45.77.1.{k % 2}", f"192.0.2.{k}") for k in range(6)]
    assert all(abs(r[2] - 0.2) < 1e-6 for r in rows)


def test_dga_sql_counts_the_failed_lookups(workspace):
    f = replace(one_each()[4], host=HOST, src_ip="10.1.2.17", first_seen=T0.isoformat(),
                last_seen=(T0 + timedelta(minutes=20)).isoformat())
    rows = _sql(f, workspace, "Failed lookups of the host per minute").fetchall()
    assert sum(r[1] for r in rows) == sum(1 for k in range(40) if k % 4)


def test_dns_sql_reads_the_names_under_the_domain(workspace):
    f = replace(one_each()[5], first_seen=T0.isoformat(), last_seen=(T0 + timedelta(minutes=5)).isoformat())
    rows = _sql(f, workspace, "Lookups under the domain").fetchall()
    assert len(rows) == 25 and all(r[3].endswith(".t.exfil-example.net") for r in rows)


def test_every_sql_pivot_of_every_detection_runs(workspace):
    other = Finding(detection="other", title="t", severity="low", score=0.2, first_seen=None, last_seen=None,
                    explanation="x", host=HOST)
    for f in [*one_each(evil=True), other]:
        for p in pivots(f, str(workspace)):
            if p.language == "sql":
                duckdb.connect().sql(p.query).fetchall()
