"""The DuckDB side of the record sources: a batch of records as strings (`Rows`) becomes canonical rows
through a source's mapping SQL (`apply_mapping`), helped by the `bh_*` macros that type strings (NULL
where a value is unusable, so one bad value rejects one row and never a batch), by time parsing and by
address and URL-host normalisation computed once per distinct value.

Separate from the readers: CEF builds its own `Rows` from its line splitter and maps them here, with
none of the CSV or JSON readers.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.errors import InputError
from bothunt.sources.base import ReadContext

TS_TYPE = pa.timestamp("us", "UTC")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d")


@dataclass
class Rows:
    """A batch of input records: `table` has one string column per wanted field (null when absent),
    `_line` (first line of the record, null when unknown), `_time` / `_category` (a streamed
    record's envelope) and `_i` (row index); `raw(i)` is row i's input text, for rejects."""

    table: pa.Table
    raw: Callable[[int], str | bytes]


@dataclass
class Tally:
    """Skip counts per reason over a whole file, reported once at its end."""

    counts: Counter[str] = field(default_factory=Counter)

    def flush(self, ctx: ReadContext) -> None:
        for why, n in sorted(self.counts.items()):
            ctx.skip(n, why)
        self.counts.clear()


# ---------------------------------------------------------------------------------------------------
# SQL shared by the record sources: DuckDB macros that type strings, NULL where a value is unusable.

_MACROS = r"""
CREATE MACRO bh_str(x) AS nullif(x, '');
CREATE MACRO bh_ip(x) AS CASE WHEN starts_with(x, '::')
  THEN lower(regexp_replace(x, '^::ffff:(\d{1,3}(\.\d{1,3}){3})$', '\1', 'i')) ELSE lower(x) END;
CREATE MACRO bh_ip_ok(x) AS regexp_full_match(x, '((25[0-5]|2[0-4]\d|[01]?\d?\d)\.){3}(25[0-5]|2[0-4]\d|[01]?\d?\d)')
  OR regexp_full_match(x, '[0-9a-f]*:[0-9a-f:.]*(%[0-9a-z_.\-]+)?');
CREATE MACRO bh_port(x) AS CASE
  WHEN regexp_full_match(x, '\d{1,5}') THEN CASE WHEN x::INTEGER <= 65535 THEN x::INTEGER END
  WHEN regexp_full_match(x, '\d{1,5}\.0+') AND split_part(x, '.', 1)::INTEGER <= 65535
    THEN split_part(x, '.', 1)::INTEGER END;
CREATE MACRO bh_count(x) AS CASE WHEN regexp_full_match(x, '\d{1,18}') THEN x::BIGINT
  WHEN regexp_full_match(x, '\d{1,18}\.0+') THEN split_part(x, '.', 1)::BIGINT END;
-- A JSON object's values at `paths` as strings (nested values as JSON text), and a JSON array read
-- into `shape`; NULL when the text is not valid JSON of that kind. One parse each: json_valid and
-- json_type would each parse the text again.
CREATE MACRO bh_json_object(x, paths) AS CASE WHEN starts_with(ltrim(x, ' ' || chr(9) || chr(10) || chr(13)), '{')
  THEN try(json_extract_string(x, paths)) END;
CREATE MACRO bh_json_array(x, shape) AS CASE WHEN starts_with(ltrim(x, ' ' || chr(9) || chr(10) || chr(13)), '[')
  THEN try(json_transform(x, shape)) END;
CREATE MACRO bh_proto(p) AS CASE
  WHEN p IS NULL OR lower(p) IN ('unknown', '-', 'n/a') THEN NULL
  WHEN lower(p) LIKE 'tcp%' OR p = '6' THEN 'tcp'
  WHEN lower(p) LIKE 'udp%' OR p = '17' THEN 'udp'
  WHEN lower(p) LIKE 'icmp%' OR lower(p) = 'ipv6-icmp' OR p IN ('1', '58') THEN 'icmp'
  ELSE lower(p) END;
CREATE MACRO bh_host0(u) AS regexp_replace(regexp_replace(regexp_replace(trim(u),
  '^[A-Za-z][A-Za-z0-9+.\-]*://', ''), '[/?#\\].*$', ''), '^[^@]*@', '');
CREATE MACRO bh_host1(h) AS CASE WHEN length(h) - length(replace(h, ':', '')) = 1
  THEN regexp_replace(h, ':\d*$', '') ELSE regexp_replace(h, '^\[(.*)\](:\d*)?$', '\1') END;
CREATE MACRO bh_host2(h) AS nullif(rtrim(lower(h), '.'), '');
CREATE MACRO bh_zone(x) AS nullif(regexp_extract(x, '\s((?:[A-Za-z][A-Za-z0-9_/+\-]*)|(?:[+-]\d{2}:?\d{2}))$', 1), '');
CREATE MACRO bh_frac6(x) AS regexp_replace(x, '(\.\d{6})\d+', '\1');
CREATE MACRO bh_us_time(x) AS try_strptime(bh_frac6(x), ['%m/%d/%Y, %I:%M:%S.%f %p', '%m/%d/%Y, %I:%M:%S %p',
  '%m/%d/%Y %I:%M:%S.%f %p', '%m/%d/%Y %I:%M:%S %p', '%m/%d/%Y, %H:%M:%S.%f', '%m/%d/%Y, %H:%M:%S',
  '%m/%d/%Y %H:%M:%S.%f', '%m/%d/%Y %H:%M:%S']);
CREATE TABLE bh_zone_names AS SELECT name FROM pg_timezone_names();
"""


# Queries over `bh_distinct` (x, z, k) that return `v` in order of k. A macro is expanded wherever it
# is named, so nested macros repeated their arguments' work (and planning) many times over; here each
# step is a column of its own, computed once.

# An address as `bh_ip` writes it, and whether `bh_ip_ok` takes it: addresses repeat, and those
# regexes were the costliest per-record expressions of the mapping SQL.
_ADDRESS_SQL = r"""
WITH a AS (SELECT k, bh_ip(bh_str(x)) AS ip FROM bh_distinct)
SELECT {'ip': ip, 'ok': bh_ip_ok(ip)} AS v FROM a ORDER BY k
"""

# The host of a URL-ish value: lower-case, without scheme, user, path, port or trailing dot; NULL when
# empty or an IP literal.
_URL_HOST_SQL = r"""
WITH a AS (SELECT k, bh_host0(bh_str(x)) AS h0 FROM bh_distinct),
b AS (SELECT k, bh_host1(h0) AS h1 FROM a)
SELECT CASE WHEN bh_ip_ok(lower(h1)) THEN NULL ELSE bh_host2(h1) END AS v FROM b ORDER BY k
"""

# A time as UTC: epoch milliseconds or seconds, ISO 8601 (naive is UTC), US `5/1/2024, 12:34:56.123 PM`,
# or syslog / CEF `MMM dd [yyyy] HH:mm:ss[.fff] [zone]`. US and syslog times are local to the zone the
# text names, else to `z`, else UTC; a year-less time lands in the year of {ref}, a year earlier when
# that would put it more than a day after {ref}.
_TS_SQL = r"""
WITH a AS (
  SELECT k, bh_str(x) AS x, bh_str(z) AS dtz FROM bh_distinct
), b AS (
  SELECT *, CASE
    WHEN x IS NULL THEN NULL
    WHEN regexp_full_match(x, '\d{12,14}') THEN 'ms'
    WHEN regexp_full_match(x, '\d{9,11}(\.\d+)?') THEN 's'
    WHEN regexp_matches(x, '^\d{4}-\d{2}-\d{2}') THEN 'iso'
    WHEN regexp_matches(x, '^\d{1,2}/\d{1,2}/\d{4}') THEN 'us'
    WHEN regexp_matches(x, '^[A-Za-z]{3}\s') THEN 'mon' END AS kind
  FROM a
), c AS (
  SELECT *, CASE WHEN kind = 'mon' THEN bh_zone(x) END AS xz FROM b
), d AS (
  SELECT *, CASE WHEN xz IS NULL THEN x ELSE rtrim(x[:-(length(xz) + 1)]) END AS body,
    CASE kind WHEN 'us' THEN dtz WHEN 'mon' THEN coalesce(xz, dtz) END AS zone
  FROM c
), e AS (
  SELECT *, CASE WHEN kind = 'mon' THEN CASE
      WHEN regexp_full_match(body, '[A-Za-z]{3}\s+\d{1,2}\s+\d{4}\s+\d{1,2}:\d{2}:\d{2}(\.\d+)?') THEN 'year'
      WHEN regexp_full_match(body, '[A-Za-z]{3}\s+\d{1,2}\s+\d{1,2}:\d{2}:\d{2}(\.\d+)?') THEN 'no year'
    END END AS form
  FROM d
), f AS (
  SELECT *, CASE
    WHEN kind = 'us' THEN bh_us_time(x)
    WHEN form = 'year' THEN try_strptime(bh_frac6(body), ['%b %d %Y %H:%M:%S.%f', '%b %d %Y %H:%M:%S'])
    WHEN form = 'no year' THEN try_strptime(regexp_replace(bh_frac6(body), '^([A-Za-z]{3}\s+\d{1,2})\s+',
      '\1 ' || year({ref})::VARCHAR || ' '), ['%b %d %Y %H:%M:%S.%f', '%b %d %Y %H:%M:%S']) END AS parsed
  FROM e
), g AS (
  SELECT *, CASE WHEN form = 'no year' AND parsed > {ref} + INTERVAL 1 DAY THEN parsed - INTERVAL 1 YEAR
    ELSE parsed END AS naive
  FROM f
)
SELECT CASE kind
  WHEN 'ms' THEN make_timestamp(x::BIGINT * 1000)::TIMESTAMPTZ
  WHEN 's' THEN to_timestamp(x::DOUBLE)
  WHEN 'iso' THEN try_cast(x AS TIMESTAMPTZ)
  ELSE CASE
    WHEN naive IS NULL THEN NULL
    WHEN zone IS NULL OR upper(zone) IN ('UTC', 'GMT', 'Z', 'UT') THEN naive::TIMESTAMPTZ
    WHEN regexp_full_match(zone, '[+-]\d{2}:?\d{2}') THEN (naive - to_minutes(
      (CASE WHEN zone[1] = '-' THEN -1 ELSE 1 END) * (zone[2:3]::INTEGER * 60 + right(zone, 2)::INTEGER)))::TIMESTAMPTZ
    WHEN zone IN (SELECT name FROM bh_zone_names) THEN timezone(zone, naive) END
  END AS v
FROM g ORDER BY k
"""


_DB: list[duckdb.DuckDBPyConnection] = []
_DB_LOCK = threading.Lock()


def connect() -> duckdb.DuckDBPyConnection:
    """A connection to one in-memory DuckDB that holds the bh_* macros, with UTC as the session
    zone (naive times are UTC). Each caller gets its own cursor; the macros are created once."""
    with _DB_LOCK:
        if not _DB:
            db = duckdb.connect()
            db.execute("SET GLOBAL TimeZone = 'UTC'")
            # One thread: a batch of records is too small for a second one to pay for its set-up, and
            # ingest keeps both cores busy anyway (sources feed Parquet writers).
            db.execute("SET threads = 1")
            db.execute(_MACROS)
            _DB.append(db)
        return _DB[0].cursor()


def file_time(path: Path) -> str:
    """The file's modification time as a SQL TIMESTAMP: the reference for year-less dates (a log
    line is older than its file), so a December line read in January lands in the right year."""
    return f"make_timestamp({int(path.stat().st_mtime)}::BIGINT * 1000000)"


def parse_times(con: duckdb.DuckDBPyConnection, table: pa.Table, columns: Sequence[str],
                zone: str | None, ref: str, trimmed: bool = False) -> pa.Table:
    """Append `<column>__ts` (UTC) for each time column. A column that is all ISO 8601 with an offset
    (Defender, Sentinel) is cast by Arrow at once; the others go through `_TS_SQL` once per distinct
    (text, zone) pair: log times repeat, and that parser is a chain of regexes. With `trimmed`, the
    values are known to have no surrounding blanks."""
    slow: list[str] = []
    for col in columns:
        x = table[col] if trimmed else pc.utf8_trim_whitespace(table[col].combine_chunks())
        first = x.drop_null()[:1].to_pylist()
        try:
            if first and not _ISO.match(first[0]):
                raise pa.ArrowInvalid("not ISO 8601")
            ts = x.cast(pa.timestamp("ns", "UTC")).cast(TS_TYPE, safe=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            slow.append(col)
            continue
        table = table.append_column(f"{col}__ts", ts)
    if slow:
        zones = table[zone] if zone is not None else None
        parsed = _distinct(con, [table[c] for c in slow], _TS_SQL.replace("{ref}", ref), zones, trimmed)
        for col, ts in zip(slow, parsed, strict=True):
            table = table.append_column(f"{col}__ts", ts.cast(TS_TYPE))
    return table


def _distinct(con: duckdb.DuckDBPyConnection, columns: Sequence[pa.ChunkedArray | pa.Array], query: str,
              zones: pa.ChunkedArray | None = None, trimmed: bool = False) -> list[pa.Array]:
    """Run `query` over `bh_distinct` (x, z, k): the distinct values across `columns` (with the matching
    value of `zones`), without surrounding blanks (`trimmed`: they have none); its `v`, in order of k,
    is spread back to one result array per column."""
    if zones is not None and zones.null_count == len(zones):
        zones = None  # a key without a zone reads the same as one with an empty zone
    keys = []
    for col in columns:
        x = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        x = x if trimmed else pc.utf8_trim_whitespace(x)
        if zones is not None:
            x = pc.binary_join_element_wise(x, pc.fill_null(zones.combine_chunks(), ""), "\x1f")
        keys.append(x)
    enc = pa.concat_arrays(keys).dictionary_encode()
    if zones is not None:
        parts = pc.split_pattern(enc.dictionary, "\x1f", max_splits=1, reverse=True)
        distinct = pa.table({"x": pc.list_element(parts, 0), "z": pc.list_element(parts, 1)})
    else:
        distinct = pa.table({"x": enc.dictionary, "z": pa.nulls(len(enc.dictionary), pa.string())})
    distinct = distinct.append_column("k", pa.array(np.arange(distinct.num_rows, dtype=np.int64)))
    con.register("bh_distinct", distinct)
    try:
        values = con.sql(query).to_arrow_table()["v"]
    finally:
        con.unregister("bh_distinct")
    out = values.combine_chunks().take(enc.indices)
    n = len(keys[0]) if keys else 0
    return [out.slice(k * n, n) for k in range(len(keys))]


def apply_mapping(con: duckdb.DuckDBPyConnection, rows: Rows, sql: str, ctx: ReadContext, tally: Tally,
                  times: Sequence[str] = (), zone: str | None = None, ref: str = "NULL::TIMESTAMP",
                  hosts: Sequence[str] = (), verbatim: Sequence[str] = (),
                  addresses: Sequence[str] = ()) -> pa.Table:
    """Run a source's mapping SQL over `rows`, registered as `r` with `<time>__ts` columns parsed from
    `times`, `<url>__host` columns (`_URL_HOST_SQL`) from `hosts`, and `<address>__ip` and
    `<address>__ip_ok` columns (`_ADDRESS_SQL`) from `addresses`; the last two are computed once per
    distinct value. Values lose surrounding blanks, except the free-text columns named in `verbatim`.
    The SQL returns `_i`, `_line`, `_skip` and `_reject` besides canonical columns; rejects and skips
    are reported here and the canonical rows returned."""
    table = rows.table
    for k, fld in enumerate(table.schema):
        if fld.type == pa.string() and fld.name not in verbatim:  # Arrow trims fast, DuckDB does not
            table = table.set_column(k, fld.name, pc.utf8_trim_whitespace(table.column(k)))
    table = parse_times(con, table, times, zone, ref, trimmed=not set(times) & set(verbatim)) if times else table
    if hosts:
        derived = _distinct(con, [table[c] for c in hosts], _URL_HOST_SQL, trimmed=not set(hosts) & set(verbatim))
        for col, values in zip(hosts, derived, strict=True):
            table = table.append_column(f"{col}__host", values)
    if addresses:
        derived = _distinct(con, [table[c] for c in addresses], _ADDRESS_SQL,
                            trimmed=not set(addresses) & set(verbatim))
        for col, values in zip(addresses, derived, strict=True):
            table = table.append_column(f"{col}__ip", pc.struct_field(values, "ip"))
            table = table.append_column(f"{col}__ip_ok", pc.struct_field(values, "ok"))
    con.register("r", table)
    try:
        out = con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:  # a value no macro anticipated: name the file, not a traceback
        raise InputError(f"cannot map records: {str(exc).splitlines()[0]}", file=ctx.file) from exc
    finally:
        con.unregister("r")
    skip, reject = out["_skip"], out["_reject"]
    internal = ["_i", "_line", "_skip", "_reject"]
    if skip.null_count == reject.null_count == out.num_rows:  # most batches: every record maps
        return out.drop_columns(internal)
    if skip.null_count < out.num_rows:
        for item in pc.value_counts(skip.drop_null()).to_pylist():
            tally.counts[item["values"]] += item["counts"]
    if reject.null_count < out.num_rows:
        bad = out.select(["_i", "_line", "_reject"]).filter(pc.and_(pc.is_null(skip), pc.is_valid(reject)))
        for i, line, reason in zip(bad["_i"].to_pylist(), bad["_line"].to_pylist(),
                                   bad["_reject"].to_pylist(), strict=True):
            ctx.reject(line, reason, rows.raw(i))
    keep = pc.and_(pc.is_null(skip), pc.is_null(reject))
    return out.drop_columns(internal).filter(keep)
