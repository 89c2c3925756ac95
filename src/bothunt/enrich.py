"""Who is on the other end: every finding's remote addresses classified (cloud, hosting, cdn,
residential_isp, mobile, tor, private, unknown; ASN, AS name, country) and added to its evidence.

Runs once after all detections, over the distinct addresses of all findings in one vectorised call, so
detections stay free of data-file handling and every detection gets the same treatment:

- `evidence.remote`: the class of the finding's remote entity (dst_ip; for an inbound finding with a
  single source, that source).
- `evidence.remote_mix`: for addresses listed inside the evidence (flood sources, relay operators and
  targets, beacon destination addresses), counts by class and the top ASNs.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from bothunt.config import Settings
from bothunt.netclass import parse_ip
from bothunt.netclass.intel import IntelSettings, NetIntel
from bothunt.schema import Finding

MAX_EVIDENCE_IPS = 500
INBOUND_DETECTIONS = frozenset({"inbound_flood"})


def _ips_in(value: Any, depth: int = 0) -> Iterator[str]:
    """Address-looking strings anywhere in an evidence structure (bounded depth)."""
    if depth > 4:
        return
    if isinstance(value, str):
        if parse_ip(value) is not None:
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _ips_in(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value[:MAX_EVIDENCE_IPS]:
            yield from _ips_in(v, depth + 1)


def _remote_of(f: Finding) -> str | None:
    if f.detection in INBOUND_DETECTIONS:
        return f.src_ip
    return f.dst_ip


def enrich(findings: Sequence[Finding], settings: Settings) -> list[Finding]:
    if not findings:
        return list(findings)
    intel = NetIntel.load(IntelSettings.from_mapping(settings.intel))
    per_finding: list[tuple[str | None, list[str]]] = []
    distinct: dict[str, None] = {}
    for f in findings:
        remote = _remote_of(f)
        listed = [ip for ip in dict.fromkeys(_ips_in(dict(f.evidence))) if ip != remote and ip != f.src_ip]
        per_finding.append((remote, listed))
        for ip in ([remote] if remote else []) + listed:
            distinct[ip] = None
    if not distinct:
        return list(findings)
    table = intel.classify(list(distinct)).to_pylist()
    info = {row["ip"]: {k: row[k] for k in ("net_class", "asn", "as_name", "country", "decided_by")}
            for row in table}
    out = []
    for f, (remote, listed) in zip(findings, per_finding, strict=True):
        evidence = dict(f.evidence)
        if remote and remote in info:
            evidence["remote"] = info[remote]
        public = [info[ip] for ip in listed if ip in info and info[ip]["net_class"] != "private"]
        if public:
            asns = Counter(f"AS{i['asn']} {i['as_name'] or ''}".strip() for i in public if i["asn"])
            evidence["remote_mix"] = {
                "addresses": len(public),
                "by_class": dict(Counter(i["net_class"] for i in public).most_common()),
                "top_asns": [{"asn": a, "count": c} for a, c in asns.most_common(5)],
            }
        out.append(dataclasses.replace(f, evidence=evidence))
    return out
