"""Ground truth: one record per planted attack and per benign trap, written as `truth.jsonl`.

`match` holds the key entities a finding must carry (see bothunt.evaluate for the matching rule);
`match_optional` holds entities that are compared only when the finding carries a value (a process or
device name that network sensors cannot see but Defender can). A value may be a list: any of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bothunt.errors import InputError

ALL_FORMATS = ("zeek", "zeek-json", "defender", "cef", "suricata")
NAMED_FORMATS = ("zeek", "zeek-json", "defender", "suricata")  # carry the name a connection was for
DNS_FORMATS = ("zeek", "zeek-json", "defender", "suricata")  # carry DNS transactions
KINDS = ("attack", "benign")


@dataclass(frozen=True)
class TruthItem:
    id: str
    kind: str
    scenario: str
    detection: str
    match: Mapping[str, Any]
    start: str
    end: str
    params: Mapping[str, Any] = field(default_factory=dict)
    formats: Sequence[str] = ALL_FORMATS
    match_optional: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"truth {self.id}: kind must be one of {KINDS}")
        if not self.match:
            raise ValueError(f"truth {self.id}: match must name at least one entity")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "scenario": self.scenario, "detection": self.detection,
            "match": dict(self.match), "start": self.start, "end": self.end, "params": dict(self.params),
            "formats": list(self.formats),
        }
        if self.match_optional:
            d["match_optional"] = dict(self.match_optional)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TruthItem:
        return cls(id=str(d["id"]), kind=str(d["kind"]), scenario=str(d.get("scenario", "")),
                   detection=str(d["detection"]), match=dict(d["match"]), start=str(d["start"]),
                   end=str(d["end"]), params=dict(d.get("params") or {}),
                   formats=tuple(d.get("formats") or ALL_FORMATS),
                   match_optional=dict(d.get("match_optional") or {}))


def write_truth(path: Path, items: Iterable[TruthItem]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item.to_dict(), sort_keys=False) + "\n")
            n += 1
    return n


def load_truth(path: Path | str) -> list[TruthItem]:
    """Read truth.jsonl; a malformed line is an InputError naming the file and line."""
    path = Path(path)
    items: list[TruthItem] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read truth file: {exc}", file=str(path)) from exc
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(TruthItem.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"not a truth record: {exc}", file=str(path), line=no) from exc
    return items
