"""JSON Lines: the primary output, one finding a line, in the DESIGN.md schema."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from bothunt.errors import InputError
from bothunt.schema import Finding


class JsonlSink:
    id = "jsonl"
    extension = ".jsonl"

    def render(self, findings: Sequence[Finding], out: TextIO, meta: Mapping[str, Any]) -> None:
        for f in findings:
            out.write(json.dumps(f.to_dict(), ensure_ascii=False, sort_keys=False) + "\n")


def read_findings(path: Path) -> list[Finding]:
    """Findings back from a JSONL file (for `bothunt eval` and report re-rendering)."""
    findings = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                findings.append(Finding.from_dict(json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise InputError(f"not a bothunt finding: {exc}", file=str(path), line=n) from exc
    return findings
