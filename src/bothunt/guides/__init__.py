"""Investigation guide and response playbook per detection, filled with one finding's own entities.

A guide is text with `{placeholder}` slots, one module per detection (`GUIDES` maps a detection id to its
module, which exports `guide(finding) -> Guide` and `values(finding) -> dict`). Placeholders are replaced by
a plain regular-expression substitution, never `str.format` or a template engine, so a value an attacker
wrote (a domain, a command line) is inserted as text and can never be read as more template. The HTML
report ships each distinct guide once with the finding's values and fills it the same way in the browser
(`PLACEHOLDER` is the one pattern both sides use).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from bothunt.schema import Finding

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
MAX_VALUE_CHARS = 240

SECTIONS: tuple[tuple[str, str], ...] = (
    ("check_first", "What to check first"),
    ("false_positives", "Telling the known false positives apart"),
    ("collect", "What to collect"),
    ("contain", "How to contain"),
    ("escalate", "When to escalate"),
)

GUIDES: dict[str, str] = {
    "beacon": "bothunt.guides.beacon",
    "inbound_flood": "bothunt.guides.inbound_flood",
    "relay": "bothunt.guides.relay",
    "dga": "bothunt.guides.dga",
    "dns_c2": "bothunt.guides.dns_c2",
}
GENERIC = "bothunt.guides.generic"


@dataclass(frozen=True)
class Guide:
    """One variant of a detection's guide. `key` names the variant (the report ships each key once)."""

    key: str
    summary: str
    check_first: tuple[str, ...]
    false_positives: tuple[str, ...]
    collect: tuple[str, ...]
    contain: tuple[str, ...]
    escalate: tuple[str, ...]

    def sections(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(title, getattr(self, name)) for name, title in SECTIONS]

    def templates(self) -> list[str]:
        return [self.summary] + [t for _, lines in self.sections() for t in lines]

    def placeholders(self) -> set[str]:
        return {m for t in self.templates() for m in PLACEHOLDER.findall(t)}


@dataclass(frozen=True)
class RenderedGuide:
    key: str
    summary: str
    sections: list[tuple[str, list[str]]]

    def text(self) -> str:
        out = [self.summary, ""]
        for title, lines in self.sections:
            out.append(title)
            out += [f"- {line}" for line in lines]
            out.append("")
        return "\n".join(out).rstrip() + "\n"


def _module(detection: str) -> Any:
    return import_module(GUIDES.get(detection, GENERIC))


def guide_for(f: Finding) -> Guide:
    return _module(f.detection).guide(f)


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace every `{name}` with its value; an unknown name stays as written (tests forbid them)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def values_for(f: Finding, guide: Guide | None = None) -> dict[str, str]:
    """The values the finding's guide reads, each a short plain string (fallback words where the finding
    lacks the entity)."""
    from bothunt.guides import common

    g = guide or guide_for(f)
    vals = common.values(f)
    vals.update(_module(f.detection).values(f))
    wanted = g.placeholders()
    return {k: common.clip(vals.get(k) or common.FALLBACK.get(k, "(unknown)"), MAX_VALUE_CHARS)
            for k in sorted(wanted)}


def render(f: Finding) -> RenderedGuide:
    g = guide_for(f)
    vals = values_for(f, g)
    return RenderedGuide(key=g.key, summary=fill(g.summary, vals),
                         sections=[(title, [fill(t, vals) for t in lines]) for title, lines in g.sections()])
