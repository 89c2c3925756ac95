"""Score findings against the simulator's ground truth (`truth.jsonl`).

Matching rule. A finding F matches a truth item T when all of these hold:

1. ``F.detection == T.detection``;
2. the finding's span ``[F.first_seen, F.last_seen]`` overlaps ``[T.start, T.end]`` (a finding without
   times is taken to overlap; a finding with only one time uses it for both ends);
3. for every key ``k`` in ``T.match``, the finding has a value for ``k`` and it equals ``T.match[k]``;
4. for every key ``k`` in ``T.match_optional`` for which the finding *has* a value, that value equals
   ``T.match_optional[k]`` (these are entities only some telemetry carries, such as the process or the
   device name on Defender: a network sensor's finding without them still matches, a Defender finding
   naming another process does not).

Equality: a list in the truth means "any of these"; ``domain`` compares case-insensitively and also
accepts a subdomain (truth ``example.com`` matches finding ``a.b.example.com``); ``host`` and
``process`` compare case-insensitively and ``host`` also accepts the short name of an FQDN; ports and
other numbers compare as integers; everything else compares as exact strings.

Scores, per detection, over findings at ``min_severity`` or above and over the truth items observable in
the evaluated format (``fmt``; all items when None):

- recall = attack items matched by at least one finding / attack items;
- precision = findings that match at least one attack item / findings (in simulated data everything
  that is not planted is background, so any other finding is a false positive);
- trap hits = findings at ``medium`` or above that match a benign trap and no attack: the false positives
  a person would be paged for, named by the trap they fell into.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from bothunt.schema import Finding, severity_rank
from bothunt.simulate.truth import TruthItem, load_truth

__all__ = ["DetectionScore", "EvalReport", "TrapHit", "evaluate", "load_findings", "load_truth", "matches",
           "render_rich"]

TRAP_SEVERITY = "medium"


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _equal(key: str, want: Any, got: Any) -> bool:
    if isinstance(want, (list, tuple, set, frozenset)):
        return any(_equal(key, w, got) for w in want)
    if key == "domain":
        w, g = str(want).lower().rstrip("."), str(got).lower().rstrip(".")
        return g == w or g.endswith("." + w)
    if key in ("host", "process"):
        w, g = str(want).lower(), str(got).lower()
        if key == "host" and w != g:
            return w.split(".", 1)[0] == g.split(".", 1)[0] and ("." not in w or "." not in g)
        return w == g
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        try:
            return int(got) == int(want)
        except (TypeError, ValueError):
            return False
    return str(want) == str(got)


def matches(finding: Finding, item: TruthItem) -> bool:
    """Whether a finding matches a truth item (the rule in this module's docstring)."""
    if finding.detection != item.detection:
        return False
    first, last = _time(finding.first_seen), _time(finding.last_seen)
    first, last = first or last, last or first
    if first is not None and last is not None:
        start, end = _time(item.start), _time(item.end)
        if (end is not None and first > end) or (start is not None and last < start):
            return False
    for key, want in item.match.items():
        got = getattr(finding, key, None)
        if got is None or not _equal(key, want, got):
            return False
    for key, want in item.match_optional.items():
        got = getattr(finding, key, None)
        if got is not None and not _equal(key, want, got):
            return False
    return True


@dataclass
class DetectionScore:
    detection: str
    truth: int = 0
    matched: int = 0
    findings: int = 0
    true_positives: int = 0
    trap_hits: int = 0

    @property
    def recall(self) -> float | None:
        return self.matched / self.truth if self.truth else None

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.findings if self.findings else None


@dataclass(frozen=True)
class TrapHit:
    finding_id: str
    truth_id: str
    detection: str
    severity: str
    title: str


@dataclass
class EvalReport:
    min_severity: str
    fmt: str | None
    detections: dict[str, DetectionScore] = field(default_factory=dict)
    matched_ids: list[str] = field(default_factory=list)
    missed_ids: list[str] = field(default_factory=list)
    trap_hits: list[TrapHit] = field(default_factory=list)
    false_positive_ids: list[str] = field(default_factory=list)  # findings matching no attack item

    @property
    def recall(self) -> float | None:
        truth = sum(d.truth for d in self.detections.values())
        return sum(d.matched for d in self.detections.values()) / truth if truth else None

    @property
    def precision(self) -> float | None:
        n = sum(d.findings for d in self.detections.values())
        return sum(d.true_positives for d in self.detections.values()) / n if n else None

    def passes(self, min_recall: float, min_precision: float, per_detection: bool = False) -> bool:
        """Overall recall and precision (micro-averaged) reach the minimums; with `per_detection`, every
        detection that has planted attacks reaches `min_recall` and every one with findings reaches
        `min_precision`. No truth counts as recall 1, no findings as precision 1."""
        if per_detection:
            return all((d.recall is None or d.recall >= min_recall) and
                       (d.precision is None or d.precision >= min_precision) for d in self.detections.values())
        recall = 1.0 if self.recall is None else self.recall
        precision = 1.0 if self.precision is None else self.precision
        return recall >= min_recall and precision >= min_precision

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_severity": self.min_severity, "format": self.fmt, "recall": self.recall,
            "precision": self.precision,
            "detections": {k: {"truth": d.truth, "matched": d.matched, "findings": d.findings,
                               "true_positives": d.true_positives, "trap_hits": d.trap_hits,
                               "recall": d.recall, "precision": d.precision} for k, d in self.detections.items()},
            "matched": self.matched_ids, "missed": self.missed_ids,
            "trap_hits": [vars(t) for t in self.trap_hits], "false_positives": self.false_positive_ids,
        }


def evaluate(findings: Iterable[Finding], truth: Sequence[TruthItem], min_severity: str = "low",
             fmt: str | None = None) -> EvalReport:
    """Score findings against truth (see the module docstring for the rule and the measures)."""
    floor = severity_rank(min_severity)
    kept = [f for f in findings if severity_rank(f.severity) >= floor]
    items = [t for t in truth if fmt is None or fmt in t.formats]
    attacks = [t for t in items if t.kind == "attack"]
    traps = [t for t in items if t.kind == "benign"]
    report = EvalReport(min_severity, fmt)

    def score(det: str) -> DetectionScore:
        return report.detections.setdefault(det, DetectionScore(det))

    for t in attacks:
        score(t.detection).truth += 1
    hit: set[str] = set()
    trap_floor = severity_rank(TRAP_SEVERITY)
    for f in kept:
        s = score(f.detection)
        s.findings += 1
        found = [t.id for t in attacks if matches(f, t)]
        if found:
            s.true_positives += 1
            hit.update(found)
            continue
        report.false_positive_ids.append(f.id)
        if severity_rank(f.severity) >= trap_floor:
            trap = next((t for t in traps if matches(f, t)), None)
            if trap is not None:
                s.trap_hits += 1
                report.trap_hits.append(TrapHit(f.id, trap.id, f.detection, f.severity, f.title))
    for t in attacks:
        (report.matched_ids if t.id in hit else report.missed_ids).append(t.id)
        if t.id in hit:
            score(t.detection).matched += 1
    return report


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def render_rich(report: EvalReport) -> Table:
    """A table a person reads: one row per detection, then the total."""
    title = f"Evaluation against ground truth (severity >= {report.min_severity}"
    title += f", format {report.fmt})" if report.fmt else ")"
    table = Table(title=title)
    for name, justify in (("detection", "left"), ("planted", "right"), ("found", "right"), ("missed", "right"),
                          ("findings", "right"), ("true pos.", "right"), ("trap hits", "right"),
                          ("recall", "right"), ("precision", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for det in sorted(report.detections):
        d = report.detections[det]
        table.add_row(det, str(d.truth), str(d.matched), str(d.truth - d.matched), str(d.findings),
                      str(d.true_positives), str(d.trap_hits), _pct(d.recall), _pct(d.precision))
    total = list(report.detections.values())
    table.add_section()
    table.add_row("[b]all[/b]", str(sum(d.truth for d in total)), str(sum(d.matched for d in total)),
                  str(len(report.missed_ids)), str(sum(d.findings for d in total)),
                  str(sum(d.true_positives for d in total)), str(len(report.trap_hits)),
                  _pct(report.recall), _pct(report.precision))
    if report.missed_ids:
        table.caption = "missed: " + ", ".join(report.missed_ids)
    return table


def load_findings(rows: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Findings from JSON objects (one per line of a findings .jsonl)."""
    return [Finding.from_dict(r) for r in rows]
