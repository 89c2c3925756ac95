"""What every detection module provides, and small helpers they share.

A detection module exports `INFO` (a DetectionInfo: ATT&CK mapping, known false positives, triage
notes, references), `Params` (a frozen dataclass of its thresholds, each field with a `doc` in its
metadata) and `detect(tables, settings) -> list[Finding]`. It does no I/O and knows nothing of formats.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bothunt.schema import SEVERITIES, Finding


@dataclass(frozen=True)
class DetectionInfo:
    id: str
    title: str
    techniques: tuple[str, ...]
    summary: str
    false_positives: tuple[str, ...]
    triage: tuple[str, ...] = ()
    references: tuple[str, ...] = ()


def param(default: Any, doc: str) -> Any:
    """A Params field with its documented default (`bothunt detections --params` prints the docs)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple or frozenset for collection defaults")
    return field(default=default, metadata={"doc": doc})


def params_doc(cls: type) -> list[tuple[str, Any, str]]:
    return [(f.name, f.default, f.metadata.get("doc", "")) for f in dataclasses.fields(cls)]


def severity_from_score(score: float, cuts: Sequence[float] = (0.2, 0.4, 0.65, 0.85)) -> str:
    """Map a 0..1 score to a severity with four ascending cut points (low, medium, high, critical)."""
    level = sum(score >= c for c in cuts)
    return SEVERITIES[level]


def lower_severity(severity: str, steps: int = 1) -> str:
    return SEVERITIES[max(0, SEVERITIES.index(severity) - steps)]


def allowlisted(finding: Finding, hits: Sequence[str]) -> Finding:
    """Keep an allow-listed finding visible at `info`, naming every entry that changed the verdict."""
    if not hits:
        return finding
    evidence = dict(finding.evidence)
    evidence["allowlisted_by"] = list(hits)
    evidence["severity_before_allowlist"] = finding.severity
    return dataclasses.replace(
        finding,
        severity="info",
        evidence=evidence,
        explanation=finding.explanation + f" Lowered to info by allow-list entries: {', '.join(hits)}.",
    )
