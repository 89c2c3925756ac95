"""MaxMind DB files (read with the ``maxminddb`` package), one look-up per distinct address.

Record layouts understood (field names as the publishers document them):

- GeoLite2-ASN / GeoIP2-ISP and DB-IP ASN Lite (which copies the GeoLite2 schema):
  ``autonomous_system_number`` (integer), ``autonomous_system_organization``.
- IPinfo Lite: ``asn`` ("AS15169"), ``as_name``, ``as_domain``, ``country_code``, ``country``
  (a name), ``continent``...; IPinfo's older country_asn file has ``country`` as the ISO code.
- Country fields of GeoIP2 / DB-IP country and city files: ``country.iso_code`` (else
  ``registered_country.iso_code``), so a country database can sit beside an ASN one.

The file's date is its metadata ``build_epoch``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import maxminddb

from bothunt.errors import ConfigError
from bothunt.netclass.layouts import SourceInfo, require_file

_NAME_KEYS = ("autonomous_system_organization", "as_name", "isp", "organization")


def _asn(record: dict[str, Any]) -> int:
    value = record.get("autonomous_system_number", record.get("asn"))
    if isinstance(value, int):
        return value if value > 0 else 0
    if isinstance(value, str):
        digits = value.strip().upper().removeprefix("AS")
        return int(digits) if digits.isdigit() else 0
    return 0


def _country(record: dict[str, Any]) -> str | None:
    code = record.get("country_code")
    if isinstance(code, str) and code:
        return code.upper()
    for key in ("country", "registered_country"):
        value = record.get(key)
        if isinstance(value, str) and len(value) == 2:
            return value.upper()
        if isinstance(value, dict) and isinstance(value.get("iso_code"), str):
            return value["iso_code"].upper()
    return None


def _name(record: dict[str, Any]) -> str | None:
    for key in _NAME_KEYS:
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


class MmdbSource:
    """An open MaxMind DB reader and its description."""

    def __init__(self, path: Path, max_age_days: int) -> None:
        require_file(path, "MMDB")
        try:
            self.reader = maxminddb.open_database(str(path))
        except (maxminddb.InvalidDatabaseError, ValueError, OSError) as exc:
            raise ConfigError(f"{path}: not a readable MaxMind DB file ({exc})") from exc
        meta = self.reader.metadata()
        self.ip_version = int(meta.ip_version)
        built = datetime.fromtimestamp(int(meta.build_epoch), UTC) if meta.build_epoch else None
        if built is not None:
            date, date_from = built, "build_epoch"
        else:
            date, date_from = datetime.fromtimestamp(path.stat().st_mtime, UTC), "mtime"
        self.info = SourceInfo(str(path), "mmdb", str(meta.database_type), int(meta.node_count), 0,
                               date, date_from, max_age_days)

    def lookup(self, texts: list[str],
               families: list[int]) -> tuple[list[int], list[str | None], list[str | None]]:
        """ASN (0 = none), AS name and country per canonical address text."""
        asns: list[int] = []
        names: list[str | None] = []
        countries: list[str | None] = []
        for text, family in zip(texts, families, strict=True):
            record: Any = None
            if family == 4 or self.ip_version == 6:
                try:
                    record = self.reader.get(text)
                except ValueError:
                    record = None
            if not isinstance(record, dict):
                asns.append(0)
                names.append(None)
                countries.append(None)
                continue
            asns.append(_asn(record))
            names.append(_name(record))
            countries.append(_country(record))
        return asns, names, countries

    def close(self) -> None:
        self.reader.close()
