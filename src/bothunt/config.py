"""Settings: internal networks, time range, allow-lists and every detection's thresholds.

Each detection declares its thresholds as a frozen `Params` dataclass beside its logic, with the
documented default in the field's metadata (`doc`). This module gathers them: a YAML file overrides any
field by name, and an unknown name is an error rather than a silently ignored typo.

YAML layout::

    internal_networks: [10.0.0.0/8, 192.168.0.0/16]
    allowlist:
      processes: [backup-agent.exe]
      domains: ["*.corp.example.com"]      # a wildcard also matches the apex
      cidrs: [203.0.113.0/24]
    detections:
      beacon: {min_connections: 8}
    intel:
      asn_files: [/data/ip2asn-combined.tsv.gz]
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bothunt.errors import ConfigError
from bothunt.netclass import DEFAULT_INTERNAL, InternalNetworks, parse_ip

P = TypeVar("P")

# Seed profiles: `sentinel-kql` makes beacon, inbound_flood and relay reproduce the published Sentinel
# queries (their thresholds and exclusions), so users can compare with what their Sentinel shows.
PROFILES = ("sentinel-kql",)

# Services whose periodic traffic is expected: monitoring agents, OS and browser telemetry, time,
# update and licence checks. A match lowers a finding to `info` and says so; it never hides it.
KNOWN_SERVICES: tuple[str, ...] = (
    # monitoring / APM agents
    "*.datadoghq.com", "*.datadoghq.eu", "*.ddog-gov.com", "*.newrelic.com", "*.nr-data.net",
    "*.dynatrace.com", "*.live.dynatrace.com", "*.splunkcloud.com", "*.sumologic.com",
    "*.elastic-cloud.com", "*.grafana.net", "*.pagerduty.com",
    # OS / productivity telemetry and updates
    "*.events.data.microsoft.com", "*.data.microsoft.com", "settings-win.data.microsoft.com",
    "*.update.microsoft.com", "*.windowsupdate.com", "*.delivery.mp.microsoft.com",
    "time.windows.com", "*.ntp.org", "time.apple.com", "time.google.com",
    "*.push.apple.com", "*.icloud.com", "*.mtalk.google.com", "clients*.google.com",
    "*.teams.microsoft.com", "*.officeapps.live.com", "ocsp.digicert.com", "*.ocsp.*",
    "*.crl.*", "ctldl.windowsupdate.com",
    # backup and file-sync clients (hourly / daily schedules on a few hosts)
    "*.backblazeb2.com", "*.backblaze.com", "*.crashplan.com", "*.carbonite.com", "*.druva.com",
    "*.dropbox.com", "*.dropboxapi.com", "*.box.com",
    # licence polling
    "*.flexnetoperations.com", "*.licensing.adobe.com", "lm.licenses.adobe.com",
)


@dataclass(frozen=True)
class Allowlist:
    processes: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    cidrs: tuple[str, ...] = ()
    known_services: tuple[str, ...] = KNOWN_SERVICES

    def __post_init__(self) -> None:
        try:
            nets = tuple(ipaddress.ip_network(c, strict=False) for c in self.cidrs)
        except ValueError as exc:
            raise ConfigError(f"allowlist.cidrs: {exc}") from exc
        object.__setattr__(self, "_nets", nets)

    def matches(self, *, process: str | None = None, domain: str | None = None,
                ip: str | None = None) -> list[str]:
        """Every entry that matches, as `kind:pattern`, so a finding can say what changed its verdict."""
        hits: list[str] = []
        if process:
            p = process.lower().rsplit("\\", 1)[-1].rsplit("/", 1)[-1]
            hits += [f"process:{x}" for x in self.processes if fnmatch.fnmatch(p, x.lower())]
        if domain:
            d = domain.lower().rstrip(".")
            hits += [f"domain:{x}" for x in self.domains if domain_matches(d, x)]
            hits += [f"known_service:{x}" for x in self.known_services if domain_matches(d, x)]
        if ip:
            addr = parse_ip(ip)
            if addr is not None:
                nets = self._nets  # type: ignore[attr-defined]
                hits += [f"cidr:{n}" for n in nets if addr.version == n.version and addr in n]
        return hits


def domain_matches(domain: str, pattern: str) -> bool:
    """`*.example.com` matches example.com itself and any subdomain; other globs match as fnmatch."""
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*.") and domain == pattern[2:]:
        return True
    return fnmatch.fnmatch(domain, pattern)


@dataclass(frozen=True)
class Settings:
    internal_networks: tuple[str, ...] = DEFAULT_INTERNAL
    since: datetime | None = None
    until: datetime | None = None
    allowlist: Allowlist = field(default_factory=Allowlist)
    profile: str | None = None
    detections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    intel: Mapping[str, Any] = field(default_factory=dict)

    @property
    def internal(self) -> InternalNetworks:
        cached = self.__dict__.get("_internal")
        if cached is None:
            cached = InternalNetworks(self.internal_networks)
            object.__setattr__(self, "_internal", cached)
        return cached

    def params(self, cls: type[P], detection: str) -> P:
        """The detection's Params with this run's overrides applied (profile first, then YAML)."""
        overrides = dict(self.detections.get(detection, {}))
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"detections.{detection}: unknown setting(s) {sorted(unknown)}; "
                              f"known: {sorted(names)}")
        try:
            return cls(**overrides)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"detections.{detection}: {exc}") from exc

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def parse_time(text: str | datetime | None) -> datetime | None:
    if text is None or text == "":
        return None
    if isinstance(text, datetime):  # YAML parses unquoted ISO times itself
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"not an ISO 8601 time: {text!r}") from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(str(v) for v in value)
    raise ConfigError(f"{where}: expected a list of strings")


def load_settings(path: Path | None = None, **cli: Any) -> Settings:
    """Defaults, then the YAML file, then command-line values that are not None."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"config {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path}: expected a mapping at the top level")
    known = {"internal_networks", "allowlist", "detections", "intel", "profile", "since", "until"}
    if set(raw) - known:
        raise ConfigError(f"config {path}: unknown key(s) {sorted(set(raw) - known)}; known: {sorted(known)}")
    al = raw.get("allowlist") or {}
    allow = Allowlist(
        processes=_strings(al.get("processes"), "allowlist.processes"),
        domains=_strings(al.get("domains"), "allowlist.domains"),
        cidrs=_strings(al.get("cidrs"), "allowlist.cidrs"),
        known_services=_strings(al["known_services"], "allowlist.known_services")
        if "known_services" in al else KNOWN_SERVICES,
    )
    settings = Settings(
        internal_networks=_strings(raw.get("internal_networks"), "internal_networks") or DEFAULT_INTERNAL,
        since=parse_time(raw.get("since")),
        until=parse_time(raw.get("until")),
        allowlist=allow,
        profile=raw.get("profile"),
        detections={k: dict(v or {}) for k, v in (raw.get("detections") or {}).items()},
        intel=dict(raw.get("intel") or {}),
    )
    changes = {k: v for k, v in cli.items() if v is not None}
    if "internal_networks" in changes and isinstance(changes["internal_networks"], str):
        changes["internal_networks"] = tuple(c for c in changes["internal_networks"].split(",") if c.strip())
    for key in ("since", "until"):
        if isinstance(changes.get(key), str):
            changes[key] = parse_time(changes[key])
    settings = settings.replace(**changes)
    if settings.profile is not None and settings.profile not in PROFILES:
        raise ConfigError(f"unknown profile {settings.profile!r}; known: {', '.join(PROFILES)}")
    settings.internal  # validate CIDRs now, not in the middle of a hunt  # noqa: B018
    return settings
