"""Tor exit lists.

Layouts:

- ``tor-exit-addresses``: the directory's exit-addresses file (``ExitNode <fp>``, ``Published``,
  ``LastStatus``, ``ExitAddress <ip> <date> <time>`` lines). Only ExitAddress lines give addresses;
  the file's date is its newest ExitAddress / LastStatus / Published stamp.
- ``tor-list``: one address (or CIDR) a line, ``#`` comments allowed (the bulk exit list and most
  third-party lists); dated by its mtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bothunt.netclass.layouts import SourceInfo, dated, parse_date, read_text, require_file
from bothunt.netclass.ranges import RangeSpec, cidr_specs

_STAMPED = ("ExitAddress", "LastStatus", "Published")


@dataclass
class TorRows:
    v4: RangeSpec
    v6: RangeSpec
    rows: int  # payload rows are positions in the file's address list
    info: SourceInfo


def _newest(lines: list[list[str]]) -> datetime | None:
    newest = None
    for parts in lines:
        if parts[0] in _STAMPED and len(parts) >= 3:
            stamp = parse_date(" ".join(parts[-2:]))
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
    return newest


def load_tor_file(path: Path, max_age_days: int) -> TorRows:
    require_file(path, "Tor exit list")
    lines = [line.split() for line in read_text(path).splitlines()]
    lines = [parts for parts in lines if parts and not parts[0].startswith("#")]
    if any(parts[0] == "ExitAddress" for parts in lines):
        layout = "tor-exit-addresses"
        addresses = [parts[1] for parts in lines if parts[0] == "ExitAddress" and len(parts) >= 2]
        inner = _newest(lines)
    else:
        layout = "tor-list"
        addresses = [parts[0] for parts in lines]
        inner = None
    addresses = [a[1:-1] if a.startswith("[") and a.endswith("]") else a for a in addresses]
    split = cidr_specs(addresses, range(len(addresses)))
    date, date_from = dated(path, inner, "newest entry")
    info = SourceInfo(str(path), "tor", layout, len(addresses) - len(split.rejected), len(split.rejected),
                      date, date_from, max_age_days)
    return TorRows(split.v4, split.v6, len(addresses), info)
