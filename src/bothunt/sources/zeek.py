"""Zeek conn.log and dns.log -> canonical `conn` / `dns` rows.

Reads Zeek's TSV format (header-driven, `zeek_tsv`) and JSON lines (`zeek_json`), plain or gzip,
including rotated names such as `conn.16:00:00-17:00:00.log.gz`. Which log a block is comes from
`#path` (TSV) or `_path` / the field set (JSON), then the file name, then the TSV field set. conn and
dns become canonical rows; ssl and http logs are joined into `conn.server_name` by uid when their conn
log is read (`zeek_join`), so read on their own they are counted as skipped; so are notice, weird,
files, x509 and every other log, each with its reason.

conn mapping: `ts` (epoch seconds, kept as is even when capture-relative, as in CTU captures) ->
timestamp; `id.orig_h/p` -> src, `id.resp_h/p` -> dst; `orig_bytes` -> bytes_out, `resp_bytes` ->
bytes_in, `orig_pkts` / `resp_pkts` -> pkts_out / pkts_in; `conn_state` -> `action` as Zeek wrote it,
and `state` normalised:

| conn_state | Zeek's meaning                                                        | state       |
|------------|-----------------------------------------------------------------------|-------------|
| S0         | connection attempt seen, no reply                                     | attempted   |
| SH         | originator sent SYN then FIN, no SYN-ACK seen (half open)             | attempted   |
| RSTOS0     | originator sent SYN then RST, no SYN-ACK seen                         | attempted   |
| REJ        | connection attempt rejected (RST answering the SYN)                   | rejected    |
| RSTRH      | responder sent SYN-ACK then RST, no SYN from originator seen          | rejected    |
| S1         | established, not terminated                                           | established |
| SF         | normal establishment and termination                                  | established |
| S2, S3     | established, close attempt by originator / responder without reply    | established |
| RSTO, RSTR | established, then originator / responder aborted (RST)                | established |
| SHR        | responder sent SYN-ACK then FIN, no SYN from originator seen          | other       |
| OTH        | no SYN seen, midstream traffic: established when the responder sent   | established |
|            | packets or bytes, else other                                          | / other     |
| other word | (a newer Zeek's state)                                                | other       |

Labels: Stratosphere's `*.labeled` logs carry `label` (Malicious, Benign, Background, ...) and
`detailedlabel` (e.g. CC, External-Attack-to-Device). The canonical `label` is `label` alone, so
counts by label match the dataset's published ones; `detailedlabel` is not kept.

dns mapping: `id.orig_h` -> src_ip, `id.resp_h` -> dst_ip, `query` lower-cased without trailing dot,
`qtype_name` -> qtype, `rcode_name` -> rcode (numbers when the names are unset), `answers` ->
list<string>, `TTLs` -> list<float64>. String values keep Zeek's `\\xNN` escapes of unprintable
bytes, so attacker-chosen names stay inert text.

Rows whose `ts` is unset or not a time, or whose port is out of range, are rejected with file, line
and reason; `direction` and `remote_ip_type` are left to the ingest pipeline (bothunt.netclass).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.schema import TS
from bothunt.sources.base import Batch, ReadContext, Source, read_head
from bothunt.sources.zeek_join import ServerNames
from bothunt.sources.zeek_json import first_record, iter_json
from bothunt.sources.zeek_parts import Part, convert_strings, kind_from_name
from bothunt.sources.zeek_tsv import iter_tsv

CONN_FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
               "duration", "orig_bytes", "resp_bytes", "conn_state", "orig_pkts", "resp_pkts", "label")
DNS_FIELDS = ("ts", "uid", "id.orig_h", "id.resp_h", "query", "qtype", "qtype_name", "rcode", "rcode_name",
              "answers", "TTLs", "label")
WANTED = {"conn": CONN_FIELDS, "dns": DNS_FIELDS}

STATE_OF = {"S0": "attempted", "SH": "attempted", "RSTOS0": "attempted", "REJ": "rejected",
            "RSTRH": "rejected", "S1": "established", "SF": "established", "S2": "established",
            "S3": "established", "RSTO": "established", "RSTR": "established", "SHR": "other", "OTH": "other"}
_STATE_KEYS = pa.array(list(STATE_OF))
_STATE_VALUES = pa.array(list(STATE_OF.values()))

SKIP_REASONS = {
    "ssl": "Zeek ssl log: joined into conn.server_name by uid",
    "http": "Zeek http log: joined into conn.server_name by uid (CONNECT target or Host)",
    "notice": "Zeek notice log: Zeek's own alerts, not connections (bothunt runs its own detections)",
    "weird": "Zeek weird log: protocol anomalies, not connections",
    "files": "Zeek files log: file transfers, not connections",
    "x509": "Zeek x509 log: certificates, not connections",
}
# A time past this (year 5138) is no epoch-seconds value: someone's milliseconds or garbage.
MAX_EPOCH_S = 1e11


def skip_reason(kind: str | None) -> str:
    if kind is None:
        return "Zeek log of unknown kind (no #path; name and fields are not conn or dns)"
    return SKIP_REASONS.get(kind, f"Zeek {kind} log: no canonical table for it")


def _is_json(head: bytes) -> bool:
    return head.lstrip()[:1] == b"{"


def read_parts(path: Path, ctx: ReadContext, wanted: Mapping[str, Sequence[str]]) -> Iterator[Part]:
    """Parts of any Zeek log, TSV or JSON, under Zeek's column names."""
    reader = iter_json if _is_json(read_head(path, 4096)) else iter_tsv
    return reader(path, ctx, wanted, kind_from_name(path.name))


class ZeekSource(Source):
    id = "zeek"
    description = "Zeek conn/dns logs, TSV or JSON lines, plain or gzip (ssl/http joined by uid)"
    tables = ("conn", "dns")

    def sniff(self, head: bytes, path: Path) -> int:
        text = head.lstrip()
        if text.startswith((b"#separator", b"#fields")):
            return 100
        if text.startswith(b"{"):
            rec = first_record(head) or {}
            ids = {"id.orig_h", "id_orig_h", "id"} & rec.keys()
            if ids and ("uid" in rec or "_path" in rec):
                return 90
        return 0

    def read(self, path: Path, ctx: ReadContext) -> Iterator[Batch]:
        names = ServerNames(path, read_parts)
        skipped: Counter[str | None] = Counter()
        records = 0
        for part in read_parts(path, ctx, WANTED):
            records += part.rows
            if part.table is None:
                skipped[part.kind] += part.rows
                continue
            conn = part.kind == "conn"
            table = names.apply(conn_table(part, ctx), ctx) if conn else dns_table(part, ctx)
            if table.num_rows:
                yield Batch(part.kind or "conn", table)
        for kind, n in skipped.items():
            if n:
                ctx.skip(n, skip_reason(kind))
        names.report(ctx)
        if not records and not ctx.rejected:
            ctx.note("no records: the file is empty or holds only header lines")


# ---------------------------------------------------------------------------------------------------
# Columns


def _col(part: Part, name: str, typ: pa.DataType = pa.string()) -> pa.ChunkedArray | pa.Array:
    assert part.table is not None
    if name in part.table.column_names:
        return part.table[name]
    return pa.nulls(part.table.num_rows, typ)


def _time_us(text: str) -> int | None:
    try:
        return round(float(text) * 1e6)
    except (ValueError, OverflowError):
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1e6)


def _seconds(ts: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Epoch seconds (float64) from numbers, timestamps or text (numbers or ISO 8601); and a mask of
    values that were present but are no time."""
    ts = ts.combine_chunks() if isinstance(ts, pa.ChunkedArray) else ts
    none = np.zeros(len(ts), bool)
    if pa.types.is_timestamp(ts.type):
        return pc.divide(ts.cast(pa.timestamp("us")).cast(pa.int64()).cast(pa.float64()), 1e6), none
    if not pa.types.is_string(ts.type):
        return ts.cast(pa.float64()), none
    for target in (pa.float64(), TS):
        try:
            out = ts.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return (out if target == pa.float64() else _seconds(out)[0]), none
    uniq = pc.unique(ts)
    us = pa.array([None if v is None else _time_us(v) for v in uniq.to_pylist()], pa.int64())
    out = pc.divide(pc.take(us, pc.index_in(ts, value_set=uniq)).cast(pa.float64()), 1e6)
    return out, pc.and_(pc.is_valid(ts), pc.is_null(out)).to_numpy(zero_copy_only=False)


def _timestamps(part: Part, ctx: ReadContext) -> None:
    """Make `ts` UTC microseconds; rows without a usable time are rejected (and removed from `part`)."""
    assert part.table is not None
    if "ts" not in part.table.column_names:
        part.drop(ctx, np.ones(part.rows, bool), "no ts field in this log's #fields")
        return
    raw = part.table["ts"]
    secs, unparsable = _seconds(raw)
    out_of_range = pc.or_(pc.invert(pc.is_finite(secs)),
                          pc.or_(pc.less(secs, 0), pc.greater_equal(secs, MAX_EPOCH_S)))
    part.table = part.table.set_column(part.table.column_names.index("ts"), "ts", secs)
    part.drop_rules(ctx, [(pc.is_null(raw), "missing ts (unset field)", None),
                          (unparsable, "bad ts value", raw), (out_of_range, "bad ts value", raw)])
    ts = pc.round(pc.multiply(part.table["ts"], 1e6)).cast(pa.int64()).cast(TS)
    part.table = part.table.set_column(part.table.column_names.index("ts"), "ts", ts)


def _ports(part: Part, ctx: ReadContext, names: Sequence[str]) -> None:
    assert part.table is not None
    rules = []
    for name in names:
        part.coerce(ctx, name, pa.int64())
    for name in names:
        if name in part.table.column_names:
            col = part.table[name]
            rules.append((pc.or_(pc.less(col, 0), pc.greater(col, 65535)), f"{name} out of range", col))
    part.drop_rules(ctx, rules)


def _label(part: Part) -> pa.Array:
    """Stratosphere's `label`; an empty one means unlabelled."""
    label = _col(part, "label")
    return pc.if_else(pc.is_in(label, pa.array(["", part.empty_field])), pa.scalar(None, pa.string()), label)


def _states(action: pa.Array, resp_pkts: pa.Array, resp_bytes: pa.Array) -> pa.Array:
    state = pc.take(_STATE_VALUES, pc.index_in(action, value_set=_STATE_KEYS))
    state = pc.if_else(pc.and_(pc.is_valid(action), pc.is_null(state)), "other", state)
    answered = pc.or_(pc.fill_null(pc.greater(resp_pkts, 0), False), pc.fill_null(pc.greater(resp_bytes, 0), False))
    return pc.if_else(pc.and_(pc.fill_null(pc.equal(action, "OTH"), False), answered), "established", state)


def conn_table(part: Part, ctx: ReadContext) -> pa.Table:
    """Zeek conn rows -> canonical conn columns (missing ones are added by `schema.conform`)."""
    for name, typ in (("duration", pa.float64()), ("orig_bytes", pa.int64()), ("resp_bytes", pa.int64()),
                      ("orig_pkts", pa.int64()), ("resp_pkts", pa.int64())):
        part.coerce(ctx, name, typ)
    _ports(part, ctx, ("id.orig_p", "id.resp_p"))
    _timestamps(part, ctx)
    n = part.rows
    action = _col(part, "conn_state")
    resp_pkts, resp_bytes = _col(part, "resp_pkts", pa.int64()), _col(part, "resp_bytes", pa.int64())
    return pa.table({
        "ts": _col(part, "ts", TS),
        "duration": _col(part, "duration", pa.float64()),
        "src_ip": _col(part, "id.orig_h"),
        "dst_ip": _col(part, "id.resp_h"),
        "src_port": _col(part, "id.orig_p", pa.int64()).cast(pa.int32()),
        "dst_port": _col(part, "id.resp_p", pa.int64()).cast(pa.int32()),
        "proto": _col(part, "proto"),
        "service": _col(part, "service"),
        "bytes_out": _col(part, "orig_bytes", pa.int64()),
        "bytes_in": resp_bytes,
        "pkts_out": _col(part, "orig_pkts", pa.int64()),
        "pkts_in": resp_pkts,
        "state": _states(action, resp_pkts, resp_bytes),
        "action": action,
        "source": pa.repeat("zeek", n),
        "uid": _col(part, "uid"),
        "label": _label(part),
    })


def _set_values(part: Part, ctx: ReadContext, name: str, item: pa.DataType) -> None:
    """Make a Zeek set/vector column list<item>: TSV text split on `#set_separator` (`(empty)` -> [],
    unset -> null); JSON already has lists. Rows with an item that is no `item` are rejected."""
    assert part.table is not None
    typ = pa.list_(item)
    if name not in part.table.column_names:
        return
    col = part.table[name].combine_chunks()
    if not pa.types.is_string(col.type):
        lists = col.cast(typ)
    else:
        lists = pc.split_pattern(col, part.set_separator)
        lists = pc.if_else(pc.fill_null(pc.equal(col, part.empty_field), False), pa.scalar([], lists.type),
                           lists)
        offsets, values = lists.offsets, lists.values
        if part.set_separator:
            values = pc.replace_substring(values, f"\\x{ord(part.set_separator[0]):02x}", part.set_separator)
        if item != pa.string():
            values, bad_item = convert_strings(values, item)
            if bad_item.any():
                rows = np.searchsorted(offsets.to_numpy(), np.flatnonzero(bad_item), side="right") - 1
                bad = np.zeros(len(col), bool)
                bad[rows] = True
                part.drop(ctx, bad, f"bad {name} value", values=col)
                return _set_values(part, ctx, name, item)
        lists = pa.ListArray.from_arrays(offsets, values, mask=pc.is_null(lists))
    part.table = part.table.set_column(part.table.column_names.index(name), name, lists)


def dns_table(part: Part, ctx: ReadContext) -> pa.Table:
    """Zeek dns rows -> canonical dns columns."""
    _set_values(part, ctx, "answers", pa.string())
    _set_values(part, ctx, "TTLs", pa.float64())
    _timestamps(part, ctx)
    query = _col(part, "query")
    query = pc.if_else(pc.fill_null(pc.equal(query, part.empty_field), False), "", query)
    query = pc.replace_substring_regex(pc.utf8_lower(query), r"\.$", "")
    return pa.table({
        "ts": _col(part, "ts", TS),
        "src_ip": _col(part, "id.orig_h"),
        "dst_ip": _col(part, "id.resp_h"),
        "query": query,
        "qtype": pc.coalesce(_col(part, "qtype_name"), _col(part, "qtype", pa.int64()).cast(pa.string())),
        "rcode": pc.coalesce(_col(part, "rcode_name"), _col(part, "rcode", pa.int64()).cast(pa.string())),
        "answers": _col(part, "answers", pa.list_(pa.string())),
        "ttls": _col(part, "TTLs", pa.list_(pa.float64())),
        "source": pa.repeat("zeek", part.rows),
        "uid": _col(part, "uid"),
        "label": _label(part),
    })
