"""Terminal table with Rich. Attacker-written text is passed as Text, never parsed as Rich markup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bothunt.schema import Finding

SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow",
                  "low": "cyan", "info": "dim"}


def findings_table(findings: Sequence[Finding], limit: int | None = None) -> Table:
    t = Table(title=f"{len(findings)} finding(s)", show_lines=False, header_style="bold")
    for col in ("sev", "score", "detection", "internal", "remote", "title"):
        t.add_column(col, overflow="fold")
    for f in findings[:limit] if limit else findings:
        internal = " / ".join(x for x in (f.host, f.src_ip, f.process) if x) or "-"
        remote = f.domain or f.dst_ip or "-"
        if f.dst_port is not None:
            remote = f"{remote}:{f.dst_port}"
        t.add_row(Text(f.severity, style=SEVERITY_STYLE[f.severity]), f"{f.score:.2f}", Text(f.detection),
                  Text(internal), Text(remote), Text(f.title))
    if limit and len(findings) > limit:
        t.caption = f"{len(findings) - limit} more not shown (use --format jsonl or --out)"
    return t


class TableSink:
    id = "table"
    extension = ".txt"

    def render(self, findings: Sequence[Finding], out: TextIO, meta: Mapping[str, Any]) -> None:
        console = Console(file=out, width=meta.get("width") or 160, force_terminal=meta.get("color", False))
        console.print(findings_table(findings, meta.get("limit")))
