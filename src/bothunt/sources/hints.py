"""Near misses: a file no source accepted, but whose header names most of one format's columns.

"Not a telemetry format" is the right verdict for a PDF; for a Defender export someone trimmed in a
spreadsheet it is a riddle. When a header carries a format's telltale columns but lacks some it needs,
the error names the format and the missing columns, so the fix (re-export with them) is obvious.
Only header-driven formats can miss this way: CEF, Suricata and Zeek are recognised by their lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bothunt.sources import argus, commonsecuritylog, defender, tabular


@dataclass(frozen=True)
class _Shape:
    name: str
    required: Sequence[tuple[str, ...]]  # each: the accepted spellings of one needed column
    telltale: frozenset[str]  # columns that point at this format even when others are missing


def _needed(names: Sequence[str], aliases: dict[str, tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [tuple(aliases.get(n, (n,))) for n in names]


_SHAPES = (
    _Shape("a Microsoft Defender DeviceNetworkEvents export", _needed(defender.REQUIRED, defender.FIELDS),
           frozenset({"ActionType", "DeviceName", "DeviceId", "InitiatingProcessFileName", "RemoteUrl",
                      "RemoteIPType", "LocalIPType", "ReportId"})),
    _Shape("a Sentinel CommonSecurityLog export",
           _needed(commonsecuritylog.REQUIRED, commonsecuritylog.FIELDS),
           frozenset({"DeviceVendor", "DeviceProduct", "DeviceAction", "DestinationPort", "SourcePort",
                      "SimplifiedDeviceAction"})),
    _Shape("an Argus binetflow file", _needed(argus.REQUIRED, {}),
           frozenset({"Dur", "Sport", "Dport", "Dir", "State", "TotPkts", "TotBytes", "SrcBytes", "Label"})),
)


def near_miss(head: bytes) -> str | None:
    """`looks like X but lacks columns ...` for the closest header-driven format, or None."""
    cols = tabular.head_columns(head)  # a CSV / TSV header (Argus included) or a JSON head's keys
    if not cols:
        return None
    best: tuple[int, str] | None = None
    for shape in _SHAPES:
        have = [spellings for spellings in shape.required if cols & set(spellings)]
        missing = [spellings[0] for spellings in shape.required if not cols & set(spellings)]
        clues = len(cols & shape.telltale) + len(have)
        # Two clues at least, one of them a telltale: an unrelated CSV with a `Label` column is no miss.
        if not missing or clues < 2 or not cols & shape.telltale:
            continue
        needs = ", ".join(" or ".join(s) for s in shape.required)
        text = f"it looks like {shape.name} but lacks column(s) {', '.join(missing)} (needed: {needs})"
        if best is None or clues > best[0]:
            best = (clues, text)
    return best[1] if best else None
