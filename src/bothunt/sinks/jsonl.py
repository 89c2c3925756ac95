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
            out.write(one_line(json.dumps(f.to_dict(), ensure_ascii=False, sort_keys=False)) + "\n")


# JSON allows these raw inside strings, but str.splitlines() and some log shippers break lines at them,
# which would cut one finding in two. Escaping keeps one finding a line for every reader.
_LINE_BREAKERS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\u0085": "\\u0085"}


def one_line(text: str) -> str:
    for raw, escaped in _LINE_BREAKERS.items():
        text = text.replace(raw, escaped)
    return text


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
