"""The data block of the HTML report: findings with their picture, guide values and pivot queries, host
groups, each distinct guide once, and the report's metadata; serialised as JSON that is safe inside a
`<script type="application/json">` element."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bothunt import __version__, guides, hostview, pivots
from bothunt.schema import Finding, sort_findings
from bothunt.sinks import html_plots

EVIDENCE_LIST_CAP = 10  # list items shown in the evidence table (pictures read the full lists)
DRAWN_LIST_CAP = 3  # ... and of a list the picture draws
EVIDENCE_TEXT_CAP = 2000
HOST_RULE = (
    "Findings are grouped by internal host (the attacked host for inbound floods). Combined score: per "
    "detection the strongest finding counts (score x weight: 0 at info, 0.5 when the host was only the target "
    "of an inbound attack, else 1); detections combine by noisy-OR, 1 - prod(1 - s); each further detection "
    "adds corroboration as one more sign of strength 0.15. See docs/report.md."
)
# Inside a JSON string these escapes mean the same characters, and none of them can end the <script>
# element or an HTML comment, start a tag, or (U+2028/2029) end a JavaScript line.
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch, esc in _JSON_ESCAPES.items():
        text = text.replace(ch, esc)
    return text


def plain(value: Any, depth: int = 0, cap: int = EVIDENCE_LIST_CAP) -> Any:
    """JSON-safe evidence for the table: long lists cut (with a note), long strings cut, non-finite
    numbers as null, anything else as its text."""
    if isinstance(value, Mapping):
        if depth > 8:
            return "…"
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain(v, depth + 1) for v in value[:cap]]
        if len(value) > cap:
            items.append(f"… {len(value) - cap} more")
        return items
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    text = str(value)
    return text if len(text) <= EVIDENCE_TEXT_CAP else text[:EVIDENCE_TEXT_CAP] + "…"


def finite(value: Any) -> Any:
    """Non-finite numbers (which JSON cannot carry) as null, everywhere in a picture's panels."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def evidence_table(evidence: Mapping[str, Any], plot: Mapping[str, Any] | None) -> dict[str, Any]:
    """The evidence as the table shows it: lists the picture draws keep only their first items."""
    drawn = set(plot.get("reads", ())) if plot else set()
    return {str(k): plain(v, 1, DRAWN_LIST_CAP if k in drawn else EVIDENCE_LIST_CAP) for k, v in evidence.items()}


def _guide_entry(g: guides.Guide) -> dict[str, Any]:
    return {"summary": g.summary, "sections": [[title, list(lines)] for title, lines in g.sections()]}


def finding_row(f: Finding, workspace: str | None, guide_book: dict[str, Any], lines: dict[str, int]
                ) -> dict[str, Any]:
    """One finding for the page. Pivot queries are lists of indexes into `lines` (distinct lines, shared
    by all findings)."""
    g = guides.guide_for(f)
    if g.key not in guide_book:
        guide_book[g.key] = _guide_entry(g)
    role, _, _ = hostview.entity(f)
    plot = html_plots.plot(f)
    if plot is not None:
        try:
            json.dumps(plot, allow_nan=False)  # the usual case, checked at C speed
        except ValueError:
            plot = finite(plot)
    return {
        "id": f.id, "det": f.detection, "sev": f.severity, "score": round(float(f.score), 4), "title": f.title,
        "first": f.first_seen, "last": f.last_seen, "host": f.host, "src": f.src_ip, "user": f.user,
        "proc": f.process, "dst": f.dst_ip, "port": f.dst_port, "dom": f.domain, "tech": list(f.techniques),
        "expl": f.explanation, "role": role, "ev": evidence_table(f.evidence, plot), "plot": plot,
        "miss": [] if plot else html_plots.missing_keys(f), "g": g.key, "gv": guides.values_for(f, g),
        "pv": [[p.title, p.platform, p.language, [lines.setdefault(x, len(lines)) for x in p.query.split("\n")]]
               for p in pivots.pivots(f, workspace)],
    }


def _meta(meta: Mapping[str, Any], n: int) -> dict[str, Any]:
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"{n} finding(s)", f"generated {generated} by bothunt {__version__}"]
    if meta.get("engine"):
        parts.append(f"engine {meta['engine']}")
    if meta.get("workspace"):
        parts.append(f"workspace {meta['workspace']}")
    inputs = meta.get("inputs")
    if isinstance(inputs, (list, tuple)) and inputs:
        parts.append("inputs " + ", ".join(str(i) for i in inputs[:5]) + (" …" if len(inputs) > 5 else ""))
    return {"title": str(meta.get("title") or "bothunt report"), "line": " · ".join(parts),
            "generated": generated, "version": __version__, "host_rule": HOST_RULE}


def payload(findings: Sequence[Finding], meta: Mapping[str, Any]) -> dict[str, Any]:
    ordered = sort_findings(findings)
    workspace = meta.get("workspace")
    guide_book: dict[str, Any] = {}
    lines: dict[str, int] = {}
    rows = [finding_row(f, workspace, guide_book, lines) for f in ordered]
    index = {id(f): i for i, f in enumerate(ordered)}
    hosts = []
    for hi, g in enumerate(hostview.group(ordered)):
        members = [index[id(f)] for f in g.findings]
        for i in members:
            rows[i]["hk"] = hi
        hosts.append({
            "i": hi, "key": g.key, "label": g.label, "names": g.names, "addresses": g.addresses,
            "score": g.score, "sev": g.severity, "per": g.per_detection, "first": g.first_seen,
            "last": g.last_seen, "findings": members, "detections": g.detections,
            "scored": g.key != hostview.UNATTRIBUTED,
        })
    return {"meta": _meta(meta, len(rows)), "findings": rows, "hosts": hosts, "guides": guide_book,
            "lines": list(lines)}
