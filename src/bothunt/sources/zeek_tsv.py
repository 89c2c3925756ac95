"""Zeek TSV logs (the ASCII writer's default format), parsed by their header.

Header lines (`#separator`, `#set_separator`, `#empty_field`, `#unset_field`, `#path`, `#fields`,
`#types`, `#open`, `#close`) may appear anywhere: each run of data lines is parsed under the header in
force before it, so a log whose `#fields` changes mid-file, or several logs concatenated, read
correctly. Runs of data lines are parsed in bulk by pyarrow.csv with the declared separator, quoting
off and `#unset_field` as null; only the columns the caller wants are converted.

Python looks at single lines only when something is wrong with them:

* a line with the wrong number of fields under the declared separator is split on whitespace (some
  Stratosphere `*.labeled` logs join the label columns with runs of spaces, in the data and in the
  `#fields` line itself); if that yields the declared count the line is kept, else rejected;
* a value Arrow cannot convert (a bad `ts`, say) is converted per distinct value, and the lines whose
  value is no number are rejected with the value in the reason;
* bytes that are not UTF-8 are replaced with U+FFFD (the line is kept) and the lines are noted;
* a data line before any `#fields` header is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bothunt.sources import base
from bothunt.sources.base import ReadContext, iter_chunks, utf8_safe
from bothunt.sources.zeek_parts import Lines, Part, arrow_type, kind_from_fields

_HEADER_AT = re.compile(rb"\n[ \t]*#")
_HEADER_FIRST = re.compile(rb"[ \t]*#")
_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")
BLOCK_BYTES = 1 << 20
# Past this many lines with the wrong field count, a block is rewritten whole rather than patched.
MANY_INVALID = 1000
CHUNK_BYTES = base.CHUNK_BYTES  # a module attribute so tests can force many small chunks
# Substitute delimiter when a log declares a multi-byte separator (pyarrow takes one character).
_UNIT_SEP = b"\x1f"


def _unescape(value: bytes) -> bytes:
    return _ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), value)


@dataclass(frozen=True)
class Header:
    """The header in force: what the ASCII writer declared before the current data lines."""

    separator: bytes = b"\t"
    set_separator: str = ","
    empty_field: str = "(empty)"
    unset_field: str = "-"
    path: str | None = None
    fields: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    def update(self, line: bytes) -> Header:
        text = line.strip(b" \t\r\n")
        if text.startswith(b"#separator"):
            return replace(self, separator=_unescape(text[len(b"#separator"):].strip()) or b"\t")
        sep = self.separator
        name, _, rest = text.partition(sep) if sep in text else text.partition(b" ")
        key = name[1:].strip().decode("latin-1")
        if key in ("fields", "types"):
            # Field names and types never contain whitespace: a header joined partly with spaces
            # (as some labelled logs are) still names every column.
            tokens = tuple(_unescape(t).decode("utf-8", "replace") for p in rest.split(sep) for t in p.split())
            if key == "fields":
                return replace(self, fields=tokens, types=())
            return replace(self, types=tokens)
        value = _unescape(rest.strip(b" \t")).decode("utf-8", "replace")
        if key == "set_separator":
            return replace(self, set_separator=value or ",")
        if key == "empty_field":
            return replace(self, empty_field=value)
        if key == "unset_field":
            return replace(self, unset_field=value)
        if key == "path":
            return replace(self, path=value or None)
        return self  # #open, #close and comments change nothing

    def column_names(self) -> list[str]:
        """`#fields`, made unique (pyarrow needs distinct names)."""
        seen: dict[str, int] = {}
        out = []
        for f in self.fields:
            seen[f] = seen.get(f, 0) + 1
            out.append(f if seen[f] == 1 else f"{f}#{seen[f]}")
        return out

    def arrow_type(self, name: str) -> pa.DataType:
        declared = self.types[self.fields.index(name)] if len(self.types) == len(self.fields) else None
        return arrow_type(name, declared)


def iter_tsv(path: Path, ctx: ReadContext, wanted: Mapping[str, Sequence[str]],
             default_kind: str | None) -> Iterator[Part]:
    """Parts of a Zeek TSV log: parsed tables for kinds in `wanted` (their listed columns), row counts
    only for the other kinds."""
    header = Header()
    for first_line, chunk in iter_chunks(path, ctx, CHUNK_BYTES):
        for line_no, piece, is_header in _pieces(chunk, first_line):
            if is_header:
                header = header.update(piece)
            else:
                part = _parse_block(piece, line_no, header, wanted, default_kind, ctx)
                if part is not None:
                    yield part


def _pieces(chunk: bytes, first_line: int) -> Iterator[tuple[int, bytes, bool]]:
    """Split a chunk into runs of data lines and single header lines, with their first line number."""
    if b"#" not in chunk:
        yield first_line, chunk, False
        return
    starts = [0] if _HEADER_FIRST.match(chunk) else []
    starts += [m.start() + 1 for m in _HEADER_AT.finditer(chunk)]
    pos, line = 0, first_line
    for h in starts:
        if h > pos:
            run = chunk[pos:h]
            yield line, run, False
            line += run.count(b"\n")
        end = chunk.index(b"\n", h) + 1
        yield line, chunk[h:end], True
        line += 1
        pos = end
    if pos < len(chunk):
        yield line, chunk[pos:], False


def _parse_block(data: bytes, first_line: int, header: Header, wanted: Mapping[str, Sequence[str]],
                 default_kind: str | None, ctx: ReadContext) -> Part | None:
    kind = header.path or default_kind or kind_from_fields(header.fields)
    lines = Lines(data, first_line)
    if not header.fields:
        rows = lines.nonblank()
        for line, raw in lines.locate(np.arange(len(rows))):
            if raw.strip():
                ctx.reject(line, "data line before any #fields header", raw)
        return None
    columns = wanted.get(kind or "")
    if columns is None:
        return Part(kind, None, len(lines.nonblank()))
    data = _clean(data, first_line, ctx)
    sep = header.separator
    if len(sep) != 1:
        data, sep = data.replace(sep, _UNIT_SEP), _UNIT_SEP
    names = header.column_names()
    present = [c for c in columns if c in names]
    types = {c: header.arrow_type(c) for c in present}
    reader = _Reader(sep, names, present, types, header.unset_field)
    lines = Lines(data, first_line)
    table, invalid, as_strings = reader.read(data, strings=False, give_up=MANY_INVALID)
    if table is None:  # many lines joined with spaces: split the whole block in Arrow instead
        table, _, as_strings = reader.read(_split_block(lines, sep, len(names), ctx), strings=False)
        assert table is not None
    elif invalid:
        table, as_strings = _add_respaced(table, as_strings, lines, reader, sep, len(names), ctx)
    part = Part(kind, table, table.num_rows, lines, header.set_separator, header.empty_field)
    if as_strings:
        for name, typ in types.items():
            if typ != pa.string():
                part.coerce(ctx, name, typ)
    return part


def _add_respaced(table: pa.Table, as_strings: bool, lines: Lines, reader: _Reader, sep: bytes, n: int,
                  ctx: ReadContext) -> tuple[pa.Table, bool]:
    """A few lines had the wrong field count: append those whitespace splitting fixes, reject the rest."""
    good, bad = _field_counts(lines, sep, n)
    if len(good) != table.num_rows:  # cannot happen unless pyarrow splits lines differently
        ctx.note(f"lines {lines.first_line}..: line numbers of rejects in this block may be approximate")
    lines.rows = good
    fixed, fixed_idx = _respace(lines, bad, sep, n, ctx)
    if not fixed:
        return table, as_strings
    extra, _, extra_strings = reader.read(b"\n".join(fixed) + b"\n", strings=as_strings)
    assert extra is not None
    if extra_strings and not as_strings:
        table, as_strings = table.cast(extra.schema), True
    elif as_strings and not extra_strings:
        extra = extra.cast(table.schema)
    lines.rows = np.concatenate([good, np.asarray(fixed_idx, dtype=good.dtype)])
    return pa.concat_tables([table, extra]), as_strings


def _split_block(lines: Lines, sep: bytes, n: int, ctx: ReadContext) -> pa.Buffer:
    """For a block in which many lines have the wrong field count, vectorised: each line is split on
    the separator, and those that do not give `n` fields on runs of whitespace instead; lines that
    still do not fit are rejected. Returns the kept lines rejoined with the separator, for the bulk
    parser, and sets `lines.rows` to match."""
    starts = lines.starts
    offsets = np.append(starts, len(lines.data)).astype(np.int32)
    text = pa.StringArray.from_buffers(len(starts), pa.py_buffer(offsets.tobytes()), pa.py_buffer(lines.data))
    text = pc.ascii_rtrim(text, characters="\n")
    by_sep = pc.split_pattern(text, sep.decode("latin-1"))
    trimmed = pc.ascii_trim_whitespace(text)
    if not sep.isspace():
        trimmed = pc.replace_substring(trimmed, sep.decode("latin-1"), "\t")
    fields = pc.if_else(pc.equal(pc.list_value_length(by_sep), n), by_sep, pc.ascii_split_whitespace(trimmed))
    ok = pc.equal(pc.list_value_length(fields), n).to_numpy(zero_copy_only=False)
    blank = pc.equal(trimmed, "").to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(~ok & ~blank).tolist():
        raw = lines.text(i)
        ctx.reject(lines.first_line + i, f"{raw.count(sep) + 1} fields where #fields declares {n}", raw)
    keep = ok & ~blank
    lines.rows = np.flatnonzero(keep)
    rows = pc.binary_join(fields.filter(pa.array(keep)), sep.decode("latin-1"))
    rows = pc.binary_join_element_wise(rows, "", "\n")
    bounds = np.frombuffer(rows.buffers()[1], np.int32)[rows.offset : rows.offset + len(rows) + 1]
    return rows.buffers()[2][int(bounds[0]) : int(bounds[-1])] if len(rows) else pa.py_buffer(b"")


@dataclass
class _Reader:
    sep: bytes
    names: list[str]
    present: list[str]
    types: dict[str, pa.DataType]
    unset: str

    def read(self, data: bytes | pa.Buffer, strings: bool, give_up: int = 0) -> tuple[pa.Table | None, int, bool]:
        """Parse `data`; returns the table, how many lines had the wrong field count (skipped) and
        whether columns were left as strings because a value did not convert. With `give_up`, more
        than that many bad lines stop the parse and the table is None."""
        invalid: list[None] = []

        def on_invalid(row: object) -> str:
            invalid.append(None)
            return "error" if give_up and len(invalid) > give_up else "skip"

        block = len(data) + 1 if strings else BLOCK_BYTES
        ro = pacsv.ReadOptions(column_names=self.names, block_size=block, use_threads=True)
        po = pacsv.ParseOptions(delimiter=self.sep.decode("latin-1"), quote_char=False,
                                invalid_row_handler=on_invalid)
        types = {c: pa.string() for c in self.present} if strings else self.types
        co = pacsv.ConvertOptions(include_columns=self.present or self.names[:1], column_types=types,
                                  null_values=sorted({self.unset, ""}), strings_can_be_null=True,
                                  quoted_strings_can_be_null=False)
        try:
            table = pacsv.read_csv(pa.BufferReader(data), ro, po, co)
        except pa.ArrowInvalid:
            if give_up and len(invalid) > give_up:
                return None, len(invalid), strings
            if strings:
                raise
            return self.read(data, strings=True, give_up=give_up)
        return table, len(invalid), strings


def _field_counts(lines: Lines, sep: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indexes of the lines with exactly `n` fields, and of the non-empty lines without."""
    buf = np.frombuffer(lines.data, np.uint8)
    ends, starts = lines.ends, lines.starts
    per_line = np.bincount(np.searchsorted(ends, np.flatnonzero(buf == sep[0])), minlength=len(ends))
    nonempty = ends > starts
    good = nonempty & (per_line[: len(ends)] == n - 1)
    return np.flatnonzero(good), np.flatnonzero(nonempty & ~good)


def _respace(lines: Lines, bad: np.ndarray, sep: bytes, n: int,
             ctx: ReadContext) -> tuple[list[bytes], list[int]]:
    """Lines with the wrong field count: keep those that have `n` fields when split on whitespace
    (mixed tabs and runs of spaces), reject the others."""
    bad_texts = [lines.text(i) for i in bad.tolist()]
    whitespace_sep = sep.isspace()
    fixed, idx = [], []
    for i, text in zip(bad.tolist(), bad_texts, strict=True):
        tokens = text.split()
        if len(tokens) == n:
            line = sep.join(tokens)
            # A token holding the separator would shift the columns when the line is parsed again.
            if whitespace_sep or line.count(sep) == n - 1:
                fixed.append(line)
                idx.append(i)
                continue
        if tokens:  # blank lines are no records
            ctx.reject(lines.first_line + i, f"{text.count(sep) + 1} fields where #fields declares {n}",
                       text.rstrip(b"\r"))
    return fixed, idx


def _clean(data: bytes, first_line: int, ctx: ReadContext) -> bytes:
    """Make a run of lines safe for pyarrow without changing its line count: CRs go (Zeek escapes a
    literal CR as \\x0d, so that is what a stray one becomes), invalid UTF-8 becomes U+FFFD."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
        if b"\r" in data:
            data = data.replace(b"\r", b"\\x0d")
    return utf8_safe(data, first_line, ctx)
