"""Ingest: input files -> sniffed source -> canonical rows -> workspace parts, with rejects kept.

Every record of an input file ends up counted as a canonical row, a reject (file, line, reason, raw
text, in the workspace's rejects file) or a skipped record with a stated reason (e.g. Zeek ssl.log
records, which are joined into conn rows rather than stored on their own).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from bothunt import memtune, netclass
from bothunt.errors import BothuntError, InputError, UnknownFormatError
from bothunt.netclass import InternalNetworks
from bothunt.pipeline import prefetched
from bothunt.schema import conform
from bothunt.sources import ReadContext, sniff
from bothunt.sources.base import Batch
from bothunt.workspace import PartWriter, Workspace, file_key

# Files inside a directory that are documentation, not telemetry: skipped silently-but-counted.
DOC_SUFFIXES = {".md", ".rst", ".html", ".pdf", ".png", ".jpg"}
# Parquet writer threads per input file: encoding is the slowest stage, and two keep two cores busy.
WRITERS = 2


@dataclass
class FileReport:
    path: str
    status: str  # ingested | unchanged | unrecognised | failed
    source: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    explicit: bool = True  # named on the command line (not found by walking a directory)

    @property
    def written(self) -> int:
        return sum(self.rows.values())


@dataclass
class IngestReport:
    workspace: Path
    files: list[FileReport] = field(default_factory=list)

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    @property
    def errors(self) -> list[FileReport]:
        return [f for f in self.files if f.status in ("unrecognised", "failed")]

    @property
    def fatal(self) -> bool:
        """A named file that could not be read, or nothing usable at all, is a usage error (exit 2)."""
        usable = [f for f in self.files if f.status in ("ingested", "unchanged")]
        return any(f.explicit for f in self.errors) or not usable


def expand(paths: Iterable[Path]) -> Iterator[tuple[Path, bool]]:
    """Files to read, in a stable order; directories are walked. Yields (path, named_explicitly)."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if child.is_file() and not child.name.startswith("."):
                    yield child, False
        elif p.is_file():
            yield p, True
        else:
            raise InputError("no such file or directory", file=str(p))


class _Rejects:
    """Appends rejects to the workspace's JSONL file, opened on the first reject only."""

    def __init__(self, path: Path, display: str) -> None:
        self.path = path
        self.display = display
        self.fh: IO[str] | None = None

    def __call__(self, line: int | None, reason: str, raw: str) -> None:
        if self.fh is None:
            self.fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        rec = {"file": self.display, "line": line, "reason": reason, "raw": raw}
        self.fh.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def close(self) -> str | None:
        if self.fh is None:
            return None
        self.fh.close()
        return self.path.name


def ingest_file(ws: Workspace, path: Path, internal: InternalNetworks,
                progress: Callable[[int], None] | None = None, explicit: bool = True) -> FileReport:
    rep = FileReport(path=str(path), status="ingested", explicit=explicit)
    try:
        source = sniff(path)
    except UnknownFormatError as exc:
        rep.status, rep.error = "unrecognised", str(exc)
        return rep
    except OSError as exc:
        rep.status, rep.error = "failed", f"{path}: {exc.strerror or exc}"
        return rep
    rep.source = source.id
    key = file_key(path)
    if ws.known(path, key):
        entry = ws.manifest()["files"][str(path.resolve())]
        rep.status, rep.rows = "unchanged", dict(entry.get("rows", {}))
        rep.rejected, rep.skipped = entry.get("rejected", 0), entry.get("skipped", 0)
        rep.notes = ["already in the workspace with the same content; not read again"]
        if progress:
            progress(path.stat().st_size)
        return rep
    ws.forget(path)
    rejects = _Rejects(ws.rejects_path(key), str(path))
    ctx = ReadContext(file=str(path), reject_fn=rejects, progress_fn=progress or (lambda n: None))
    writer = PartWriter(ws, key, slots=WRITERS)
    try:
        # Stages overlap, each mostly outside the GIL: parsing and address classification in the
        # prefetch thread, Parquet encoding in WRITERS threads (one slot each), so both cores stay busy.
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            pending: deque[Future[None]] = deque()
            for i, batch in enumerate(prefetched(_canonical(source.read(path, ctx), ctx, internal))):
                if len(pending) == WRITERS:  # the oldest write holds the slot this batch needs
                    pending.popleft().result()
                pending.append(pool.submit(writer.write, batch.table, batch.data, i % WRITERS))
            while pending:
                pending.popleft().result()
    except InputError as exc:
        writer.abort()
        rejects.close()
        rep.status, rep.error = "failed", str(exc)
        return rep
    except (pa.ArrowInvalid, pa.ArrowTypeError, duckdb.Error, ValueError, OSError) as exc:
        writer.abort()
        rejects.close()
        rep.status, rep.error = "failed", f"{path}: cannot read as {source.id}: {exc}"
        return rep
    parts = writer.close()
    rep.rows, rep.rejected, rep.skipped, rep.notes = dict(writer.rows), ctx.rejected, ctx.skipped, ctx.notes
    entry: dict[str, Any] = {"key": key, "source": source.id, "rows": rep.rows, "rejected": rep.rejected,
                             "skipped": rep.skipped, "notes": rep.notes, "parts": parts,
                             "rejects": None}
    name = rejects.close()
    if name:
        entry["rejects"] = f"rejects/{name}"
    ws.record(path, entry)
    return rep


def _canonical(batches: Iterable[Batch], ctx: ReadContext, internal: InternalNetworks) -> Iterator[Batch]:
    """A source's batches as canonical tables: all columns, rows with a time, network classes filled."""
    for batch in batches:
        data = _drop_untimed(conform(batch.data, batch.table), ctx)
        if batch.table == "conn":
            data = netclass.annotate(data, internal)
        yield Batch(batch.table, data)


def _drop_untimed(data: pa.Table, ctx: ReadContext) -> pa.Table:
    """A row without a time cannot be placed in a day or a window: count it as a reject."""
    missing = pc.is_null(data["ts"])
    n = pc.sum(missing).as_py() or 0
    if n:
        # One reject record stands for all of them: the source has no line numbers left to give.
        ctx.reject(None, f"{n} row(s) without a timestamp after parsing", "")
        ctx.rejected += n - 1
        data = data.filter(pc.invert(missing))
    return data


def ingest_paths(paths: list[Path], workspace: Path, internal: InternalNetworks | None = None,
                 progress: bool = False, console: Any = None) -> IngestReport:
    """Ingest files and directories into a workspace (created if needed)."""
    ws = Workspace.create(Path(workspace))
    memtune.keep_freed_memory()
    internal = internal or InternalNetworks()
    files = list(expand(paths))
    report = IngestReport(workspace=ws.root)
    if not files:
        raise BothuntError("no input files found in " + ", ".join(str(p) for p in paths))
    if not progress:
        for path, explicit in files:
            report.files.append(_one(ws, path, internal, None, explicit))
        return report
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    total = sum(p.stat().st_size for p, _ in files)
    with Progress(TextColumn("[bold]ingest[/] {task.description}"), BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("", total=total)
        for path, explicit in files:
            bar.update(task, description=path.name[-40:].replace("[", "\\["))
            report.files.append(_one(ws, path, internal, lambda n: bar.advance(task, n), explicit))
    return report


def _one(ws: Workspace, path: Path, internal: InternalNetworks,
         progress: Callable[[int], None] | None, explicit: bool) -> FileReport:
    if not explicit and path.suffix.lower() in DOC_SUFFIXES:
        return FileReport(path=str(path), status="unrecognised", explicit=False,
                          error=f"{path}: documentation file, not telemetry; skipped")
    return ingest_file(ws, path, internal, progress, explicit)
