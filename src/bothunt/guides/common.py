"""Values every guide can use, and the small formatters the per-detection modules share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bothunt.schema import Finding

# What a sentence says when the finding lacks the entity: still a readable sentence.
FALLBACK: dict[str, str] = {
    "host": "the host", "src_ip": "the host's address", "who": "the host", "user": "the signed-in user",
    "process": "the process (this telemetry does not name it)", "cmdline": "(not recorded)",
    "dst_ip": "the remote address", "dst_port": "the port", "domain": "the domain",
    "destination": "the destination", "first_seen": "the first event", "last_seen": "the last event",
    "service": "the service", "target": "the internal host", "attacker": "the source address",
    "title": "This finding", "period": "a steady interval", "jitter": "little", "span": "the data",
    "connections": "Many", "failed": "some", "dst_ips": "see the evidence", "prevalence": "see the evidence",
    "fleet_hosts": "Many", "processes": "see the evidence", "hosts_sample": "see the evidence",
    "sources": "Many", "attempts": "many", "top_sources": "see the evidence", "outcomes": "see the evidence",
    "operator_count": "one or more", "target_count": "one or more", "operators": "see the evidence",
    "targets": "see the evidence", "inbound_ports": "see the evidence", "failed_domains": "many",
    "bursts": "one or more", "sample_names": "see the evidence", "live_c2": "none found",
    "unique_names": "many", "queries": "many", "sub_length": "many", "encoded": "an unknown number of",
    "addresses": "many", "networks": "many", "ttl": "a few seconds", "sample_addresses": "see the evidence",
    "resolvers": "internal hosts", "names": "one name",
}


def clip(value: str, limit: int) -> str:
    value = " ".join(str(value).split())  # newlines and tabs in attacker text would break the list layout
    return value if len(value) <= limit else value[: limit - 1] + "…"


def dur(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return ""
    if s != s:
        return ""
    if s < 90:
        return f"{s:.3g} s"
    if s < 5400:
        return f"{s / 60:.3g} min"
    if s < 172800:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} days"


def pct(share: Any) -> str:
    try:
        return f"{100 * float(share):.0f}%"
    except (TypeError, ValueError):
        return ""


def listing(items: Iterable[Any], limit: int = 5) -> str:
    vals = [str(x) for x in items if x not in (None, "")]
    more = len(vals) - limit
    text = ", ".join(vals[:limit])
    return text + (f" and {more} more" if more > 0 else "")


def top_values(entries: Any, key: str = "value", limit: int = 5) -> str:
    """`[{value: x, ...}, ...]` or `[x, ...]` as a short list."""
    if not isinstance(entries, list):
        return ""
    return listing([e.get(key) if isinstance(e, Mapping) else e for e in entries], limit)


def values(f: Finding) -> dict[str, str]:
    ev = f.evidence or {}
    destination = f.domain or (f"{f.dst_ip}:{f.dst_port}" if f.dst_ip and f.dst_port is not None else f.dst_ip)
    out = {
        "id": f.id, "detection": f.detection, "title": f.title, "severity": f.severity,
        "score": f"{float(f.score):.2f}", "host": f.host, "src_ip": f.src_ip, "who": f.host or f.src_ip,
        "user": f.user or ev.get("user"), "process": f.process,
        "cmdline": ev.get("cmdline_sample") or ev.get("cmdline"), "dst_ip": f.dst_ip,
        "dst_port": None if f.dst_port is None else str(f.dst_port), "domain": f.domain,
        "destination": destination, "first_seen": f.first_seen, "last_seen": f.last_seen,
        "techniques": ", ".join(f.techniques),
    }
    return {k: str(v) for k, v in out.items() if v not in (None, "")}
