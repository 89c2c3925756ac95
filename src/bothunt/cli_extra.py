"""Commands around the hunt: simulate, eval, demo, netclass, formats. Registered on the main app."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from bothunt.cli import EXIT_FINDINGS, ConfigOpt, _print_ingest, _write, app, err, hunt_workspace
from bothunt.config import load_settings
from bothunt.errors import BothuntError
from bothunt.ingest import ingest_paths
from bothunt.workspace import Workspace

SIM_FORMATS = ("zeek", "zeek-json", "defender", "cef", "suricata")


def _simulate(out: Path, seed: int, hosts: int, days: float, scale: float, formats: list[str],
              scenarios: list[str] | None = None):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from bothunt import simulate

    bad = [f for f in formats if f not in SIM_FORMATS]
    if bad:
        raise BothuntError(f"unknown simulator format(s) {bad}; choose from {', '.join(SIM_FORMATS)}")
    with Progress(TextColumn("[bold]simulate[/]"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("", total=None)
        return simulate.run(out, seed=seed, hosts=hosts, days=days, scale=scale, formats=formats,
                            scenarios=scenarios,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))


def _sim_summary(rep) -> str:  # type: ignore[no-untyped-def]
    per_fmt = ", ".join(f"{f}: {rep.total(f):,} conn / {rep.total_dns(f):,} dns" for f in rep.formats)
    return (f"simulated {rep.hosts} hosts, {rep.start} .. {rep.end} in {rep.elapsed_s:.1f}s; {per_fmt}; "
            f"{rep.attacks} planted attacks and {rep.traps} benign traps in {rep.truth_path}")


@app.command("simulate")
def simulate_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (one sub-folder per format).")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 7,
    hosts: Annotated[int, typer.Option(help="Internal hosts.")] = 200,
    days: Annotated[float, typer.Option(help="Days of telemetry.")] = 1.0,
    scale: Annotated[float, typer.Option(help="Multiplies background volume (100M events needs ~150).")] = 1.0,
    formats: Annotated[str, typer.Option(help=f"Comma-separated: {', '.join(SIM_FORMATS)}.")] = "zeek",
    scenario: Annotated[list[str] | None, typer.Option(
        "--scenario", help="Plant only these attacks, by id (beacon-04) or family (beacon, dga, ...); repeatable."
    )] = None,
) -> None:
    """Write synthetic enterprise telemetry with planted botnet activity and truth.jsonl."""
    rep = _simulate(out, seed, hosts, days, scale, [f.strip() for f in formats.split(",") if f.strip()],
                    scenario or None)
    err.print(_sim_summary(rep))


@app.command("eval")
def eval_cmd(
    findings: Annotated[Path, typer.Argument(help="Findings as JSON Lines (bothunt hunt --format jsonl).",
                                             exists=True, dir_okay=False)],
    truth: Annotated[Path, typer.Option("--truth", help="truth.jsonl from bothunt simulate.", exists=True)],
    min_recall: Annotated[float | None, typer.Option(help="Exit 1 when a detection's recall is lower.")] = None,
    min_precision: Annotated[float | None, typer.Option(help="Exit 1 when a detection's precision is lower.")]
    = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Only truth items observable in this format.")]
    = None,
) -> None:
    """Precision, recall and benign-trap hits per detection against simulator ground truth."""
    from bothunt import evaluate
    from bothunt.sinks.jsonl import read_findings

    report = evaluate.evaluate(read_findings(findings), evaluate.load_truth(truth), fmt=fmt)
    Console().print(evaluate.render_rich(report))
    # A bar not given is no bar; a given one applies to every detection, as the options' help says.
    if not report.passes(min_recall or 0.0, min_precision or 0.0, per_detection=True):
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where simulated data and reports go.")]
    = Path("demo-out"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    hosts: Annotated[int, typer.Option(help="Internal hosts.")] = 150,
    engine: Annotated[str, typer.Option(help="duckdb or spark.")] = "duckdb",
) -> None:
    """Simulate an organisation-day, hunt it, print findings and the evaluation, write the reports."""
    from bothunt import evaluate
    from bothunt.sinks import SINKS
    from bothunt.sinks.table import findings_table

    t0 = time.perf_counter()
    data = out / "data"
    rep = _simulate(data, seed, hosts, 1.0, 1.0, ["zeek", "defender"])
    err.print(_sim_summary(rep))
    truth = evaluate.load_truth(data / "truth.jsonl")
    from bothunt.simulate.intel import intel_config

    settings = load_settings(None).replace(intel=intel_config(data))
    console = Console()
    for view in ("zeek", "defender"):
        ws_dir = out / f"workspace-{view}"
        ingest = ingest_paths([data / view], ws_dir, settings.internal, progress=True, console=err)
        _print_ingest(ingest, quiet=True)
        findings = hunt_workspace(Workspace.open(ws_dir), settings, engine)
        for fmt in [s for s in SINKS if s != "table"]:
            _write(findings, fmt, out / f"findings-{view}{_ext(fmt)}",
                   {"title": f"bothunt demo ({view})", "workspace": str(ws_dir)})
        console.rule(f"{view} view: {len(findings)} finding(s)")
        console.print(findings_table([f for f in findings if f.severity != "info"], limit=40))
        console.print(evaluate.render_rich(evaluate.evaluate(findings, truth, fmt=view)))
    err.print(f"demo finished in {time.perf_counter() - t0:.0f}s; outputs in {out}")


def _ext(fmt: str) -> str:
    from bothunt.sinks import get_sink

    return get_sink(fmt).extension


@app.command()
def netclass(
    ips: Annotated[list[str], typer.Argument(help="Addresses to classify.")],
    config: ConfigOpt = None,
) -> None:
    """Who is on the other end: cloud, hosting, CDN, residential, mobile, Tor, private; with the data
    file that decided it and its age."""
    from bothunt.netclass import intel

    settings = load_settings(config)
    rows = intel.classify_cli_rows(ips, intel.IntelSettings.from_mapping(settings.intel))
    out = Console()
    warnings: list[str] = []
    for r in rows:
        asn = f"AS{r['asn']} {r.get('as_name') or ''}".strip() if r.get("asn") else ""
        line = "  ".join(x for x in (r["ip"], r["net_class"], asn, r.get("country") or "") if x)
        out.print(Text(line, style="bold"))
        source = r.get("decided_by") or "-"
        if r.get("source_date"):
            source += f" (dated {r['source_date']}, {r.get('source_age_days')} days old)"
        out.print(Text(f"  decided by {source}" + (f"; {r['detail']}" if r.get("detail") else "")))
        if r.get("warnings") and r["warnings"] not in warnings:
            warnings.append(r["warnings"])
    for w in warnings:
        err.print(Text(f"warning: {w}", style="yellow"))


@app.command()
def formats() -> None:
    """List the input formats bothunt reads and the output formats it writes."""
    from bothunt.sinks import SINKS
    from bothunt.sources import all_sources

    out = Console()
    for s in all_sources():
        out.print(Text(f"input  {s.id:18} {s.description}"))
    for sid in SINKS:
        out.print(Text(f"output {sid}"))
