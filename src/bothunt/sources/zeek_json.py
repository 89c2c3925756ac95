"""Zeek JSON logs: one JSON object per line (`LogAscii::use_json=T`, or logs shipped as JSON lines).

Field names come in three spellings, all accepted: Zeek's own `id.orig_h`, the underscore form
`id_orig_h` some shippers write, and a nested `"id": {"orig_h": ...}` object. `ts` is epoch seconds
or an ISO 8601 string (`LogAscii::json_timestamps`); the form is read from the first record of each
chunk and the column converted later.

Chunks are parsed in bulk by pyarrow.json with an explicit schema of the wanted columns. A chunk
that fails (a line that is not JSON, a value of the wrong type) is halved until the failing lines are
isolated: those are rejected with pyarrow's message, every other line is kept, and the cost is a few
extra parses per bad line rather than a Python loop over the chunk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from bothunt.sources import zeek_tsv
from bothunt.sources.base import ReadContext, blank_lines, iter_chunks, utf8_safe
from bothunt.sources.zeek_parts import Lines, Part, arrow_type, kind_from_fields

_TS_IS_TEXT = re.compile(rb'"ts"\s*:\s*"')
BLOCK_BYTES = 4 << 20
LIST_TYPES = {"answers": pa.list_(pa.string()), "TTLs": pa.list_(pa.float64())}
_ID = ("orig_h", "orig_p", "resp_h", "resp_p")


def first_record(head: bytes) -> dict | None:
    """The first line of `head` that is a JSON object, if any of the first few is."""
    for line in head.splitlines()[:20]:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        return obj if isinstance(obj, dict) else None
    return None


def kind_of_record(record: dict | None, default_kind: str | None) -> str | None:
    if not record:
        return default_kind
    path = record.get("_path")
    if isinstance(path, str) and path:
        return path
    ident = record.get("id")
    keys = list(record) + ([f"id.{k}" for k in ident] if isinstance(ident, dict) else [])
    return kind_from_fields(keys) or default_kind


def iter_json(path: Path, ctx: ReadContext, wanted: Mapping[str, Sequence[str]],
              default_kind: str | None) -> Iterator[Part]:
    kind: str | None = None
    decided = False
    for first_line, raw in iter_chunks(path, ctx, zeek_tsv.CHUNK_BYTES):
        chunk = utf8_safe(raw, first_line, ctx)
        if not decided:
            record = first_record(chunk[:1 << 20])
            kind, decided = kind_of_record(record, default_kind), record is not None
        columns = wanted.get(kind or "")
        lines = Lines(chunk, first_line, blank=blank_lines)
        if columns is None:
            yield Part(kind, None, len(lines.nonblank()))
            continue
        table = _parse(lines, _schema(columns, chunk), ctx)
        yield Part(kind, _zeek_names(table, columns), table.num_rows, lines)


def _schema(columns: Sequence[str], chunk: bytes) -> pa.Schema:
    first = next((line for line in chunk[: 1 << 16].split(b"\n") if line.strip()), b"")
    fields = []
    for c in columns:
        text_ts = c == "ts" and _TS_IS_TEXT.search(first)
        typ = pa.string() if text_ts else LIST_TYPES.get(c) or arrow_type(c)
        fields.append(pa.field(c, typ))
        if c.startswith("id."):
            fields.append(pa.field("id_" + c[3:], typ))
    fields.append(pa.field("id", pa.struct([(k, arrow_type("id." + k)) for k in _ID])))
    return pa.schema(fields)


def _read(data: bytes, schema: pa.Schema, block: int = BLOCK_BYTES) -> pa.Table:
    return pajson.read_json(
        pa.BufferReader(data),
        read_options=pajson.ReadOptions(block_size=block),
        parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )


def _parse(lines: Lines, schema: pa.Schema, ctx: ReadContext) -> pa.Table:
    try:
        table = _read(lines.data, schema)
    except pa.ArrowInvalid:
        pass
    else:
        return table
    rows = lines.nonblank()
    starts, ends = lines.starts, lines.ends
    tables: list[pa.Table] = []
    kept: list[np.ndarray] = []
    pending = [(0, len(rows))]
    while pending:
        lo, hi = pending.pop()
        if lo >= hi:
            continue
        piece = lines.data[int(starts[rows[lo]]) : int(ends[rows[hi - 1]]) + 1]
        try:
            tables.append(_read(piece, schema, len(piece) + 1 if hi - lo == 1 else BLOCK_BYTES))
            kept.append(rows[lo:hi])
        except pa.ArrowInvalid as exc:
            if hi - lo == 1:
                msg = str(exc).removeprefix("JSON parse error: ").split(" in row ")[0]
                ctx.reject(lines.first_line + int(rows[lo]), f"not a Zeek JSON record ({msg})",
                           lines.text(int(rows[lo])))
            else:
                mid = (lo + hi) // 2
                pending += [(mid, hi), (lo, mid)]  # popped low half first: rows stay in order
    lines.rows = np.concatenate(kept) if kept else np.empty(0, np.int64)
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _zeek_names(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """One column per wanted field under Zeek's dotted name, whichever spelling the log used."""
    out = {}
    ident = table["id"]
    for c in columns:
        col = table[c]
        if c.startswith("id."):
            nested = pc.struct_field(ident, c[3:])
            col = pc.coalesce(col, table["id_" + c[3:]], nested)
        out[c] = col
    return pa.table(out)
