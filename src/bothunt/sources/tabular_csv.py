"""The CSV reader of record exports: a header row, then records read a chunk at a time as strings.

Records are found by the scan in `tabular_csv_scan` before Arrow parses them, so each keeps its first
line and raw text, and a record with the wrong number of fields is rejected on its own. A stray quote
(not RFC 4180 quoting) is retried line by line, and so is an open quote that runs past
`MAX_OPEN_RECORD`, which keeps the buffers bounded. Header names lose a unit suffix such as Log
Analytics' `TimeGenerated [UTC]`. The records of several chunks reach the source as one batch, with
rejects still reported in reading order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from bothunt.errors import InputError
from bothunt.sources.base import ReadContext, iter_chunks, utf8_safe
from bothunt.sources.tabular_csv_scan import Records, find_records
from bothunt.sources.tabular_mapping import Rows
from bothunt.sources.tabular_sniff import clean_name, header_delimiter, header_fields, strip_head


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


def read_csv(path: Path, ctx: ReadContext, fields: Mapping[str, Sequence[str]],
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
            data = strip_head(data)
            recs = find_records(data, line0, b",")
            if recs.cut == 0:  # the header itself is not complete yet
                pending, pending_line = data, line0
                continue
            header = _header(path, ctx, data[recs.starts[0]: recs.ends[0]], fields, required)
            data, line0 = data[recs.cut_first:], line0 + recs.lines_in_first
        recs = find_records(data, line0, header.delimiter.encode())
        pending, pending_line = data[recs.cut:], recs.next_line
        yield from _parse_csv(data[: recs.cut], recs, header, held, fields)
        if len(pending) > MAX_OPEN_RECORD:
            # A quote that opens and never closes would make the rest of the file one record, held in
            # memory and scanned again on every chunk. No telemetry field spans this much: read the
            # stretch line by line (as at the end of the file), so the stray quote costs one reject.
            cut = pending.rfind(b"\n") + 1
            if cut:
                lines = find_records(pending[:cut], pending_line, header.delimiter.encode(), True)
                yield from _parse_csv(pending[:cut], lines, header, held, fields)
                pending, pending_line = pending[cut:], lines.next_line
    if header is None and not pending.strip():
        raise InputError("empty CSV file (no header row)", file=str(path))
    if header is not None and pending.strip():  # an open quote ran to the end: retry line by line
        tail = pending + b"\n"
        yield from _parse_csv(tail, find_records(tail, pending_line, header.delimiter.encode(), True), header, held,
                              fields)




def _header(path: Path, ctx: ReadContext, raw: bytes, fields: Mapping[str, Sequence[str]],
            required: Sequence[str]) -> _CsvHeader:
    line = raw.decode("utf-8", errors="replace")
    delim = header_delimiter(line)
    names: list[str] = []
    seen: Counter[str] = Counter()
    for col in header_fields(line, delim):
        name, unit = clean_name(col)
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


def _parse_csv(buf: bytes, recs: Records, header: _CsvHeader, ctx: ReadContext,
               fields: Mapping[str, Sequence[str]]) -> Iterator[Rows]:
    ncols = len(header.names)
    good = recs.nfields == ncols
    for i in np.flatnonzero(~good):
        text = buf[recs.starts[i]: recs.ends[i]]
        if b"\n" in text and not recs.per_line:  # a stray quote joined lines: retry them one by one
            part = text + b"\n"
            yield from _parse_csv(part, find_records(part, int(recs.lines[i]), header.delimiter.encode(), True),
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
