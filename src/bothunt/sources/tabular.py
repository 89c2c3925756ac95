"""Record-shaped exports (CSV with a header row, JSON lines, JSON documents) read as tables of strings,
for the sources whose input is a table someone exported: Defender Advanced Hunting, Sentinel tables.

Every value is read as a string; the sources type them afterwards in DuckDB with the `bh_*` macros
below (NULL where a value is unusable), so one bad value rejects one row and never a batch.

- CSV: records are found with numpy before Arrow parses them. RFC 4180 doubles a quote inside a quoted
  field, so a newline ends a record exactly when the quotes before it are even in number. That gives
  every record its exact first line (quoted command lines may span lines) and its raw text, and a
  record with the wrong number of fields is rejected on its own instead of failing the block.
  Header names lose a unit suffix such as Log Analytics' `TimeGenerated [UTC]`. The records of
  several chunks reach the source as one batch, with rejects still reported in reading order.
- JSON lines: each line goes to DuckDB's JSON functions as a string, so a garbage line is rejected
  with its line number and the lines around it are kept. A line may hold one flat record, a streamed
  record (`{"time", "category", "properties": {...}}`), a batch (`{"records": [...]}`, also
  `Results` / `value` as in API responses), or a whole array; array punctuation on its own line
  (`[`, `]`, trailing commas) is ignored.
- JSON documents (a record spread over several lines, or one line longer than the sniff window):
  DuckDB's `read_json_objects` reads the top-level values; line numbers are then unknown, and the
  records of the document are held in memory (exports of a portal or an API, not day-long streams).
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bothunt.errors import InputError
from bothunt.sources.base import ReadContext, is_gzip, iter_chunks, read_head, utf8_safe

BOM = b"\xef\xbb\xbf"
_UNIT_SUFFIX = re.compile(r"\s*\[([^\]]*)\]\s*$")
_JSON_KEY = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]*)"\s*:')
_DOC_BATCH_ROWS = 100_000
TS_TYPE = pa.timestamp("us", "UTC")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d")
_MAX_JSON_OBJECT = 1 << 30

# Names of the wrapper arrays a JSON record may sit in: Event Hub batches, API responses.
_WRAPPERS = ("records", "Results", "value")


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
# Sniffing


def strip_head(head: bytes) -> bytes:
    return head[3:] if head.startswith(BOM) else head


def layout(head: bytes) -> str:
    """'csv', 'jsonl' (one JSON value per line) or 'json' (a document to stream with DuckDB)."""
    text = strip_head(head).lstrip()
    if text[:1] not in (b"{", b"["):
        return "csv"
    lines = text.split(b"\n")
    complete = lines[:-1] if len(lines) > 1 else []  # the last piece may be cut by the sniff window
    for line in complete:
        body = _json_line_body(line)
        if body is None:
            continue
        try:
            json.loads(body)
        except ValueError:
            return "json"
        return "jsonl"
    return "json"


def _json_line_body(line: bytes) -> bytes | None:
    """The JSON value on one line without array punctuation; None for punctuation-only lines.
    Mirrors the SQL in `_jsonl_sql` so sniffing and reading agree."""
    s = line.strip().rstrip(b",").strip()
    if s in (b"", b"[", b"]"):
        return None
    if s.startswith(b"[") and not _valid_json(s):
        s = s[1:].strip()
    if s.endswith(b"]") and not _valid_json(s):
        s = s[:-1].rstrip().rstrip(b",")
    return s


def _valid_json(s: bytes) -> bool:
    try:
        json.loads(s)
    except ValueError:
        return False
    return True


def head_columns(head: bytes) -> set[str]:
    """Column names a file's head shows: the CSV header, or every key seen in the JSON head."""
    text = strip_head(head)
    if layout(head) != "csv":
        return {k.decode() for k in _JSON_KEY.findall(text)}
    first = text.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    return {_clean_name(n)[0] for n in _parse_header(first)}


def _parse_header(line: str) -> list[str]:
    delim = _delimiter(line)
    return next(csv.reader(io.StringIO(line.rstrip("\r\n")), delimiter=delim), [])


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _clean_name(name: str) -> tuple[str, str | None]:
    """Column name without quotes, BOM and unit suffix; the suffix is returned too ('UTC')."""
    name = name.strip().strip('"').lstrip("\ufeff").strip()
    m = _UNIT_SUFFIX.search(name)
    if m:
        return name[: m.start()], m.group(1).strip()
    return name, None


# ---------------------------------------------------------------------------------------------------
# Reading


def read_rows(path: Path, ctx: ReadContext, fields: Mapping[str, Sequence[str]],
              required: Sequence[str] = ()) -> Iterator[Rows]:
    """Yield batches of the wanted fields. `fields` maps each output name to the input names it may
    have, first match wins (e.g. {"Timestamp": ("Timestamp", "TimeGenerated")}). A CSV header that
    lacks a `required` field raises InputError; JSON records are self-describing and are checked
    row by row by the caller's SQL."""
    kind = layout(read_head(path))
    if kind == "csv":
        yield from _read_csv(path, ctx, fields, required)
    elif kind == "jsonl":
        yield from _read_jsonl(path, ctx, fields)
    else:
        yield from _read_json_doc(path, ctx, fields)


def _string_array(buf: bytes, offsets: np.ndarray) -> pa.Array:
    """Zero-copy string array over `buf` cut at `offsets`; invalid UTF-8 is replaced, not fatal."""
    n = len(offsets) - 1
    arr = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n,
                                           [None, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(buf)])
    try:
        return arr.cast(pa.large_string()).cast(pa.string())
    except pa.ArrowInvalid:
        fixed = [v.decode("utf-8", errors="replace") for v in arr.to_pylist()]
        return pa.array(fixed, pa.string())


# -- CSV --------------------------------------------------------------------------------------------


@dataclass
class _CsvHeader:
    names: list[str]  # cleaned, made unique, in file order
    delimiter: str
    pick: dict[str, str]  # output field -> header column


# Records mapped at once. A source's mapping SQL costs some 25 ms a call whatever the batch (planning,
# regex set-up), as much as 10,000 records do, so the records of several chunks are mapped together.
# Not more: ingest holds several batches at once (prefetch queue, writers), so peak memory grows with them.
_BATCH_ROWS = 50_000
# An open quoted record longer than this is a stray quote, not a field (Windows caps a command line at
# 32,767 characters; Defender's AdditionalFields are a few KiB).
MAX_OPEN_RECORD = 1 << 20


def _read_csv(path: Path, ctx: ReadContext, fields: Mapping[str, Sequence[str]],
              required: Sequence[str]) -> Iterator[Rows]:
    held = _HeldRejects(ctx)
    batch: list[Rows] = []
    try:
        for rows in _csv_rows(path, ctx, held, fields, required):
            if held.rejects:  # found after the batch's records: reported after those records' own rejects
                if batch:
                    yield _merge(batch)
                    batch = []
                held.release()
            batch.append(rows)
            if sum(part.table.num_rows for part in batch) >= _BATCH_ROWS:
                yield _merge(batch)
                batch = []
        if batch:
            yield _merge(batch)
    except Exception:  # a file that fails part way still reports the rejects found before
        held.release()
        raise
    held.release()


class _HeldRejects(ReadContext):
    """The file's context while records are split: rejects wait, in order, until the records split
    before them have been yielded, so they are reported where chunk-by-chunk mapping reported them.
    Notes pass straight through."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx.file)
        self.ctx = ctx
        self.rejects: list[tuple[int | None, str, str | bytes]] = []

    def reject(self, line: int | None, reason: str, raw: str | bytes = "") -> None:
        self.rejects.append((line, reason, raw))

    def note(self, text: str) -> None:
        self.ctx.note(text)

    def release(self) -> None:
        for line, reason, raw in self.rejects:
            self.ctx.reject(line, reason, raw)
        self.rejects.clear()


def _merge(parts: list[Rows]) -> Rows:
    """One batch of the records of `parts` (as `_parse_csv` yields them), numbered anew."""
    if len(parts) == 1:
        return parts[0]
    table = pa.concat_tables([part.table for part in parts])
    table = table.set_column(table.schema.get_field_index("_i"), "_i",
                             pa.array(np.arange(table.num_rows, dtype=np.int64)))
    first = np.cumsum([0] + [part.table.num_rows for part in parts])

    def raw(i: int) -> str | bytes:
        k = int(np.searchsorted(first, i, side="right")) - 1
        return parts[k].raw(i - int(first[k]))

    return Rows(table, raw)


def _csv_rows(path: Path, ctx: ReadContext, held: _HeldRejects, fields: Mapping[str, Sequence[str]],
              required: Sequence[str]) -> Iterator[Rows]:
    header: _CsvHeader | None = None
    pending, pending_line = b"", 1
    for first_line, chunk in iter_chunks(path, ctx):
        # pyarrow fails a whole chunk on one byte that is not UTF-8: replace such bytes, keep the rows.
        data = pending + utf8_safe(chunk, first_line, ctx)
        line0 = pending_line if pending else first_line
        if header is None:
            data = data[3:] if data.startswith(BOM) else data
            recs = _records(data, line0, b",")
            if recs.cut == 0:  # the header itself is not complete yet
                pending, pending_line = data, line0
                continue
            header = _header(path, ctx, data[recs.starts[0]: recs.ends[0]], fields, required)
            data, line0 = data[recs.cut_first:], line0 + recs.lines_in_first
        recs = _records(data, line0, header.delimiter.encode())
        pending, pending_line = data[recs.cut:], recs.next_line
        yield from _parse_csv(data[: recs.cut], recs, header, held, fields)
        if len(pending) > MAX_OPEN_RECORD:
            # A quote that opens and never closes would make the rest of the file one record, held in
            # memory and scanned again on every chunk. No telemetry field spans this much: read the
            # stretch line by line (as at the end of the file), so the stray quote costs one reject.
            cut = pending.rfind(b"\n") + 1
            if cut:
                lines = _records(pending[:cut], pending_line, header.delimiter.encode(), True)
                yield from _parse_csv(pending[:cut], lines, header, held, fields)
                pending, pending_line = pending[cut:], lines.next_line
    if header is None and not pending.strip():
        raise InputError("empty CSV file (no header row)", file=str(path))
    if header is not None and pending.strip():  # an open quote ran to the end: retry line by line
        tail = pending + b"\n"
        yield from _parse_csv(tail, _records(tail, pending_line, header.delimiter.encode(), True), header, held,
                              fields)


@dataclass
class _Records:
    starts: np.ndarray  # start offset of each non-empty record
    ends: np.ndarray  # end offset (exclusive, without newline / CR)
    lines: np.ndarray  # first line of each record
    nfields: np.ndarray
    cut: int  # bytes [0, cut) hold complete records
    next_line: int  # line number at offset `cut`
    cut_first: int = 0  # end of the first record's newline (for the header)
    lines_in_first: int = 0
    per_line: bool = False

    @property
    def count(self) -> int:
        return len(self.starts)


def _records(buf: bytes, line0: int, delim: bytes, per_line: bool = False) -> _Records:
    """Records of `buf` (complete ones up to `cut`) with their first line and field count. With
    `per_line`, every line is a record: the retry for a quote that is not RFC 4180 quoting.

    A delimiter or newline is inside quotes when an odd number of quotes precede it in its record.
    Exports quote every field, so quotes outnumber delimiters; the parity of every byte is therefore
    computed on bit masks, 64 bytes to a word, and only newlines are looked at one by one."""
    a = np.frombuffer(buf, dtype=np.uint8)
    nl, (quotes, delims) = _scan(a, (34, delim[0]))
    inside = _prefix_parity(quotes)
    # Indices into `nl` of the newlines that end records.
    at = np.arange(len(nl)) if per_line else np.flatnonzero(_bit_at(inside, nl) == 0)
    if len(at) == 0:  # no record is complete yet (a quoted field runs past the end of `buf`)
        none = np.zeros(0, np.int64)
        return _Records(none, none, none, none, 0, line0, per_line=per_line)
    ends_nl = nl[at]
    cut = int(ends_nl[-1]) + 1
    starts = np.concatenate([[0], ends_nl[:-1] + 1])
    lines = line0 + np.concatenate([[0], at[:-1] + 1])
    cr = (ends_nl > starts) & (a[np.maximum(ends_nl - 1, 0)] == 13)
    ends = ends_nl - cr
    outside = _prefix_count(delims & ~inside)
    nfields = 1 + outside(ends) - outside(starts)
    # The per-line retry restarts the count at every line: where a line starts after an odd number
    # of quotes, its delimiters outside quotes are those the whole-buffer parity puts inside.
    odd = (_bit_at(inside, np.maximum(starts - 1, 0)) == 1) & (starts > 0)
    if odd.any():
        flipped = _prefix_count(delims & inside)
        nfields[odd] = 1 + flipped(ends[odd]) - flipped(starts[odd])
    keep = ends > starts
    return _Records(starts[keep], ends[keep], lines[keep], nfields[keep], cut, line0 + int(at[-1]) + 1,
                    int(ends_nl[0]) + 1, int(at[0]) + 1, per_line)


# Bit masks: bit i of word k stands for byte 64k + i; a spare zero word lets a lookup at the end of
# the buffer (a record ending there) stay in bounds.
_WORD = np.dtype("<u8")
# Bytes compared at a time (a multiple of 8): masks of a whole chunk at once would be 16 MiB
# temporaries, whose fresh pages cost the kernel as much time as the comparisons cost numpy.
_BLOCK = 1 << 18


def _scan(a: np.ndarray, values: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Positions of the newlines in `a`, and one bit mask per value: where `a` holds it."""
    masks = [np.zeros(len(a) // 64 + 2, _WORD) for _ in values]
    hit = np.empty(min(len(a), _BLOCK), dtype=bool)
    newlines = []
    for lo in range(0, len(a), _BLOCK):
        block = a[lo: lo + _BLOCK]
        found = hit[: len(block)]
        np.equal(block, 10, out=found)
        newlines.append(np.flatnonzero(found) + lo)
        for mask, value in zip(masks, values, strict=True):
            np.equal(block, value, out=found)
            bits = np.packbits(found, bitorder="little")
            mask.view(np.uint8)[lo // 8: lo // 8 + len(bits)] = bits
    return (np.concatenate(newlines) if newlines else np.zeros(0, np.int64)), masks


def _prefix_parity(words: np.ndarray) -> np.ndarray:
    """Bit i set when an odd number of bits are set in positions 0..i (inclusive)."""
    x = words.copy()
    shifted = np.empty_like(x)
    for shift in (1, 2, 4, 8, 16, 32):
        np.left_shift(x, np.uint64(shift), out=shifted)
        x ^= shifted
    odd_word = x >> np.uint64(63)
    carry = np.bitwise_xor.accumulate(odd_word) ^ odd_word  # parity of all earlier words
    x ^= np.uint64(0) - carry  # all ones after an odd count: flip every bit
    return x


def _bit_at(words: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return ((words[pos >> 6] >> (pos & 63).astype(_WORD)) & np.uint64(1)).astype(np.int64)


def _prefix_count(words: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function giving, for each position p, how many bits are set before p."""
    before = np.concatenate([[0], np.cumsum(np.bitwise_count(words), dtype=np.int64)])

    def count(pos: np.ndarray) -> np.ndarray:
        below = (np.uint64(1) << (pos & 63).astype(_WORD)) - np.uint64(1)
        return before[pos >> 6] + np.bitwise_count(words[pos >> 6] & below).astype(np.int64)

    return count


def _header(path: Path, ctx: ReadContext, raw: bytes, fields: Mapping[str, Sequence[str]],
            required: Sequence[str]) -> _CsvHeader:
    line = raw.decode("utf-8", errors="replace")
    delim = _delimiter(line)
    names: list[str] = []
    seen: Counter[str] = Counter()
    for col in next(csv.reader(io.StringIO(line), delimiter=delim), []):
        name, unit = _clean_name(col)
        if unit and unit.upper() != "UTC":
            ctx.note(f"column {col!r}: times in [{unit}] are read as UTC unless they carry an offset")
        seen[name] += 1
        names.append(name if seen[name] == 1 else f"{name}.{seen[name]}")
    lower = {n.lower(): n for n in reversed(names)}
    pick = {}
    for out, aliases in fields.items():
        for alias in aliases:
            if alias.lower() in lower:
                pick[out] = lower[alias.lower()]
                break
    missing = [f for f in required if f not in pick]
    if missing:
        wanted = ", ".join(" or ".join(fields[f]) for f in missing)
        raise InputError(f"CSV header lacks required column(s): {wanted} (found: {', '.join(names)})",
                         file=str(path), line=1)
    return _CsvHeader(names, delim, pick)


def _parse_csv(buf: bytes, recs: _Records, header: _CsvHeader, ctx: ReadContext,
               fields: Mapping[str, Sequence[str]]) -> Iterator[Rows]:
    ncols = len(header.names)
    good = recs.nfields == ncols
    for i in np.flatnonzero(~good):
        text = buf[recs.starts[i]: recs.ends[i]]
        if b"\n" in text and not recs.per_line:  # a stray quote joined lines: retry them one by one
            part = text + b"\n"
            yield from _parse_csv(part, _records(part, int(recs.lines[i]), header.delimiter.encode(), True),
                                  header, ctx, fields)
        else:
            ctx.reject(int(recs.lines[i]), f"expected {ncols} fields, found {int(recs.nfields[i])}", text)
    if not good.any():
        return
    if not good.all():
        buf = _keep_spans(buf, recs.starts[good], recs.ends[good])
        starts, ends, lines = recs.starts[good], recs.ends[good], recs.lines[good]
        # Offsets into the compacted buffer: each kept record is followed by one newline.
        lengths = ends - starts
        new_starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
        starts, ends = new_starts, new_starts + lengths
    else:
        starts, ends, lines = recs.starts, recs.ends, recs.lines
    table = pacsv.read_csv(
        pa.py_buffer(buf),
        # One thread: Arrow's threads save little wall time on a chunk and cost half again in CPU,
        # and ingest already keeps both cores busy (parsing overlaps Parquet writing).
        read_options=pacsv.ReadOptions(column_names=header.names, use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=header.delimiter, newlines_in_values=True,
                                          ignore_empty_lines=True, invalid_row_handler=_bad_row(ctx, ncols)),
        convert_options=pacsv.ConvertOptions(
            include_columns=sorted(set(header.pick.values())),
            column_types={c: pa.string() for c in header.pick.values()},
            strings_can_be_null=True,
        ),
    )
    line_col = pa.array(lines, pa.int64())
    if table.num_rows != len(starts):  # a stray quote made Arrow and the record scan disagree
        ctx.note(f"{len(starts)} CSV records near line {int(lines[0])}: line numbers unknown")
        line_col = pa.nulls(table.num_rows, pa.int64())
        starts = ends = np.zeros(table.num_rows, np.int64)
    n = table.num_rows
    cols = {out: (table[header.pick[out]] if out in header.pick else pa.nulls(n, pa.string()))
            for out in fields}
    cols["_line"] = line_col
    cols["_time"] = cols["_category"] = pa.nulls(n, pa.string())
    cols["_i"] = pa.array(np.arange(n, dtype=np.int64))
    yield Rows(pa.table(cols), lambda i: buf[starts[i]: ends[i]])


def _bad_row(ctx: ReadContext, ncols: int) -> Callable[[pacsv.InvalidRow], str]:
    """Arrow's handler for a row it cannot split as the record scan did (a stray quote)."""
    def handle(row: pacsv.InvalidRow) -> str:
        ctx.reject(None, f"expected {ncols} fields, found {row.actual_columns}", row.text or "")
        return "skip"
    return handle


def _keep_spans(buf: bytes, starts: np.ndarray, ends: np.ndarray) -> bytes:
    """`buf` reduced to the given spans, each followed by a newline."""
    a = np.frombuffer(buf, dtype=np.uint8)
    delta = np.zeros(len(a) + 1, np.int32)
    np.add.at(delta, starts, 1)
    np.add.at(delta, ends, -1)
    keep = np.cumsum(delta[:-1]) > 0
    # A newline after each span: mark the byte at `ends` (the CR or LF that follows) and write LF.
    out = a.copy()
    out[ends] = 10
    keep[ends] = True
    return out[keep].tobytes()


# -- JSON -------------------------------------------------------------------------------------------


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


def _read_jsonl(path: Path, ctx: ReadContext, fields: Mapping[str, Sequence[str]]) -> Iterator[Rows]:
    con = connect()
    sql = _jsonl_sql(fields, "lines")
    for first_line, chunk in iter_chunks(path, ctx):
        if first_line == 1 and chunk.startswith(BOM):
            chunk = b"   " + chunk[3:]
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


def _read_json_doc(path: Path, ctx: ReadContext, fields: Mapping[str, Sequence[str]]) -> Iterator[Rows]:
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


def distinct_sql(con: duckdb.DuckDBPyConnection, columns: Sequence[pa.ChunkedArray | pa.Array], expr: str,
                 zones: pa.ChunkedArray | None = None) -> list[pa.Array]:
    """Evaluate the SQL expression `expr` of `x` (and `z`, the matching value of `zones`) once per
    distinct value across `columns`, and return one result array per column."""
    return _distinct(con, columns, f"SELECT {expr} AS v FROM bh_distinct ORDER BY k", zones)


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
