"""Detection registry: a plain dict of id -> module, so config and the CLI name detections by id."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import import_module
from types import ModuleType

from bothunt.config import Settings
from bothunt.engine import Tables
from bothunt.errors import ConfigError
from bothunt.schema import Finding, sort_findings

# id -> module path. Each module exports INFO, Params and detect(tables, settings).
DETECTIONS: dict[str, str] = {
    "beacon": "bothunt.detections.beacon",
    "inbound_flood": "bothunt.detections.inbound_flood",
    "relay": "bothunt.detections.relay",
    "dga": "bothunt.detections.dga",
    "dns_c2": "bothunt.detections.dns_c2",
}


def ids() -> list[str]:
    return list(DETECTIONS)


def get(detection_id: str) -> ModuleType:
    if detection_id not in DETECTIONS:
        known = ", ".join(DETECTIONS) or "(none registered)"
        raise ConfigError(f"unknown detection {detection_id!r}; known: {known}")
    return import_module(DETECTIONS[detection_id])


def run(tables: Tables, settings: Settings, only: Iterable[str] | None = None,
        on_start: Callable[[str], None] | None = None) -> list[Finding]:
    selected = list(only) if only else ids()
    modules = [(d, get(d)) for d in selected]
    findings: list[Finding] = []
    for det_id, module in modules:
        if on_start:
            on_start(det_id)
        findings.extend(module.detect(tables, settings))
    from bothunt.enrich import enrich

    return sort_findings(enrich(findings, settings))
