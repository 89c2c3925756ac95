"""Output formats. Every sink renders the same Finding records; a plain dict registry by id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import import_module
from typing import Any, Protocol, TextIO

from bothunt.errors import ConfigError
from bothunt.schema import Finding


class Sink(Protocol):
    id: str
    extension: str

    def render(self, findings: Sequence[Finding], out: TextIO, meta: Mapping[str, Any]) -> None: ...


SINKS: dict[str, str] = {
    "table": "bothunt.sinks.table:TableSink",
    "jsonl": "bothunt.sinks.jsonl:JsonlSink",
    "csv": "bothunt.sinks.csv:CsvSink",
    "ocsf": "bothunt.sinks.ocsf:OcsfSink",
    "html": "bothunt.sinks.html:HtmlSink",
}


def get_sink(sink_id: str) -> Sink:
    if sink_id not in SINKS:
        raise ConfigError(f"unknown format {sink_id!r}; choose one of {', '.join(SINKS)}")
    module, cls = SINKS[sink_id].split(":")
    return getattr(import_module(module), cls)()
