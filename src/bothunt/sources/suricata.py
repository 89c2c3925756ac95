"""Suricata EVE JSON: `flow` events become `conn` rows, `dns` events become `dns` rows.

Parsing is bulk: each chunk of lines goes through `pyarrow.json` with a fixed schema (fields bothunt
does not use are ignored), and the mapping is SQL in an in-process DuckDB. A chunk that fails to
parse is bisected until the bad lines are isolated, so only they are rejected, with their line
numbers, and the valid events around them are kept.

Mapping decisions:
- conn: `ts` is `flow.start` (the event `timestamp` when start is missing), `duration` is end - start.
  Bytes and packets are Suricata's wire counts (`*_toserver` -> out, `*_toclient` -> in), headers
  included. ICMP type / code go in src_port / dst_port, as Zeek does. `service` is `app_proto`
  ("failed" -> null, "tls" -> "ssl" for Zeek's vocabulary). `action` is `flow.state/flow.reason`.
- conn `state`, for TCP from the cumulative flags each side sent (`tcp.tcp_flags_ts` / `_tc`):
  responder sent SYN (a SYN-ACK) -> established; responder sent RST without SYN -> rejected;
  responder sent ACKs only (flow picked up mid-stream) -> established; originator sent SYN and the
  responder nothing -> attempted; no flags worth a word -> other. Without TCP flags (UDP, ICMP, TCP
  flows logged without the `tcp` object): packets came back -> established, none -> attempted.
- conn `server_name`: TLS SNI or HTTP Host of any non-flow event with the same flow_id (first seen).
  App-layer events precede the flow event (logged when the flow ends), so names wait across chunks
  until their flow event arrives.
- The EVE `host` field is the sensor's name, not an endpoint, so conn/dns `host` stay null.
- dns: queries (v1/v2 `query` events, one per question; v3 `request` events, first of `queries`)
  and responses (v2 `answer` with `answers`/`grouped`; v3 `response`; v1 one `answer` event per
  resource record, grouped into one response by flow_id + dns.id + timestamp, as all records of one
  response share the packet's timestamp) are paired into one row per transaction: the k-th query
  and the k-th response with the same flow_id, dns.id and query name, in time order (retransmitted
  queries with the same id are separate transactions). Leftovers are then paired on flow_id +
  dns.id alone (a v1 NODATA response names the zone of its SOA record, not the query). A query with
  no response is a row with null rcode/answers; a response with no logged query is a row too.
  The client is `src_ip` unless the event comes from port 53 to another port (v3 responses name the
  responder as src_ip). Events of the last minute of a chunk wait for the next chunk, so a query and
  its response are not split across chunks.
- Every other event type (alert, http, tls, fileinfo, anomaly, stats, netflow, ...) is counted as
  skipped with a reason per type.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from bothunt.sources.base import Batch, ReadContext, Source, blank_lines, iter_chunks

_S, _I = pa.string(), pa.int64()
EVE_SCHEMA = pa.schema([
    ("timestamp", _S), ("flow_id", pa.uint64()), ("event_type", _S),
    ("src_ip", _S), ("src_port", _I), ("dest_ip", _S), ("dest_port", _I), ("proto", _S),
    ("app_proto", _S), ("icmp_type", _I), ("icmp_code", _I),
    ("flow", pa.struct([("start", _S), ("end", _S), ("state", _S), ("reason", _S),
                        ("pkts_toserver", _I), ("pkts_toclient", _I),
                        ("bytes_toserver", _I), ("bytes_toclient", _I)])),
    ("tcp", pa.struct([("tcp_flags_ts", _S), ("tcp_flags_tc", _S)])),
    ("dns", pa.struct([
        ("version", _I), ("type", _S), ("id", _I), ("rrname", _S), ("rrtype", _S), ("rcode", _S),
        ("rdata", _S), ("ttl", _I),
        ("queries", pa.list_(pa.struct([("rrname", _S), ("rrtype", _S)]))),
        ("answers", pa.list_(pa.struct([("rrname", _S), ("rrtype", _S), ("ttl", _I), ("rdata", _S)]))),
        # Only the grouped types whose values are plain strings in every EVE version.
        ("grouped", pa.struct([(t, pa.list_(_S)) for t in ("A", "AAAA", "CNAME", "PTR")])),
    ])),
    ("http", pa.struct([("hostname", _S)])),
    ("tls", pa.struct([("sni", _S)])),
])
_PARSE = pj.ParseOptions(explicit_schema=EVE_SCHEMA, unexpected_field_behavior="ignore")

SKIP_REASONS = {
    "alert": "Suricata alerts are signature verdicts; the flow event carries the connection",
    "http": "HTTP transactions: only the Host is used, as conn.server_name by flow_id",
    "tls": "TLS handshakes: only the SNI is used, as conn.server_name by flow_id",
    "fileinfo": "file records belong to no canonical table",
    "anomaly": "decoder / app-layer anomalies belong to no canonical table",
    "stats": "engine statistics, not traffic",
    "netflow": "one-direction netflow records would count the flow events twice",
}
HOLD_SECONDS = 60
MAX_PENDING_NAMES = 1_000_000


class _Lines:
    """Line offsets of one chunk (which ends with a newline), found with numpy."""

    def __init__(self, chunk: bytes, first_line: int) -> None:
        self.chunk, self.first_line = chunk, first_line
        buf = np.frombuffer(chunk, dtype=np.uint8)
        self.ends = np.flatnonzero(buf == 10)
        self.starts = np.concatenate(([0], self.ends[:-1] + 1))
        self.blank = blank_lines(chunk, self.starts, self.ends)  # pyarrow.json skips these lines
        # pyarrow.json parses blocks in parallel but fails on a line longer than a block
        self.block_size = max(1 << 20, int((self.ends - self.starts).max(initial=0)) + 2)

    def raw(self, line: int) -> bytes:
        i = line - self.first_line
        return self.chunk[self.starts[i]:self.ends[i]]


def parse_eve(lines: _Lines, ctx: ReadContext) -> pa.Table | None:
    """All parseable events of a chunk with their 1-based line in `_line`; other lines rejected.

    A stretch that fails to parse is halved until the bad lines are alone. The halves wait on an explicit
    stack: a recursive closure would be a reference cycle holding every parsed table of the chunk until
    Python's cycle collector happened to run, which on a large file it seldom does (memory grew 30 MiB a
    chunk)."""
    parts: list[pa.Table] = []
    opts = pj.ReadOptions(block_size=lines.block_size)
    todo = [(0, lines.ends.size)] if lines.ends.size else []
    while todo:
        a, b = todo.pop()
        seg = lines.chunk[lines.starts[a]:lines.ends[b - 1] + 1]
        keep = np.flatnonzero(~lines.blank[a:b])
        if keep.size == 0:
            continue
        try:
            table = pj.read_json(pa.py_buffer(seg), read_options=opts, parse_options=_PARSE)
            error = "more than one JSON value on one line" if table.num_rows != keep.size else ""
        except pa.ArrowInvalid as exc:
            error = f"not a Suricata EVE JSON object: {exc}"
        if not error:
            parts.append(table.append_column("_line", pa.array(lines.first_line + a + keep, pa.int64())))
        elif b - a == 1:
            ctx.reject(lines.first_line + a, error, seg.rstrip(b"\r\n"))
        else:
            mid = (a + b) // 2
            todo += [(mid, b), (a, mid)]  # the first half is popped first: parts stay in line order
    return pa.concat_tables(parts) if parts else None


_TS = "try_cast({} AS TIMESTAMPTZ)"
_FLAG = "try_cast('0x' || tcp.{} AS INTEGER)"

CONN_SQL = f"""
WITH f AS (
  SELECT *, coalesce({_TS.format('flow.start')}, {_TS.format('"timestamp"')}) AS t0,
         {_TS.format('flow."end"')} AS t1, {_FLAG.format('tcp_flags_ts')} AS fts,
         {_FLAG.format('tcp_flags_tc')} AS ftc
  FROM ev WHERE event_type = 'flow')
SELECT _line, t0 AS ts, (epoch_us(t1) - epoch_us(t0)) / 1e6 AS duration,
  src_ip, dest_ip AS dst_ip, coalesce(src_port, icmp_type)::INTEGER AS src_port,
  coalesce(dest_port, icmp_code)::INTEGER AS dst_port, lower(proto) AS proto,
  CASE lower(app_proto) WHEN 'failed' THEN NULL WHEN 'tls' THEN 'ssl' ELSE lower(app_proto) END AS service,
  flow.bytes_toserver AS bytes_out, flow.bytes_toclient AS bytes_in,
  flow.pkts_toserver AS pkts_out, flow.pkts_toclient AS pkts_in,
  CASE WHEN ftc & 2 <> 0 THEN 'established'
       WHEN ftc & 4 <> 0 THEN 'rejected'
       WHEN ftc & 16 <> 0 THEN 'established'
       WHEN fts & 2 <> 0 THEN 'attempted'
       WHEN fts IS NOT NULL THEN 'other'
       WHEN flow.pkts_toclient > 0 THEN 'established'
       WHEN flow.pkts_toclient = 0 THEN 'attempted'
       ELSE 'other' END AS state,
  nullif(concat_ws('/', flow.state, flow.reason), '') AS action, n.name AS server_name,
  'suricata' AS source, flow_id::VARCHAR AS uid,
  CASE WHEN t0 IS NULL THEN 'flow event without a valid flow.start or timestamp'
       WHEN src_ip IS NULL OR dest_ip IS NULL THEN 'flow event without src_ip / dest_ip' END AS reason
FROM f LEFT JOIN (SELECT flow_id, name FROM names) AS n USING (flow_id)
ORDER BY _line
"""

NAMES_SQL = """
SELECT flow_id, arg_min(name, _line) AS name, min(_line) AS _line FROM (
  SELECT flow_id, lower(rtrim(coalesce(tls.sni, http.hostname), '.')) AS name, _line FROM ev
  WHERE event_type <> 'flow' AND flow_id IS NOT NULL AND coalesce(tls.sni, http.hostname) <> ''
  UNION ALL SELECT flow_id, name, _line FROM pending_names)
GROUP BY flow_id
"""

# Names wait for their flow event; a file without flow events must not grow them without bound.
UNMATCHED_NAMES_SQL = f"""
SELECT * FROM names WHERE flow_id NOT IN (SELECT flow_id FROM ev WHERE event_type = 'flow'
                                          AND flow_id IS NOT NULL)
ORDER BY _line DESC LIMIT {MAX_PENDING_NAMES}
"""

# One row per dns event, in the words of every EVE version; `kind` q = query, r = whole response,
# rec = one v1 resource record.
DNS_EVENTS_SQL = f"""
WITH d AS (
  SELECT _line, flow_id, dns, {_TS.format('"timestamp"')}::TIMESTAMP AS ts,
         src_port = 53 AND coalesce(dest_port, -1) <> 53 AS flip, src_ip, dest_ip, lower(dns.type) AS typ
  FROM ev WHERE event_type = 'dns')
SELECT _line AS line, flow_id, dns.id AS txid, ts,
  CASE WHEN flip THEN dest_ip ELSE src_ip END AS client,
  CASE WHEN flip THEN src_ip ELSE dest_ip END AS server,
  CASE WHEN typ IN ('query', 'request') THEN 'q'
       WHEN typ IN ('answer', 'response') AND (dns.version >= 2 OR dns.answers IS NOT NULL
            OR dns.grouped IS NOT NULL OR dns.queries IS NOT NULL) THEN 'r'
       WHEN typ = 'answer' THEN 'rec' END AS kind,
  nullif(lower(rtrim(coalesce(dns.queries[1].rrname, dns.rrname), '.')), '') AS name,
  coalesce(dns.queries[1].rrtype, CASE WHEN dns.version >= 2 OR typ <> 'answer' THEN dns.rrtype END) AS qtype,
  dns.rcode AS rcode,
  CASE WHEN dns.answers IS NOT NULL THEN [a.rdata FOR a IN dns.answers IF a.rdata IS NOT NULL]
       WHEN dns.grouped IS NOT NULL THEN list_concat(dns.grouped.A, dns.grouped.AAAA,
                                                     dns.grouped.CNAME, dns.grouped.PTR) END AS answers,
  [a.ttl::DOUBLE FOR a IN dns.answers IF a.rdata IS NOT NULL] AS ttls,
  dns.rdata AS rdata, dns.ttl::DOUBLE AS ttl,
  CASE WHEN dns IS NULL THEN 'dns event without a dns object'
       WHEN ts IS NULL THEN 'dns event without a valid timestamp'
       WHEN typ NOT IN ('query', 'request', 'answer', 'response') OR typ IS NULL
         THEN 'dns event of unknown type ' || coalesce(dns.type, 'null')
       WHEN typ <> 'answer' AND coalesce(dns.queries[1].rrname, dns.rrname) IS NULL
         THEN 'dns event without a query name' END AS reason
FROM d
"""

_COLS = "line, flow_id, txid, ts, client, server, name, qtype, rcode, answers, ttls"
_REST = _COLS.split(", ", 1)[1]


def _pair(name: str, keys: tuple[str, ...], q: str, r: str) -> str:
    """CTEs pairing the k-th query with the k-th response of the same keys, in time order."""
    part = ", ".join(keys)
    on = " AND ".join(f"q.{k} = r.{k}" for k in keys)
    rank = f"row_number() OVER (PARTITION BY {part} ORDER BY ts, line) AS rk"
    return f"""{name}_q AS (SELECT *, {rank} FROM {q}),
{name}_r AS (SELECT *, {rank} FROM {r}),
{name} AS (
  SELECT q.line AS q_line, r.line AS r_line, coalesce(q.flow_id, r.flow_id) AS flow_id,
    coalesce(q.txid, r.txid) AS txid, coalesce(q.ts, r.ts) AS ts, coalesce(q.client, r.client) AS client,
    coalesce(q.server, r.server) AS server, coalesce(q.name, r.name) AS name,
    coalesce(q.qtype, r.qtype) AS qtype, r.rcode, r.answers, r.ttls
  FROM {name}_q AS q FULL JOIN {name}_r AS r ON {on} AND q.rk = r.rk)"""


COMBINE_SQL = f"""
WITH resp AS (
  SELECT {_COLS} FROM de WHERE kind = 'r'
  UNION ALL
  SELECT min(line) AS line, flow_id, txid, ts, any_value(client) AS client, any_value(server) AS server,
    arg_min(name, line) AS name, NULL::VARCHAR AS qtype, arg_min(rcode, line) AS rcode,
    list(rdata ORDER BY line) FILTER (WHERE rdata IS NOT NULL) AS answers,
    list(ttl ORDER BY line) FILTER (WHERE rdata IS NOT NULL) AS ttls
  FROM de WHERE kind = 'rec' GROUP BY flow_id, txid, ts),
qry AS (SELECT {_COLS} FROM de WHERE kind = 'q'),
{_pair("p1", ("flow_id", "txid", "name"), "qry", "resp")},
q2 AS (SELECT q_line AS line, {_REST} FROM p1 WHERE r_line IS NULL),
r2 AS (SELECT r_line AS line, {_REST} FROM p1 WHERE q_line IS NULL),
{_pair("p2", ("flow_id", "txid"), "q2", "r2")}
SELECT ts, client AS src_ip, server AS dst_ip, name AS query, qtype, rcode,
  CASE WHEN len(answers) > 0 THEN answers END AS answers,
  CASE WHEN len(answers) > 0 THEN ttls END AS ttls,
  'suricata' AS source, flow_id::VARCHAR AS uid
FROM (SELECT * FROM p1 WHERE q_line IS NOT NULL AND r_line IS NOT NULL UNION ALL SELECT * FROM p2)
ORDER BY ts, coalesce(q_line, r_line)
"""


class SuricataSource(Source):
    id = "suricata"
    description = "Suricata EVE JSON lines (flow and dns events)"
    tables = ("conn", "dns")

    def sniff(self, head: bytes, path: Path) -> int:
        for raw in head.splitlines()[:5]:
            line = raw.strip()
            if not line:
                continue
            if not line.startswith(b"{") or b'"event_type"' not in line:
                return 0
            try:
                event = json.loads(line)
            except ValueError:  # cut by the sniff window (a large stats event) or damaged
                return 80 if b'"timestamp"' in line else 50
            return 100 if isinstance(event, dict) and "timestamp" in event and "event_type" in event else 0
        return 0

    def read(self, path: Path, ctx: ReadContext) -> Iterator[Batch]:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        skipped: Counter[str] = Counter()
        names = pa.table({"flow_id": pa.array([], pa.uint64()), "name": pa.array([], pa.string()),
                          "_line": pa.array([], pa.int64())})
        pending: pa.Table | None = None
        for first_line, chunk in iter_chunks(path, ctx):
            lines = _Lines(chunk, first_line)
            ev = parse_eve(lines, ctx)
            if ev is None:
                continue
            con.register("ev", ev)
            counts = dict(con.sql("SELECT event_type, count(*) FROM ev GROUP BY 1").fetchall())
            if None in counts:
                for line, in con.sql("SELECT _line FROM ev WHERE event_type IS NULL").fetchall():
                    ctx.reject(line, "not a Suricata EVE event: no event_type", lines.raw(line))
            skipped.update({k: v for k, v in counts.items() if k not in (None, "flow", "dns")})
            if names.num_rows or set(counts) - {"flow", "dns"}:
                con.register("pending_names", names)
                names = con.sql(NAMES_SQL).to_arrow_table()
            if "flow" in counts:
                con.register("names", names)
                conn = self._rejecting(con.sql(CONN_SQL).to_arrow_table(), "_line", lines, ctx)
                if names.num_rows:
                    names = con.sql(UNMATCHED_NAMES_SQL).to_arrow_table()
                if conn.num_rows:
                    yield Batch("conn", conn.drop_columns(["_line"]))
            if "dns" in counts:
                events = self._rejecting(con.sql(DNS_EVENTS_SQL).to_arrow_table(), "line", lines, ctx)
                pending = events if pending is None else pa.concat_tables([pending, events])
            con.unregister("ev")
            if pending is not None and pending.num_rows:
                pending, dns = self._combine(con, pending, final=False)
                if dns.num_rows:
                    yield Batch("dns", dns)
        if pending is not None and pending.num_rows:
            _, dns = self._combine(con, pending, final=True)
            if dns.num_rows:
                yield Batch("dns", dns)
        for event_type, count in sorted(skipped.items()):
            why = SKIP_REASONS.get(event_type, f"{event_type} events belong to no canonical table")
            ctx.skip(count, f"EVE {event_type} events: {why}")
        con.close()

    @staticmethod
    def _rejecting(table: pa.Table, line_col: str, lines: _Lines, ctx: ReadContext) -> pa.Table:
        """Reject the rows whose `reason` is set (Python per rejected row only) and drop the column."""
        bad = table.filter(pc.is_valid(table["reason"]))
        for line, reason in zip(bad[line_col].to_pylist(), bad["reason"].to_pylist(), strict=True):
            ctx.reject(line, reason, lines.raw(line))
        good = table.filter(pc.is_null(table["reason"])) if bad.num_rows else table
        return good.drop_columns(["reason"])

    @staticmethod
    def _combine(con: duckdb.DuckDBPyConnection, events: pa.Table, final: bool) -> tuple[pa.Table, pa.Table]:
        """Pair queries and responses into rows; unless `final`, hold back the transactions that
        have an event in the last HOLD_SECONDS of the chunk, returned as the new pending events."""
        con.register("all_de", events)
        window = "WHERE FALSE" if final else (
            f"WHERE ts >= (SELECT max(ts) FROM all_de) - INTERVAL {HOLD_SECONDS} SECOND")
        marked = con.sql(f"""SELECT a.*, h.flow_id IS NOT NULL AS held FROM all_de AS a LEFT JOIN
            (SELECT DISTINCT flow_id, txid FROM all_de {window}) AS h
            ON a.flow_id = h.flow_id AND a.txid = h.txid""").to_arrow_table()
        held = marked.filter(marked["held"]).drop_columns(["held"])
        con.register("de", marked.filter(pc.invert(marked["held"])).drop_columns(["held"]))
        rows = con.sql(COMBINE_SQL).to_arrow_table()
        con.unregister("de")
        con.unregister("all_de")
        return held, rows
