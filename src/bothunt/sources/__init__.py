"""Input formats. One module per format; this registry sniffs a file's content to pick one."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from bothunt.errors import UnknownFormatError
from bothunt.sources.base import Batch, ReadContext, Source, read_head

# id -> "module:Class". A plain dict, so config and the CLI can name sources by id.
_SOURCES: dict[str, str] = {
    "zeek": "bothunt.sources.zeek:ZeekSource",
    "defender": "bothunt.sources.defender:DefenderSource",
    "cef": "bothunt.sources.cef:CefSource",
    "commonsecuritylog": "bothunt.sources.commonsecuritylog:CommonSecurityLogSource",
    "suricata": "bothunt.sources.suricata:SuricataSource",
    "argus": "bothunt.sources.argus:ArgusSource",
}

__all__ = ["Batch", "ReadContext", "Source", "all_sources", "get_source", "sniff"]


def get_source(source_id: str) -> Source:
    if source_id not in _SOURCES:
        raise UnknownFormatError(f"unknown source {source_id!r}; known: {', '.join(_SOURCES)}")
    module, cls = _SOURCES[source_id].split(":")
    return getattr(import_module(module), cls)()


def all_sources() -> list[Source]:
    return [get_source(s) for s in _SOURCES]


def sniff(path: Path) -> Source:
    """Pick the source whose sniffer is most confident about the file's content."""
    head = read_head(path)
    if not head.strip():
        raise UnknownFormatError("file is empty", file=str(path))
    scored = sorted(((src.sniff(head, path), src.id, src) for src in all_sources()), key=lambda t: -t[0])
    best_score, _, best = scored[0]
    if best_score <= 0:
        from bothunt.sources.hints import near_miss  # imports the tabular sources: only on failure

        tried = ", ".join(f"{s.id} ({s.description})" for _, _, s in scored)
        hint = near_miss(head)
        lead = f"not a telemetry format bothunt reads: {hint}" if hint else "not a telemetry format bothunt reads"
        raise UnknownFormatError(f"{lead}; tried: {tried}", file=str(path))
    return best
