"""What every data-file reader shares: the description of a loaded file and how its date is found.

The readers themselves are one module per layout: ``iptoasn`` (range tables), ``mmdb`` (MaxMind
DB files), ``cloud`` (AWS / Azure / GCP / Oracle published ranges) and ``tor`` (exit lists).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bothunt.errors import ConfigError

_GZIP_MAGIC = b"\x1f\x8b"
_FILENAME_DATE = re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)")


@dataclass(frozen=True)
class SourceInfo:
    """One loaded data file (or the built-in table): what it is, how big, and how old."""

    label: str  # the path as configured, or "builtin:..."; decided_by values refer to it
    kind: str  # asn, mmdb, cloud, tor, builtin
    layout: str  # iptoasn-tsv, dbip-csv, GeoLite2-ASN, aws, azure, gcp, oracle, tor-exit-addresses, ...
    records: int
    rejected: int
    date: datetime | None  # when the data was produced, as well as we can tell
    date_from: str  # where the date came from: createDate, build_epoch, file name, mtime, ...
    max_age_days: int

    @property
    def age_days(self) -> float | None:
        if self.date is None:
            return None
        return max(0.0, (datetime.now(UTC) - self.date).total_seconds() / 86400.0)

    @property
    def stale(self) -> bool:
        age = self.age_days
        return age is not None and age > self.max_age_days

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["date"] = self.date.isoformat(timespec="seconds") if self.date else None
        age = self.age_days
        out["age_days"] = None if age is None else round(age, 1)
        out["stale"] = self.stale
        return out


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    return path


def is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def read_text(path: Path) -> str:
    """Whole file as text, plain or gzip (told by its first bytes, not its name)."""
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def head_lines(path: Path, count: int = 5) -> list[str]:
    opener = gzip.open if is_gzip(path) else open
    lines: list[str] = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:  # type: ignore[operator]
        for line in fh:
            if line.strip() and not line.startswith("#"):
                lines.append(line.rstrip("\r\n"))
            if len(lines) >= count:
                break
    return lines


def mtime_date(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def filename_date(path: Path) -> datetime | None:
    """A YYYYMMDD date in the file name (Azure's ServiceTags_Public_20240101.json)."""
    match = _FILENAME_DATE.search(path.name)
    if not match:
        return None
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=UTC)
    except ValueError:
        return None


def parse_date(text: object) -> datetime | None:
    """ISO-like dates found inside files ("2024-01-02T03:04:05.123", "2024-01-02-03-04-05")."""
    if not isinstance(text, str) or not text.strip():
        return None
    value = text.strip()
    for fmt in ("%Y-%m-%d-%H-%M-%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def dated(path: Path, inner: datetime | None, inner_from: str) -> tuple[datetime, str]:
    """The date inside the file when it has one, else one in its name, else its mtime."""
    if inner is not None:
        return inner, inner_from
    named = filename_date(path)
    if named is not None:
        return named, "file name"
    return mtime_date(path), "mtime"
