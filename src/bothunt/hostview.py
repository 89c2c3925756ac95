"""Findings grouped per internal host, with one combined score per host.

A host that beacons, looks up generated names and relays is one incident, not three. Grouping:

* The internal entity of a finding is its `host` and `src_ip`, except for `inbound_flood`, where the
  internal side is the attacked `dst_ip` (role "target"; a /24 prefix or an empty `dst_ip` names no host).
* A finding with a host name belongs to that name (case-insensitive). One with only an address belongs to
  the host name seen with that address in other findings when exactly one name was seen with it, else to
  the address itself. An address shared by several names (NAT, a proxy, DHCP churn) never merges them.
* Findings without an internal entity (fleet-wide rhythms, fast-flux names) are listed apart, unscored.

Combined score (documented in docs/report.md, constants below):

1. Each finding counts with weight 0 at severity `info` (allow-listed or a known service: listed, not
   scored), `TARGET_WEIGHT` when the host is the target of an inbound attack (being attacked is not being
   compromised) and 1 otherwise: its contribution is weight x score.
2. Per detection, the strongest contribution counts (forty beacons to fleet services are not forty
   independent signs).
3. The detections combine by noisy-OR: 1 - prod(1 - s_d), the chance that at least one is right if each
   were right independently with probability s_d.
4. Corroboration: every further distinct detection with a contribution above 0 counts as one more
   independent sign of strength `CORROBORATION`; combined = 1 - (1 - noisy_or) x (1 - CORROBORATION)^(k-1).
5. The host's severity is the severity of the combined score (detections.base cut points), never lower than
   its most severe scored finding (one step lower for a finding where the host is the target).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bothunt.detections.base import severity_from_score
from bothunt.schema import SEVERITIES, Finding, severity_rank, sort_findings

TARGET_WEIGHT = 0.5
CORROBORATION = 0.15
TARGET_DETECTIONS = frozenset({"inbound_flood"})
UNATTRIBUTED = "(no single internal host)"


@dataclass
class HostGroup:
    key: str  # "host:<name>" or "ip:<address>" or UNATTRIBUTED
    label: str
    names: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)  # finding id -> "actor" | "target"
    score: float = 0.0
    severity: str = "info"
    per_detection: dict[str, float] = field(default_factory=dict)
    first_seen: str | None = None
    last_seen: str | None = None

    @property
    def detections(self) -> list[str]:
        return sorted({f.detection for f in self.findings})


def _single_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def entity(f: Finding) -> tuple[str, str | None, str | None]:
    """(role, host name, address) of the finding's internal side."""
    if f.detection in TARGET_DETECTIONS:
        return "target", None, _single_ip(f.dst_ip)
    return "actor", f.host or None, _single_ip(f.src_ip) or f.src_ip or None


def contribution(f: Finding, role: str) -> float:
    if f.severity == "info":
        return 0.0
    return float(f.score) * (TARGET_WEIGHT if role == "target" else 1.0)


def _floor(f: Finding, role: str) -> int:
    """The severity rank a scored finding guarantees its host: its own, one step lower as a target."""
    rank = severity_rank(f.severity)
    return max(rank - 1, 0) if role == "target" else rank


def combine(per_detection: dict[str, float]) -> float:
    strengths = [s for s in per_detection.values() if s > 0]
    if not strengths:
        return 0.0
    miss = 1.0
    for s in strengths:
        miss *= 1.0 - min(max(s, 0.0), 1.0)
    miss *= (1.0 - CORROBORATION) ** (len(strengths) - 1)
    return round(1.0 - miss, 4)


def group(findings: Sequence[Finding]) -> list[HostGroup]:
    """Host groups, most suspicious first; the unattributed group (if any) last."""
    roles = [(f, *entity(f)) for f in findings]
    names_of_ip: dict[str, set[str]] = defaultdict(set)
    for _, _, name, ip in roles:
        if name and ip:
            names_of_ip[ip].add(name.lower())
    groups: dict[str, HostGroup] = {}
    for f, role, name, ip in roles:
        if name:
            key, label = f"host:{name.lower()}", name
        elif ip and len(names_of_ip.get(ip, ())) == 1:
            only = next(iter(names_of_ip[ip]))
            key, label = f"host:{only}", only
        elif ip:
            key, label = f"ip:{ip}", ip
        else:
            key, label = UNATTRIBUTED, UNATTRIBUTED
        g = groups.setdefault(key, HostGroup(key=key, label=label))
        if name and name not in g.names:
            g.names.append(name)
        if ip and ip not in g.addresses:
            g.addresses.append(ip)
        g.findings.append(f)
        g.roles[f.id] = role
    for g in groups.values():
        _score(g)
    attributed = sorted((g for k, g in groups.items() if k != UNATTRIBUTED),
                        key=lambda g: (-g.score, -severity_rank(g.severity), -len(g.findings), g.key))
    return attributed + ([groups[UNATTRIBUTED]] if UNATTRIBUTED in groups else [])


def _score(g: HostGroup) -> None:
    g.findings = sort_findings(g.findings)
    if g.key != UNATTRIBUTED:
        for f in g.findings:
            c = contribution(f, g.roles[f.id])
            g.per_detection[f.detection] = round(max(g.per_detection.get(f.detection, 0.0), c), 4)
        g.score = combine(g.per_detection)
        floor = max((_floor(f, g.roles[f.id]) for f in g.findings if contribution(f, g.roles[f.id]) > 0),
                    default=0)
        g.severity = SEVERITIES[max(severity_rank(severity_from_score(g.score)), floor)]
    times = [(parse_time(t), t) for f in g.findings for t in (f.first_seen, f.last_seen)]
    times = [(d, t) for d, t in times if d is not None]
    g.first_seen, g.last_seen = (min(times)[1], max(times)[1]) if times else (None, None)


def parse_time(ts: str | None) -> datetime | None:
    """ISO 8601 to an aware datetime (None when absent or unreadable): strings with and without fractions
    of a second do not sort as text."""
    if not ts:
        return None
    try:
        t = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
