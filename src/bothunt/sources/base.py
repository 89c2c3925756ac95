"""What every source implements, and the byte-level helpers they share.

A source turns one input file into batches of canonical rows (`Batch`) and reports every record it
cannot use through `ReadContext.reject`. It knows nothing of detections, workspaces or engines.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ClassVar

import numpy as np
import pyarrow as pa

from bothunt.schema import RAW_SAMPLE_CHARS

GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 64 * 1024
CHUNK_BYTES = 16 * 1024 * 1024
PIECE_BYTES = 64 * 1024


@dataclass
class Batch:
    """Rows for one canonical table. `data` may lack columns; the pipeline conforms it."""

    table: str
    data: pa.Table


@dataclass
class ReadContext:
    """Per-file state a source reports into: rejects, skipped records, progress and notes."""

    file: str
    reject_fn: Callable[[int | None, str, str], None] = field(repr=False, default=lambda *a: None)
    progress_fn: Callable[[int], None] = field(repr=False, default=lambda n: None)
    rejected: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def reject(self, line: int | None, reason: str, raw: str | bytes = "") -> None:
        """Record one unusable record; `line` is 1-based in the decompressed file (None if unknown)."""
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="backslashreplace")
        self.rejected += 1
        self.reject_fn(line, reason, raw[:RAW_SAMPLE_CHARS])

    def skip(self, count: int, why: str) -> None:
        """Records that are valid but belong to no canonical table (Zeek notice.log, EVE alerts...).
        They are counted and explained, not rejected."""
        self.skipped += count
        self.notes.append(f"{count} records skipped: {why}")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def progress(self, nbytes: int) -> None:
        """Report compressed-or-raw bytes consumed since the last call (drives the progress bar)."""
        self.progress_fn(nbytes)


class Source:
    """Base class for input formats. Subclasses set `id`, `description`, `tables` and implement
    `sniff` and `read`."""

    id: ClassVar[str]
    description: ClassVar[str]
    tables: ClassVar[tuple[str, ...]] = ("conn",)

    def sniff(self, head: bytes, path: Path) -> int:
        """Confidence 0..100 that `head` (the first decompressed bytes of the file) is this format.
        Decide by content; the path is a tie-breaker only (e.g. which Zeek log a file is)."""
        raise NotImplementedError

    def read(self, path: Path, ctx: ReadContext) -> Iterator[Batch]:
        """Yield batches (bounded size: at most ~1M rows each) of canonical rows."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------
# Byte helpers


class _CountingReader(io.RawIOBase):
    """Wraps the raw file so progress can be reported in on-disk bytes, compressed or not."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None]) -> None:
        self._raw = raw
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, b):  # type: ignore[no-untyped-def]
        n = self._raw.readinto(b)
        if n:
            self._on_read(n)
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_bytes(path: Path, on_read: Callable[[int], None] | None = None) -> BinaryIO:
    """Open a file for reading its decompressed bytes; gzip is recognised by its magic, not its name."""
    fh = open(path, "rb")  # noqa: SIM115 - returned to caller
    raw = io.BufferedReader(_CountingReader(fh, on_read or (lambda n: None)), 1 << 20)
    if raw.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw  # type: ignore[return-value]


def read_head(path: Path, n: int = SNIFF_BYTES) -> bytes:
    """First `n` decompressed bytes; a corrupt or truncated gzip yields what could be read."""
    try:
        with open_bytes(path) as fh:
            return fh.read(n)
    except (EOFError, OSError, zlib.error):
        out = bytearray()
        try:
            with open_bytes(path) as fh:
                while len(out) < n:
                    piece = fh.read(4096)
                    if not piece:
                        break
                    out += piece
        except (EOFError, OSError, zlib.error):
            pass
        return bytes(out)


def iter_chunks(path: Path, ctx: ReadContext, size: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
    """Yield (first_line_number, chunk) where every chunk ends at a line boundary.

    A truncated or corrupt gzip stops the stream: the lines before the damage are yielded, the
    partial last line is rejected, and the damage is noted, so nothing is dropped silently. Compressed
    input is read in small pieces so that damage costs at most one piece of decompressed data; plain
    files are read a chunk at a time (each byte is copied once on its way to the parser).
    """
    line_no = 1
    tail = b""
    damaged = eof = False
    with open_bytes(path, ctx.progress) as fh:
        step = PIECE_BYTES if isinstance(fh, gzip.GzipFile) else size
        while not eof:
            pieces, got, want = [tail], len(tail), size
            while True:
                while got < want and not eof:
                    try:
                        piece = fh.read(step)
                    except (EOFError, OSError, zlib.error) as exc:
                        ctx.note(f"input ends early ({type(exc).__name__}: {exc}); rows before the damage kept")
                        damaged, piece = True, b""
                    if not piece:
                        eof = True
                        break
                    pieces.append(piece)
                    got += len(piece)
                buf = pieces[0] if len(pieces) == 1 else b"".join(pieces)
                cut = buf.rfind(b"\n") + 1
                if cut or eof:
                    break
                pieces, want = [buf], got + size  # one line longer than a chunk: read on
            if cut == 0:
                tail = buf
                continue
            chunk, tail = (buf, b"") if cut == len(buf) else (buf[:cut], buf[cut:])
            yield line_no, chunk
            line_no += newlines(chunk)
    if tail:
        if damaged:
            ctx.reject(line_no, "truncated input: last line incomplete", tail)
        else:
            yield line_no, tail + b"\n"


def newlines(data: bytes) -> int:
    """Line feeds in `data` (numpy: several times faster than bytes.count on large chunks)."""
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == 10))


_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 13, 32]] = True


def blank_lines(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Lines `[starts, ends)` of `data` holding nothing but spaces, tabs and CRs (JSON parsers skip them).

    A line whose first byte is not whitespace cannot be blank, which settles almost every line of real
    telemetry in one lookup per line; bytes are scanned only when some line starts with whitespace."""
    buf = np.frombuffer(data, np.uint8)
    blank = ends <= starts
    filled = np.flatnonzero(~blank)
    suspect = np.zeros(len(ends), dtype=bool)
    suspect[filled] = _WHITESPACE[buf[starts[filled]]]
    if not suspect.any():
        return blank
    # Non-whitespace bytes per line, counted up to the next line's start (the newline between is
    # whitespace): reduceat needs no per-byte cumulative sum or search.
    solid = np.add.reduceat(~_WHITESPACE[buf], starts[filled], dtype=np.int64)
    blank[filled[solid == 0]] = True
    return blank


def utf8_safe(data: bytes, first_line: int, ctx: ReadContext) -> bytes:
    """Valid UTF-8 for pyarrow: bytes that are not UTF-8 become U+FFFD, so the row is kept; the lines
    concerned are noted. Line count and order do not change. `data` holds whole lines."""
    if data.isascii():
        return data
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        pass
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], ends + 1))
    bad = []
    for i in np.unique(np.searchsorted(ends, np.flatnonzero(buf >= 0x80))).tolist():
        try:
            data[int(starts[i]): int(ends[i]) if i < len(ends) else len(data)].decode("utf-8")
        except UnicodeDecodeError:
            bad.append(first_line + i)
    shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
    ctx.note(f"line(s) {shown}: bytes that are not UTF-8 replaced with U+FFFD; rows kept")
    return data.decode("utf-8", errors="replace").encode("utf-8")
