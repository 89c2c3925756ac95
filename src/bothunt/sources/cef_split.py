"""CEF lines cut into their parts a chunk at a time, without a loop over lines: the rules are in `cef.py`.

numpy finds the newlines, blanks and `=` of a chunk in one pass over its bytes (`marks`, in file order),
and the `|` and backslashes in two more; every line's header pipes, extension bounds and pairs are then
offsets derived from those positions with searches and masks. Arrow cuts strings out of the chunk's buffer
without copying it (`spans` / `take`), dictionary-encodes keys so that each distinct key is checked once,
and undoes escapes in the few values and headers that hold a backslash. Python only loops over rejected
lines, to report them.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BLANKS = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "  # what Python's str.isspace calls whitespace in ASCII
NO_HEADER = "no CEF header (CEF:version|vendor|...)"
SHORT_HEADER = "CEF header needs 7 '|'-terminated fields"
_BLANK = np.zeros(256, dtype=bool)
_BLANK[list(BLANKS.encode())] = True
_KEY = r"^[A-Za-z0-9_.\-\[\]]+$"
_SHORT_RUN = 8  # blanks stepped over one at a time before a run counts as padding
_VALUE_ESCAPES = (("\\=", "="), ("\\n", "\n"), ("\\r", "\r"))


@dataclass
class Split:
    """A chunk cut into CEF parts: offsets into `buf` (valid UTF-8) of each accepted line's parts, and
    the rejected lines. Pairs are numbered so that a line's pairs come in line order."""

    buf: bytes
    starts: np.ndarray  # every line's first byte, and its end (before the newline)
    ends: np.ndarray
    ok: np.ndarray  # accepted lines (indices into starts)
    at: np.ndarray  # per accepted line: offset of `CEF:` in the line
    pipes: np.ndarray  # per accepted line: offsets of the 7 header pipes, shape (n, 7)
    escaped: np.ndarray  # per accepted line: a backslash in the header
    pair_row: np.ndarray  # per extension pair: its accepted line (index into ok)
    eq: np.ndarray  # the key ends at `eq`, the value is [eq + 1, value_end)
    value_end: np.ndarray
    key_names: pa.Array  # the keys, each pair's an index into these (`key_code`)
    key_code: np.ndarray
    backslashes: np.ndarray  # offsets of every backslash in buf
    rejects: list[tuple[int, str, str]]  # (line index, reason, text), in line order

    def text(self, line: int) -> str:
        return self.buf[self.starts[line]: self.ends[line]].decode()

    def header(self) -> list[pa.Array]:
        """The six header fields after the version, unescaped."""
        out = []
        rows = np.arange(len(self.ok))
        for k in range(6):
            field = take(spans(self.buf, self.pipes[:, k] + 1, self.pipes[:, k + 1]), rows)
            if self.escaped.any():
                mask = pa.array(self.escaped)
                field = pc.replace_with_mask(field, mask, unescape(field.filter(mask), (("\\|", "|"),)))
            out.append(field)
        return out

    def prefix(self) -> pa.Array:
        """What precedes `CEF:` on each accepted line (a syslog header, usually)."""
        starts = self.starts[self.ok]
        return take(spans(self.buf, starts, starts + self.at), np.arange(len(self.ok)))

    def keys(self) -> pa.Array:
        return self.key_names.take(pa.array(self.key_code))

    def values(self, index: np.ndarray) -> pa.Array:
        """The unescaped values of pairs `index` (null for -1)."""
        out = take(self._value_spans, index)
        mask = self._value_escaped[index]
        if mask.any():
            fixed = unescape(out.filter(pa.array(mask)), _VALUE_ESCAPES)
            out = pc.replace_with_mask(out, pa.array(mask), fixed)
        return out

    @functools.cached_property
    def _value_spans(self) -> pa.Array:
        return spans(self.buf, self.eq + 1, self.value_end)

    @functools.cached_property
    def _value_escaped(self) -> np.ndarray:
        escaped = np.zeros(len(self.eq) + 1, dtype=bool)  # the extra last entry answers for index -1
        escaped[:-1] = np.searchsorted(self.backslashes, self.value_end) > np.searchsorted(self.backslashes,
                                                                                            self.eq + 1)
        return escaped


def split(chunk: bytes) -> Split:
    """Cut a chunk of whole lines (invalid UTF-8 read as U+FFFD) into CEF parts."""
    buf = _utf8(chunk)
    a = np.frombuffer(buf, dtype=np.uint8)
    pos = _pos_type(buf)
    marks = np.flatnonzero((a <= 32) | (a == 61)).astype(pos)  # blanks, other control bytes and `=`
    kind = a[marks]
    ends = marks[kind == 10]
    if not len(buf) or buf[-1] != 10:
        ends = np.append(ends, pos(len(buf)))
    starts = np.concatenate([np.zeros(1, dtype=pos), ends[:-1] + 1])
    found = pc.find_substring(_cut(buf, np.append(starts, pos(len(buf)))), "CEF:").to_numpy()
    cef = np.flatnonzero(found >= 0)
    h0 = starts[cef] + found[cef] + 4  # after `CEF:`

    backslashes = (np.flatnonzero(a == 92) if buf.find(b"\\") >= 0 else np.zeros(0, dtype=np.int64)).astype(pos)
    pipes = np.flatnonzero(a == 124).astype(pos)
    pipes = pipes[~_escaped(pipes, backslashes)]
    first = np.searchsorted(pipes, h0)
    full = first + 6 < len(pipes)
    full[full] = pipes[first[full] + 6] < ends[cef[full]]
    header = pipes[first[full, None] + np.arange(7)]
    version = pc.utf8_trim(take(spans(buf, h0[full], header[:, 0]), np.arange(len(header))), BLANKS)
    digits = pc.match_substring_regex(version, "^[0-9]+$").to_numpy(zero_copy_only=False)

    bare = np.flatnonzero(found < 0)
    blank = _skip_blanks(a, starts[bare], 1, ends[bare]) == ends[bare]
    rejects = _rejects(buf, starts, ends, bare[~blank], cef[~full], cef[full][~digits], version.filter(~digits))

    keep = np.flatnonzero(full)[digits]
    ok, header = cef[keep], header[digits]
    escaped = np.searchsorted(backslashes, header[:, 6]) > np.searchsorted(backslashes, h0[keep])
    parts = functools.partial(Split, buf, starts, ends, ok, found[ok], header, escaped,
                              backslashes=backslashes, rejects=rejects)
    if not len(ok):
        none = np.zeros(0, dtype=pos)
        return parts(none, none, none, pa.array([], pa.string()), none)
    x1 = ends[ok]  # the extension without surrounding blanks is [x0, x1)
    x0 = _skip_blanks(a, header[:, 6] + 1, 1, x1)
    x1 = _skip_blanks(a, x1 - 1, -1, x0 - 1) + 1
    return parts(*_pairs(buf, a, marks, kind, ends, ok, x0, x1))


def _rejects(buf: bytes, starts: np.ndarray, ends: np.ndarray, bare: np.ndarray, short: np.ndarray,
             bad: np.ndarray, version: pa.Array) -> list[tuple[int, str, str]]:
    """(line index, reason, text) of rejected lines, in line order."""
    reasons = {line: NO_HEADER for line in bare.tolist()}
    reasons.update((line, SHORT_HEADER) for line in short.tolist())
    reasons.update((line, f"bad CEF version {v[:20]!r}") for line, v in zip(bad.tolist(), version.to_pylist(),
                                                                             strict=True))
    out = []
    for line in sorted(reasons):
        text = buf[starts[line]: ends[line]].decode()
        if reasons[line] != NO_HEADER or text.strip():  # Unicode blanks too: a line a reader sees as empty
            out.append((line, reasons[line], text))
    return out


def _pairs(buf: bytes, a: np.ndarray, marks: np.ndarray, kind: np.ndarray, ends: np.ndarray, ok: np.ndarray,
           x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array, np.ndarray]:
    """(row, `=` offset, value end, key names, key code) of every pair of the extensions [x0, x1) of the
    accepted lines `ok`: each line's leading pair, then the pairs after separators in file order, so
    that a line's pairs are numbered in line order."""
    # A pair follows each separator: blanks, then key characters up to `=`. So a separator's `=` is a mark
    # right after a blank mark, with only key characters between.
    eqs = np.flatnonzero(kind == 61)
    sep = eqs[_BLANK[kind[np.maximum(eqs - 1, 0)]]]  # a `=` first among the marks compares with itself
    q, ks = marks[sep], marks[sep - 1] + 1
    row = np.repeat(np.arange(len(ends), dtype=marks.dtype), np.diff(np.searchsorted(q, ends), prepend=0))
    if len(ok) < len(ends):  # lines to rows
        row_of = np.full(len(ends), -1, dtype=marks.dtype)
        row_of[ok] = np.arange(len(ok))
        row = row_of[row]
    inside = (row >= 0) & (ks > x0[row]) & (ks < q)  # x0[-1] for rejected lines is masked by row >= 0
    if not inside.all():
        q, ks, row = q[inside], ks[inside], row[inside]
    keys = take(spans(buf, ks, q), np.arange(len(q))).dictionary_encode()
    valid = pc.match_substring_regex(keys.dictionary, _KEY).to_numpy(zero_copy_only=False)
    code = keys.indices.to_numpy()
    if not valid.all():
        good = valid[code]
        q, ks, row, code = q[good], ks[good], row[good], code[good]
    gap = _skip_blanks(a, ks - 2, -1) + 1  # the value before a separator ends where its blanks begin
    value_end = np.where(np.append(row[1:] == row[:-1], False), np.append(gap[1:], 0), x1[row])

    # An extension also starts with a pair when there is an `=` before its first separator.
    rows = np.arange(len(ok))
    first = np.searchsorted(row, rows)
    has = first < len(row)
    has[has] = row[first[has]] == rows[has]
    lead_end = x1.copy()
    lead_end[has] = gap[first[has]]
    eq_at = marks[eqs]
    head = np.searchsorted(eq_at, x0)
    lead = np.flatnonzero(head < len(eq_at))
    lead = lead[eq_at[head[lead]] < lead_end[lead]]
    lead_eq = eq_at[head[lead]]
    lead_keys = take(spans(buf, x0[lead], lead_eq), np.arange(len(lead))).dictionary_encode()
    names = pa.concat_arrays([keys.dictionary, lead_keys.dictionary])
    code = np.concatenate([lead_keys.indices.to_numpy() + len(keys.dictionary), code])
    return np.r_[lead, row], np.r_[lead_eq, q], np.r_[lead_end[lead], value_end], names, code


def _utf8(chunk: bytes) -> bytes:
    """The chunk itself when it is valid UTF-8, else re-encoded with U+FFFD for the bad bytes (a newline
    never belongs to a bad sequence, so lines stay where they were)."""
    try:
        _cut(chunk, np.array([0, len(chunk)])).validate(full=True)
        return chunk
    except pa.ArrowInvalid:
        return chunk.decode("utf-8", errors="replace").encode("utf-8")


def _pos_type(buf: bytes) -> type[np.signedinteger]:
    """Offsets into a chunk as int32 when they fit: half the memory traffic of every step over them."""
    return np.int32 if len(buf) < 2**31 else np.int64


def _cut(buf: bytes, offsets: np.ndarray) -> pa.Array:
    """Strings buf[offsets[i]:offsets[i + 1]] without copying (cuts must fall between characters)."""
    if _pos_type(buf) is np.int32:
        return pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets.astype(np.int32, copy=False)),
                                           pa.py_buffer(buf))
    return pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets.astype(np.int64, copy=False)),
                                            pa.py_buffer(buf))


def spans(buf: bytes, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """Strings buf[starts[i]:ends[i]] for spans in order that do not overlap, as a source for `take`:
    span i is element 2i of a zero-copy array cut at every start and end."""
    cuts = np.empty(2 * len(starts) + 1, dtype=_pos_type(buf))
    cuts[0:-1:2], cuts[1:-1:2], cuts[-1] = starts, ends, ends[-1] if len(ends) else 0
    return _cut(buf, cuts)


def take(spans: pa.Array, index: np.ndarray) -> pa.Array:
    """Span `index[i]` of a `spans` array as a string array, null where the index is negative."""
    at = 2 * index.astype(np.int64)
    valid = index >= 0
    # A validity bitmap packed by numpy: pa.array(..., mask=) is far slower on large arrays.
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return spans.take(pa.Array.from_buffers(pa.int64(), len(at), [bitmap, pa.py_buffer(at)])).cast(pa.string())


def unescape(values: pa.Array, escapes: tuple[tuple[str, str], ...]) -> pa.Array:
    """Undo `\\\\` and `escapes` as one left-to-right pass would: each `\\\\` first becomes a character
    the values lack, so that `\\\\n` stays a backslash and an `n`."""
    hold = next(ch for ch in itertools.chain("\x00", map(chr, range(0xE000, 0xF900)))
                if not pc.any(pc.match_substring(values, ch)).as_py())
    values = pc.replace_substring(values, "\\\\", hold)
    for escape, char in escapes:
        values = pc.replace_substring(values, escape, char)
    return pc.replace_substring(values, hold, "\\")


def _escaped(marks: np.ndarray, backslashes: np.ndarray) -> np.ndarray:
    """Which of the positions `marks` follow an odd run of backslashes (escapes pair up from a run's
    start, so an odd run escapes the character after it)."""
    if not len(backslashes):
        return np.zeros(len(marks), dtype=bool)
    run_start = np.r_[True, np.diff(backslashes) != 1]
    first = np.maximum.accumulate(np.where(run_start, np.arange(len(backslashes)), 0))
    j = np.searchsorted(backslashes, marks) - 1
    behind = (j >= 0) & (backslashes[np.maximum(j, 0)] == marks - 1)
    return behind & ((j - first[np.maximum(j, 0)]) % 2 == 0)


def _skip_blanks(a: np.ndarray, pos: np.ndarray, step: int, stop: np.ndarray | None = None) -> np.ndarray:
    """Move each `pos` by `step` while it is on a blank and short of `stop`. Without `stop`, a non-blank
    byte must lie ahead of every position."""
    pos = pos.copy()
    live = np.arange(len(pos)) if stop is None else np.flatnonzero(pos != stop)
    for _ in range(_SHORT_RUN):  # blank runs are short: a few steps over fewer and fewer positions
        if not len(live):
            return pos
        live = live[_BLANK[a[pos[live]]]]
        pos[live] += step
        if stop is not None:
            live = live[pos[live] != stop[live]]
    if len(live):  # padding: classify the whole chunk once and jump to the next non-blank
        solid = np.flatnonzero(~_BLANK[a])
        if step > 0:
            at = np.searchsorted(solid, pos[live])
            to = np.where(at < len(solid), solid[np.minimum(at, len(solid) - 1)], len(a))
        else:
            to = solid[np.searchsorted(solid, pos[live], side="right") - 1]
        if stop is not None:
            to = np.minimum(to, stop[live]) if step > 0 else np.maximum(to, stop[live])
        pos[live] = to
    return pos
