"""Measure what moving the main thresholds does, on one simulated organisation, and write
docs/tuning-measured.md.

    python tools/tuning_measure.py                          # writes docs/tuning-measured.md
    python tools/tuning_measure.py --out /tmp/measured.md --keep /tmp/tuning-sim

The simulator runs once, the workspace is ingested once and the tables are opened once; then each
detection runs at its defaults and with one threshold moved at a time (one value below the default, one
above), and every run is scored with bothunt.evaluate against the simulator's truth. Detections are
called directly (no enrichment), which does not change severities, so the scores are those of a hunt.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "tuning-measured.md"

SIM = {"seed": 5, "hosts": 60, "days": 1.0, "scale": 0.5}
FMT = "zeek"

# detection -> (setting, lower value, higher value): the settings the tuning guide calls the main ones. A
# first sweep at about half / double the defaults changed nothing on this run (the planted attacks sit far
# above the thresholds), so the values are spread wider, to where the first effects appear.
SWEEPS: dict[str, tuple[tuple[str, Any, Any], ...]] = {
    "beacon": (("max_p_value", 1e-7, 1e-1), ("min_connections", 3, 20), ("min_regularity", 0.0, 0.85)),
    "inbound_flood": (("deviation", 3.0, 12.0), ("min_sources", 5, 300), ("floor_sources", 5, 200)),
    "relay": (("window_seconds", 1.0, 60.0), ("max_p_value", 1e-8, 1e-1), ("min_pairs", 1, 20)),
    "dga": (("min_failed", 1, 30), ("min_high_names", 2, 40), ("burst_min_names", 2, 40)),
    "dns_c2": (("tunnel_min_unique", 10, 1000), ("tunnel_min_length", 8.0, 50.0), ("flux_min_ips", 6, 50),
               ("periodic_max_p_value", 1e-10, 1e-1)),
}


@dataclass(frozen=True)
class Run:
    """One detection run scored against the truth (findings at low and above)."""
    detection: str
    setting: str | None  # None: every setting at its default
    value: Any
    truth: int
    matched: int
    findings: int
    true_positives: int
    trap_hits: int  # findings at medium+ that match a benign trap and no attack
    traps: tuple[str, ...]
    medium: int  # findings at medium or above
    seconds: float

    @property
    def false_positives(self) -> int:
        return self.findings - self.true_positives

    @property
    def recall(self) -> float | None:
        return self.matched / self.truth if self.truth else None

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.findings if self.findings else None


@dataclass
class Measurement:
    when: str
    sim_seconds: float
    ingest_seconds: float
    defaults: dict[str, dict[str, Any]]
    runs: dict[str, list[Run]]  # detection -> default run first, then the sweep
    allowlist: tuple[Run, Run]  # beacon with the built-in known_services, then with none


def prepare(work: Path) -> tuple[Any, list[Any], Any, float, float]:
    """Simulate, ingest and open the tables once: (tables, truth, settings, sim seconds, ingest seconds)."""
    from bothunt import engine, evaluate, ingest, simulate, workspace
    from bothunt.config import load_settings
    from bothunt.simulate.intel import intel_config

    data, ws = work / "data", work / "workspace"
    t0 = time.perf_counter()
    simulate.run(data, seed=SIM["seed"], hosts=SIM["hosts"], days=SIM["days"], scale=SIM["scale"],
                 formats=(FMT,))
    t1 = time.perf_counter()
    ingest.ingest_paths([data / FMT], ws)
    t2 = time.perf_counter()
    tables = engine.open_tables(workspace.Workspace.open(ws), "duckdb")
    # The intel files the simulator writes, as `bothunt demo` uses them (fast flux reads networks from them).
    settings = load_settings(None).replace(intel=intel_config(data))
    return tables, evaluate.load_truth(data / "truth.jsonl"), settings, t1 - t0, t2 - t1


def run_one(tables: Any, truth: list[Any], settings: Any, det: str, setting: str | None, value: Any) -> Run:
    from bothunt import detections, evaluate
    from bothunt.schema import severity_rank

    module = detections.get(det)
    t0 = time.perf_counter()
    findings = module.detect(tables, settings)
    seconds = time.perf_counter() - t0
    report = evaluate.evaluate(findings, truth, min_severity="low", fmt=FMT)
    score = report.detections.get(det, evaluate.DetectionScore(det))
    medium = sum(1 for f in findings if severity_rank(f.severity) >= severity_rank("medium"))
    traps = tuple(sorted({t.truth_id for t in report.trap_hits}))
    return Run(det, setting, value, score.truth, score.matched, score.findings, score.true_positives,
               score.trap_hits, traps, medium, seconds)


def measure(work: Path, only: Sequence[str] | None = None) -> Measurement:
    from bothunt import detections
    from bothunt.config import Allowlist

    tables, truth, settings, sim_s, ingest_s = prepare(work)
    runs: dict[str, list[Run]] = {}
    defaults: dict[str, dict[str, Any]] = {}
    for det in detections.ids():
        if det not in SWEEPS or (only and det not in only):
            continue
        params = settings.params(detections.get(det).Params, det)
        defaults[det] = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
        runs[det] = [run_one(tables, truth, settings, det, None, None)]
        for setting, low, high in SWEEPS[det]:
            if setting not in defaults[det]:
                raise SystemExit(f"{det} has no setting {setting!r}: update SWEEPS")
            if not low < defaults[det][setting] < high:
                raise SystemExit(f"{det}.{setting}: sweep values must bracket the default")
            for value in (low, high):
                moved = settings.replace(detections={det: {setting: value}})
                runs[det].append(run_one(tables, truth, moved, det, setting, value))
        print(f"{det}: {len(runs[det])} runs", file=sys.stderr)
    bare = settings.replace(allowlist=Allowlist(known_services=()))
    allow = (run_one(tables, truth, settings, "beacon", None, None),
             run_one(tables, truth, bare, "beacon", "allowlist.known_services", "()"))
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    return Measurement(when, sim_s, ingest_s, defaults, runs, allow)


# ---- rendering -------------------------------------------------------------------------------------------


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def fmt_value(value: Any) -> str:
    if isinstance(value, float) and value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        return f"{value:.0e}".replace("e-0", "e-")
    return str(value)


def row(run: Run, value: str) -> str:
    traps = ", ".join(run.traps) or ""
    return (f"| {value} | {run.matched}/{run.truth} ({pct(run.recall)}) | {pct(run.precision)} | {run.findings} "
            f"| {run.false_positives} | {run.trap_hits} | {traps} | {run.seconds:.1f} |")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("s" if n != 1 else "")


def clause(base: Run, run: Run, setting: str) -> str:
    parts = []
    d_rec, d_fp = run.matched - base.matched, run.false_positives - base.false_positives
    d_trap, d_tp = run.trap_hits - base.trap_hits, run.true_positives - base.true_positives
    if d_rec:
        parts.append(f"{'loses' if d_rec < 0 else 'gains'} {abs(d_rec)} of {base.truth} planted attacks "
                     f"(recall {pct(run.recall)})")
    if d_fp:
        parts.append(f"{'adds' if d_fp > 0 else 'removes'} {plural(abs(d_fp), 'false positive')}")
    if d_trap:
        parts.append(f"{'adds' if d_trap > 0 else 'removes'} {plural(abs(d_trap), 'benign-trap hit')} at medium+")
    if d_tp and not d_rec:
        parts.append(f"reports the same attacks as {run.true_positives} findings instead of {base.true_positives}")
    said = ", ".join(parts) if parts else "changes nothing here"
    return f" `{setting}` to {fmt_value(run.value)} {said}"


def reading(base: Run, low: Run, high: Run, setting: str) -> str:
    return "lowering" + clause(base, low, setting) + "; raising" + clause(base, high, setting) + "."


HEADER = ("| value | recall (found/planted) | precision | findings (low+) | false positives | "
          "trap hits (medium+) | traps hit | seconds |")
RULE = "|---|---|---|---|---|---|---|---|"


def render(m: Measurement) -> str:
    lines = [
        "# Tuning, measured on the simulator",
        "",
        f"Generated by `python tools/tuning_measure.py` on {m.when}. Do not edit by hand: re-run the script.",
        "",
        f"Simulator run: seed {SIM['seed']}, {SIM['hosts']} hosts, {SIM['days']:g} day, scale {SIM['scale']:g}, "
        f"format `{FMT}` (simulated in {m.sim_seconds:.0f} s, ingested in {m.ingest_seconds:.0f} s); engine "
        "duckdb. Each detection ran at its defaults and then with one setting moved at a time; every other "
        "setting stayed at its default.",
        "",
        "How to read the tables: *recall* is planted attacks of that detection matched by a finding at low "
        "or above; *precision* is the share of those findings that match an attack; *false positives* are the "
        "other findings at low or above (all background in simulated data); *trap hits* are false positives "
        "at medium or above that fell into one of the simulator's benign traps (the ones a person would be "
        "paged for), named in *traps hit*. *seconds* is the time of one detect call on a busy 2-core machine.",
        "",
        "One simulated day of 60 hosts is small: a change that does nothing here can still matter on a large "
        "network or over a week. Treat the readings as the direction and rough size of an effect.",
        "",
        "## Summary at the defaults",
        "",
        "| detection | recall | precision | findings (low+) | false positives | trap hits (medium+) | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for det, runs in m.runs.items():
        b = runs[0]
        lines.append(f"| {det} | {b.matched}/{b.truth} ({pct(b.recall)}) | {pct(b.precision)} | {b.findings} "
                     f"| {b.false_positives} | {b.trap_hits} | {b.seconds:.1f} |")
    for det, runs in m.runs.items():
        base = runs[0]
        lines += ["", f"## {det}", ""]
        for i, (setting, _, _) in enumerate(SWEEPS[det]):
            low, high = runs[1 + 2 * i], runs[2 + 2 * i]
            default = m.defaults[det][setting]
            lines += [f"### `{setting}` (default {fmt_value(default)})", "", HEADER, RULE,
                      row(low, fmt_value(low.value)), row(base, f"**{fmt_value(default)}** (default)"),
                      row(high, fmt_value(high.value)), ""]
            lines.append("Reading: " + reading(base, low, high, setting))
            lines.append("")
    with_list, without = m.allowlist
    lines += [
        "", "## Allow-list effect: beacon with and without `allowlist.known_services`", "",
        "The built-in list names monitoring, telemetry, update and licence services; a finding whose "
        "destination matches it drops to info and names the entry. Emptying the list "
        "(`allowlist: {known_services: []}`) shows what it is worth.", "",
        "| known_services | findings (medium+) | findings (low+) | false positives | trap hits (medium+) "
        "| traps hit | recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in (("built-in (default)", with_list), ("empty", without)):
        lines.append(f"| {label} | {r.medium} | {r.findings} | {r.false_positives} | {r.trap_hits} "
                     f"| {', '.join(r.traps)} | {r.matched}/{r.truth} |")
    d_trap, d_med = without.trap_hits - with_list.trap_hits, without.medium - with_list.medium
    recall = (f"recall stays {pct(with_list.recall)}" if with_list.matched == without.matched
              else f"recall moves from {pct(with_list.recall)} to {pct(without.recall)}")
    lines += ["", f"Reading: emptying `known_services` adds {plural(d_trap, 'benign-trap hit')} and "
              f"{plural(d_med, 'finding')} at medium or above; {recall}.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown file to write.")
    ap.add_argument("--keep", type=Path, default=None,
                    help="Directory for the simulated data and workspace (default: a temporary one).")
    ap.add_argument("--only", nargs="*", default=None, help="Detections to measure (default: all swept).")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        m = measure(args.keep, args.only)
    else:
        with tempfile.TemporaryDirectory(prefix="bothunt-tuning-") as tmp:
            m = measure(Path(tmp), args.only)
    args.out.write_text(render(m))
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
