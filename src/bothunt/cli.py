"""Command line: hunt, ingest, detections, simulate, eval, demo, netclass.

Findings go to stdout (or --out); everything meant for the person at the terminal goes to stderr, so
`bothunt hunt ... --format jsonl | jq` stays clean. A BothuntError becomes one line and exit code 2.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bothunt import __version__
from bothunt.config import Settings, load_settings
from bothunt.errors import BothuntError
from bothunt.ingest import IngestReport, ingest_paths
from bothunt.schema import SEVERITIES, Finding, severity_rank
from bothunt.workspace import Workspace

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Hunt for the use of botnets (ATT&CK T1583.005) in network telemetry.")
err = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

# Options shared by several commands.
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML settings file (see docs/tuning.md).",
                                                exists=True, dir_okay=False)]
InternalOpt = Annotated[str | None, typer.Option(
    "--internal", help="Internal networks, comma-separated CIDRs (default: RFC 1918, RFC 4193, 100.64.0.0/10).")]
EngineOpt = Annotated[str, typer.Option("--engine", help="duckdb (in-process) or spark.")]


def _short(path: str) -> str:
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def _print_ingest(report: IngestReport, quiet: bool = False) -> None:
    """Per-file rows read / written / rejected; errors and notes below the table, full paths there."""
    docs = [f for f in report.files if f.status == "unrecognised" and not f.explicit
            and f.error and "documentation file" in f.error]
    shown = [f for f in report.files if f not in docs]
    t = Table(title=f"ingest into {report.workspace}", header_style="bold", title_justify="left")
    t.add_column("file", overflow="fold", ratio=3)
    t.add_column("format")
    for col in ("conn", "dns", "rejected", "skipped"):
        t.add_column(col, justify="right")
    t.add_column("status")
    for f in shown:
        t.add_row(Text(_short(f.path)), f.source or "-", str(f.rows.get("conn", 0)), str(f.rows.get("dns", 0)),
                  str(f.rejected), str(f.skipped), f.status)
    t.add_row("total", "", str(sum(f.rows.get("conn", 0) for f in report.files)),
              str(sum(f.rows.get("dns", 0) for f in report.files)), str(report.total("rejected")),
              str(report.total("skipped")), "", style="bold")
    if not quiet:
        err.print(t)
        if docs:
            err.print(Text(f"  {len(docs)} documentation file(s) in input folders skipped "
                           f"({', '.join(sorted({Path(d.path).name for d in docs}))})", style="dim"))
        notes = [(f.path, n) for f in report.files for n in f.notes]
        for path, note in notes[:30]:
            err.print(Text(f"  {_short(path)}: {note}", style="dim"))
        if len(notes) > 30:
            err.print(Text(f"  ... {len(notes) - 30} more notes in {report.workspace / 'manifest.json'}", style="dim"))
    for f in report.errors:
        if f not in docs:
            err.print(Text(f"  {f.status}: {f.error}", style="yellow"))
    if report.total("rejected"):
        err.print(f"rejected records are kept with file, line and reason in {report.workspace / 'rejects'}")


def _ingest_or_open(paths: Sequence[Path], settings: Settings, stack: ExitStack,
                    workspace: Path | None, quiet: bool) -> Workspace:
    if len(paths) == 1 and Workspace.is_workspace(paths[0]):
        return Workspace.open(paths[0])
    if any(Workspace.is_workspace(p) for p in paths):
        raise BothuntError("give either one workspace or raw input files, not both")
    root = workspace or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bothunt-"))) / "ws"
    report = ingest_paths(list(paths), root, settings.internal, progress=sys.stderr.isatty(), console=err)
    _print_ingest(report, quiet)
    if report.fatal:
        first = report.errors[0].error if report.errors else "no telemetry found"
        raise BothuntError(f"nothing to hunt: {first}")
    return Workspace.open(root)


def _write(findings: list[Finding], fmt: str, out: Path | None, meta: dict[str, Any]) -> None:
    from bothunt.sinks import get_sink

    sink = get_sink(fmt)
    if out is None:
        meta.setdefault("color", sys.stdout.isatty())
        meta.setdefault("limit", 200 if fmt == "table" else None)
        sink.render(findings, sys.stdout, meta)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="") as fh:
        sink.render(findings, fh, meta)
    err.print(f"wrote {len(findings)} finding(s) to {out}")


def _exit_code(findings: Sequence[Finding], fail_on: str | None) -> int:
    if fail_on is None:
        return EXIT_OK
    bar = severity_rank(fail_on)
    return EXIT_FINDINGS if any(severity_rank(f.severity) >= bar for f in findings) else EXIT_OK


def hunt_workspace(ws: Workspace, settings: Settings, engine: str = "duckdb",
                   only: Sequence[str] | None = None, spark_master: str | None = None) -> list[Finding]:
    from bothunt import detections
    from bothunt.engine import open_tables

    tables = open_tables(ws, engine, settings.since, settings.until, spark_master)
    with err.status("hunting") as status:
        return detections.run(tables, settings, only,
                              on_start=lambda d: status.update(f"hunting: {d} on {engine}"))


@app.command()
def hunt(
    paths: Annotated[list[Path], typer.Argument(help="Input files, directories, or one workspace.")],
    only: Annotated[str | None, typer.Option("--only", help="Comma-separated detection ids.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, jsonl, csv (and those `formats` lists).")]
    = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write findings here instead of stdout.")]
    = None,
    internal: InternalOpt = None,
    since: Annotated[str | None, typer.Option(help="Only events at or after this ISO 8601 time.")] = None,
    until: Annotated[str | None, typer.Option(help="Only events before this ISO 8601 time.")] = None,
    config: ConfigOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    profile: Annotated[str | None, typer.Option(
        help="Seed profile, e.g. sentinel-kql to reproduce the published Sentinel rules.")] = None,
    workspace: Annotated[Path | None, typer.Option(
        help="Keep the ingested workspace here (raw inputs only; default: a temporary one).")] = None,
    fail_on: Annotated[str | None, typer.Option(
        help=f"Exit 1 when a finding at or above this severity exists ({', '.join(SEVERITIES)}).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No ingest table.")] = False,
) -> None:
    """Find beaconing, floods, relays and DGA / DNS C2 in telemetry; exit 1 with --fail-on."""
    from bothunt import detections
    from bothunt.sinks import get_sink

    if fail_on is not None and fail_on not in SEVERITIES:
        raise BothuntError(f"--fail-on must be one of {', '.join(SEVERITIES)}")
    settings = load_settings(config, internal_networks=internal, since=since, until=until, profile=profile)
    only_ids = [s.strip() for s in only.split(",") if s.strip()] if only else None
    get_sink(fmt)  # reject a bad --format or --only before spending time on ingest
    for det_id in only_ids or ():
        detections.get(det_id)
    with ExitStack() as stack:
        ws = _ingest_or_open(paths, settings, stack, workspace, quiet)
        findings = hunt_workspace(ws, settings, engine, only_ids, spark_master)
        # A temporary workspace is gone when the command ends: pivots then show a WS placeholder.
        kept = workspace is not None or Workspace.is_workspace(paths[0])
        _write(findings, fmt, out, {"workspace": str(ws.root.resolve()) if kept else None, "engine": engine,
                                    "inputs": [str(p) for p in paths]})
    raise typer.Exit(_exit_code(findings, fail_on))


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Input files or directories.")],
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder (created).")],
    internal: InternalOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Parse inputs into the Parquet workspace; re-ingesting the same file adds no rows."""
    settings = load_settings(config, internal_networks=internal)
    report = ingest_paths(list(paths), workspace, settings.internal, progress=sys.stderr.isatty(), console=err)
    _print_ingest(report)
    if report.fatal:
        raise typer.Exit(EXIT_USAGE)


@app.command("detections")
def list_detections(params: Annotated[bool, typer.Option("--params", help="Show every threshold.")] = False
                    ) -> None:
    """List the registered detections, their ATT&CK ids and known false positives."""
    from bothunt import detections
    from bothunt.detections.base import params_doc

    out = Console()
    for det_id in detections.ids():
        mod = detections.get(det_id)
        info = mod.INFO
        out.print(Text(f"{det_id}: {info.title}  [{', '.join(info.techniques)}]", style="bold"))
        out.print(Text(f"  {info.summary}"))
        for fp in info.false_positives:
            out.print(Text(f"  false positive: {fp}", style="dim"))
        if params:
            for name, default, doc in params_doc(mod.Params):
                out.print(Text(f"    {name} = {default!r}: {doc}"))


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"bothunt {__version__}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Usage errors exit 2 (Typer's own handling), BothuntError one line and exit 2."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="bothunt")
    except SystemExit as exc:  # Typer ends every command with sys.exit(code)
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    except BothuntError as exc:
        err.print(Text(f"error: {exc}", style="bold red"))
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("aborted")
        return 130
    return EXIT_OK


# Commands around the hunt live in their own module; importing it registers them on `app`.
from bothunt import cli_extra  # noqa: E402,F401
