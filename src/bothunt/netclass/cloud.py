"""Cloud providers' published address ranges.

Layouts, told by their keys:

- ``aws`` (ip-ranges.json): ``prefixes[].ip_prefix`` and ``ipv6_prefixes[].ipv6_prefix``, each
  with ``service`` and ``region``; dated by ``createDate`` ("YYYY-MM-DD-hh-mm-ss").
- ``azure`` (ServiceTags_*.json): ``values[].name`` and ``values[].properties.addressPrefixes``;
  its ``changeNumber`` is a counter, not a date, so the date is the one in the file name
  (ServiceTags_Public_YYYYMMDD.json), else the file's mtime.
- ``gcp`` (cloud.json, goog.json): ``prefixes[].ipv4Prefix`` / ``ipv6Prefix`` with ``service`` and
  ``scope``; dated by ``creationTime``.
- ``oracle`` (public_ip_ranges.json): ``regions[].cidrs[].cidr`` with ``tags``; dated by
  ``last_updated_timestamp``.

Every range is class ``cloud`` except content-delivery services (AWS CLOUDFRONT*, Azure Front Door
and CDN tags), which are ``cdn``. Where a provider lists the same block under an aggregate tag and
a specific one (AWS "AMAZON", Azure "AzureCloud"), the specific one wins at equal size, and a
smaller block always wins over a larger one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bothunt.errors import ConfigError
from bothunt.netclass.asnclass import CLASS_CODE
from bothunt.netclass.layouts import SourceInfo, dated, parse_date, read_text, require_file
from bothunt.netclass.ranges import RangeSpec, cidr_specs

# (prefix, class, detail, priority)
Entry = tuple[str, str, str, int]


@dataclass
class CloudRows:
    v4: RangeSpec
    v6: RangeSpec
    classes: np.ndarray  # int8 class code per payload row
    details: pa.Array  # "AWS EC2 us-east-1" per payload row
    info: SourceInfo


def _join(*parts: object) -> str:
    return " ".join(str(p) for p in parts if p)


def _aws(doc: dict[str, Any]) -> Iterator[Entry]:
    for key, field in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
        for item in doc.get(key) or []:
            service = str(item.get("service") or "")
            cls = "cdn" if service.upper().startswith("CLOUDFRONT") else "cloud"
            yield (str(item.get(field)), cls, _join("AWS", service, item.get("region")),
                   0 if service.upper() == "AMAZON" else 1)


def _azure(doc: dict[str, Any]) -> Iterator[Entry]:
    for value in doc.get("values") or []:
        name = str(value.get("name") or "")
        props = value.get("properties") or {}
        cls = "cdn" if "frontdoor" in name.lower() or "cdn" in name.lower() else "cloud"
        generic = name == "AzureCloud" or name.startswith("AzureCloud.")
        for prefix in props.get("addressPrefixes") or []:
            yield str(prefix), cls, _join("Azure", name), 0 if generic else 1


def _gcp(doc: dict[str, Any]) -> Iterator[Entry]:
    for item in doc.get("prefixes") or []:
        prefix = item.get("ipv4Prefix") or item.get("ipv6Prefix")
        yield str(prefix), "cloud", _join("Google", item.get("service"), item.get("scope")), 1


def _oracle(doc: dict[str, Any]) -> Iterator[Entry]:
    for region in doc.get("regions") or []:
        for cidr in region.get("cidrs") or []:
            tags = ",".join(str(t) for t in cidr.get("tags") or [])
            yield str(cidr.get("cidr")), "cloud", _join("Oracle Cloud", region.get("region"), tags), 1


def _layout(doc: Any) -> tuple[str, Any, str]:
    """Layout name, entry reader, and the key of the date inside the file."""
    if isinstance(doc, dict):
        if "values" in doc and isinstance(doc["values"], list):
            return "azure", _azure, ""
        prefixes = doc.get("prefixes")
        aws = "ipv6_prefixes" in doc or any("ip_prefix" in p for p in (prefixes or [])[:5])
        if isinstance(prefixes, list) and aws:
            return "aws", _aws, "createDate"
        if isinstance(prefixes, list):
            return "gcp", _gcp, "creationTime"
        if isinstance(doc.get("regions"), list):
            return "oracle", _oracle, "last_updated_timestamp"
    raise ConfigError("not a cloud range file (expected AWS ip-ranges.json, Azure ServiceTags JSON, "
                      "GCP cloud.json or Oracle public_ip_ranges.json)")


def load_cloud_file(path: Path, max_age_days: int) -> CloudRows:
    require_file(path, "cloud range")
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON ({exc})") from exc
    try:
        layout, reader, date_key = _layout(doc)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    entries = list(reader(doc))
    split = cidr_specs((e[0] for e in entries), range(len(entries)), (e[3] for e in entries))
    inner = parse_date(doc.get(date_key)) if date_key else None
    date, date_from = dated(path, inner, date_key)
    info = SourceInfo(str(path), "cloud", layout, len(entries) - len(split.rejected), len(split.rejected),
                      date, date_from, max_age_days)
    classes = np.array([CLASS_CODE[e[1]] for e in entries], np.int8)
    details = pa.array([e[2] for e in entries], pa.string())
    return CloudRows(split.v4, split.v6, classes, details, info)
