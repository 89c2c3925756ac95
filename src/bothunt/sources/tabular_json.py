"""The JSON readers of record exports, both run in DuckDB: JSON lines and JSON documents.

- JSON lines: each line goes to DuckDB's JSON functions as a string, so a garbage line is rejected
  with its line number and the lines around it are kept. A line may hold one flat record, a streamed
  record (`{"time", "category", "properties": {...}}`), a batch (`{"records": [...]}`, also
  `Results` / `value` as in API responses), or a whole array; array punctuation on its own line
  (`[`, `]`, trailing commas) is ignored.
- JSON documents (a record spread over several lines, or one line longer than the sniff window):
  DuckDB's `read_json_objects` reads the top-level values; line numbers are then unknown, and the
  records of the document are held in memory (exports of a portal or an API, not day-long streams).

Separate from the CSV reader: both turn JSON text into records with one SQL query (`_jsonl_sql`) run in
DuckDB, where the CSV reader works on bytes with numpy and Arrow.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.errors import InputError
from bothunt.sources.base import ReadContext, is_gzip, iter_chunks, read_head, utf8_safe
from bothunt.sources.tabular_mapping import Rows, connect
from bothunt.sources.tabular_sniff import BOM, strip_head

_DOC_BATCH_ROWS = 100_000
_MAX_JSON_OBJECT = 1 << 30

# Names of the wrapper arrays a JSON record may sit in: Event Hub batches, API responses.
_WRAPPERS = ("records", "Results", "value")


def _jsonl_sql(fields: Mapping[str, Sequence[str]], source: str) -> str:
    """SQL turning `source` (_seq, _line, _raw, s0: one JSON text each; s0 without surrounding blanks
    and trailing commas) into one row per record with the wanted fields as strings. A text is parsed
    twice (validate, then `json_transform` into every field at once); only batch wrappers and
    arrays are unnested."""
    names = list(dict.fromkeys(a for aliases in fields.values() for a in aliases))
    inner = ", ".join(f'"{a}": "VARCHAR"' for a in names)
    extra = ", ".join(f'"{w}": "VARCHAR"' for w in ("time", "category", *_WRAPPERS))
    shape = "{" + inner + ', "properties": {' + inner + "}, " + extra + "}"
    picks = []
    for out, aliases in fields.items():
        alts = [f"t['properties']['{a}']" for a in aliases] + [f"t['{a}']" for a in aliases]
        picks.append(f"coalesce({', '.join(f'nullif({a}, {chr(39) * 2})' for a in alts)}) AS \"{out}\"")
    nulls = ", ".join(f'NULL AS "{c}"' for c in fields)
    wrapped = "coalesce(" + " OR ".join(f"starts_with(t['{w}'], '[')" for w in _WRAPPERS) + ", false)"
    unwrap = ", ".join(f"coalesce(json_extract(s, '$.{w}[*]'), [])" for w in _WRAPPERS)
    return f"""
    WITH a AS (
      SELECT *, json_valid(s0) AS ok0 FROM {source} WHERE s0 NOT IN ('', '[', ']')
    ), b AS (  -- a record with array punctuation on its line: `[{{...}},` or `{{...}}]`
      SELECT _seq, _line, _raw,
        CASE WHEN ok0 THEN s0 ELSE rtrim(rtrim(ltrim(s0, '['), ']'), ', ') END AS s,
        CASE WHEN ok0 THEN true ELSE json_valid(rtrim(rtrim(ltrim(s0, '['), ']'), ', ')) END AS ok
      FROM a
    ), o AS MATERIALIZED (  -- one object per line, the common case
      SELECT *, json_transform(s, '{shape}') AS t FROM b WHERE ok AND s[1] = '{{'
    ), e AS (  -- elements of batch wrappers and of arrays
      SELECT _seq, _line, unnest(lst) AS s, unnest(range(len(lst))) AS k FROM (
        SELECT _seq, _line, flatten([{unwrap}]) AS lst FROM o WHERE {wrapped}
        UNION ALL
        SELECT _seq, _line, json_extract(s, '$[*]') AS lst FROM b WHERE ok AND s[1] = '[')
    ), ek AS MATERIALIZED (
      SELECT _seq, k, _line, s::VARCHAR AS _raw, json_type(s) = 'OBJECT' AS obj,
        CASE WHEN json_type(s) = 'OBJECT' THEN json_transform(s, '{shape}') END AS t
      FROM e
    ), good AS (
      SELECT _seq, 0 AS k, _line, _raw, t FROM o WHERE NOT {wrapped}
      UNION ALL
      SELECT _seq, k, _line, _raw, t FROM ek WHERE obj
    )
    SELECT * EXCLUDE (_seq, k) FROM (
      SELECT _seq, k, _line, _raw, NULL::VARCHAR AS _bad, nullif(t['time'], '') AS _time,
        nullif(t['category'], '') AS _category, {", ".join(picks)} FROM good
      UNION ALL
      SELECT _seq, k, _line, _raw, 'JSON value is not an object', NULL, NULL, {nulls} FROM ek WHERE NOT obj
      UNION ALL
      SELECT _seq, 0, _line, _raw, 'JSON value is not an object', NULL, NULL, {nulls}
        FROM b WHERE ok AND s[1] NOT IN ('{{', '[')
      UNION ALL
      SELECT _seq, 0, _line, _raw, 'not valid JSON', NULL, NULL, {nulls} FROM b WHERE NOT ok
    ) ORDER BY _seq, k
    """


def _emit_json(result: pa.Table, ctx: ReadContext) -> Rows | None:
    bad = result["_bad"]
    if bad.null_count < result.num_rows:
        rejected = result.filter(pc.is_valid(bad))
        for line, reason, raw in zip(rejected["_line"].to_pylist(), rejected["_bad"].to_pylist(),
                                     rejected["_raw"].to_pylist(), strict=True):
            ctx.reject(line, reason, raw or "")
        result = result.filter(pc.is_null(bad))
    if result.num_rows == 0:
        return None
    raw = result["_raw"].combine_chunks()
    table = result.drop_columns(["_bad", "_raw"])
    table = table.append_column("_i", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    return Rows(table, lambda i: raw[i].as_py() or "")


def read_jsonl(path: Path, ctx: ReadContext, fields: Mapping[str, Sequence[str]]) -> Iterator[Rows]:
    con = connect()
    sql = _jsonl_sql(fields, "lines")
    for first_line, chunk in iter_chunks(path, ctx):
        if first_line == 1 and chunk.startswith(BOM):
            chunk = b"   " + chunk[3:]
        chunk = utf8_safe(chunk, first_line, ctx)  # as the CSV and Zeek readers: replaced, rows kept, noted
        a = np.frombuffer(chunk, dtype=np.uint8)
        nl = np.flatnonzero(a == 10)
        offsets = np.concatenate([[0], nl + 1]).astype(np.int64)
        raw = _string_array(chunk, offsets)
        line_no = pa.array(first_line + np.arange(len(raw)), pa.int64())
        # Arrow trims fast; DuckDB's trim functions cost tens of microseconds on a long line.
        s0 = pc.utf8_rtrim(pc.ascii_trim_whitespace(raw), ",")
        lines = pa.table({"_seq": line_no, "_line": line_no, "_raw": raw, "s0": s0})
        con.register("lines", lines)
        try:
            result = con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise InputError(f"cannot read JSON lines: {str(exc).splitlines()[0]}", file=str(path),
                             line=first_line) from exc
        finally:
            con.unregister("lines")
        rows = _emit_json(result, ctx)
        if rows is not None:
            yield rows


def read_json_doc(path: Path, ctx: ReadContext, fields: Mapping[str, Sequence[str]]) -> Iterator[Rows]:
    con = connect()
    fmt = "array" if strip_head(read_head(path, 4096)).lstrip()[:1] == b"[" else "unstructured"
    comp = "gzip" if is_gzip(path) else "none"
    src = (f"(SELECT row_number() OVER () AS _seq, NULL::BIGINT AS _line, json::VARCHAR AS _raw, json::VARCHAR AS s0 "
           f"FROM read_json_objects("
           f"'{_sql_str(str(path))}', format='{fmt}', compression='{comp}', "
           f"maximum_object_size={_MAX_JSON_OBJECT}))")
    try:
        reader = con.sql(_jsonl_sql(fields, src)).to_arrow_reader(_DOC_BATCH_ROWS)
        for batch in reader:
            rows = _emit_json(pa.Table.from_batches([batch]), ctx)
            if rows is not None:
                yield rows
    except duckdb.Error as exc:
        raise InputError(f"not readable as JSON: {exc}".splitlines()[0], file=str(path)) from exc
    ctx.progress(path.stat().st_size)


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


def _string_array(buf: bytes, offsets: np.ndarray) -> pa.Array:
    """Zero-copy string array over `buf` (valid UTF-8: see `utf8_safe`) cut at `offsets`."""
    n = len(offsets) - 1
    arr = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n,
                                           [None, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(buf)])
    return arr.cast(pa.large_string()).cast(pa.string())
