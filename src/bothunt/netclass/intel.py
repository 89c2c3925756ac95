"""Who is on the other end: classify remote addresses offline from data files the user points to.

Classes: cloud, hosting, cdn, residential_isp, mobile, tor, private, unknown. Precedence, first match
wins:

1. not an address -> unknown (no crash);
2. not a public address (``bothunt.netclass.ip_type`` says Private, Loopback, LinkLocal, Multicast,
   Broadcast or Reserved) -> private;
3. listed in a Tor exit list -> tor;
4. inside a cloud provider's published ranges -> cloud (cdn for CDN services);
5. the AS that announces it (IP-to-ASN tables first, then MMDB files) -> its class from the built-in
   ASN table, else from AS-name keywords (see ``asnclass``);
6. otherwise unknown.

With no data files at all only steps 1, 2 and 6 can fire: bothunt ships a table of ASNs (they change
hands rarely) but no prefix list (prefixes move within weeks, and a stale built-in list would
misclassify silently). ASN, AS name and country come from the ASN data whatever decided the class.

All work is per distinct address: IPv4 strings are parsed and looked up vectorised (``ranges``);
IPv6 literals are parsed one by one; MMDB files are read once per distinct public address that the
range tables left without an ASN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bothunt.errors import ConfigError
from bothunt.netclass import ip_type
from bothunt.netclass.asnclass import BUILTIN_NAME, CLASSES, builtin_table, classify_asns
from bothunt.netclass.cloud import load_cloud_file
from bothunt.netclass.iptoasn import load_asn_table
from bothunt.netclass.layouts import SourceInfo
from bothunt.netclass.mmdb import MmdbSource
from bothunt.netclass.ranges import RangeSpec, RangeTable, cidr_specs, parse_addresses
from bothunt.netclass.resolve import SPECIAL_BLOCKS, as_string_array, distinct_values, resolve
from bothunt.netclass.tor import load_tor_file

# The built-in ASN table is about who operates an AS, which changes over years, not weeks.
BUILTIN_MAX_AGE_DAYS = 365
OUTPUT_SCHEMA = pa.schema([("ip", pa.string()), ("net_class", pa.string()), ("asn", pa.int64()),
                           ("as_name", pa.string()), ("country", pa.string()), ("decided_by", pa.string())])
IpInput = pa.Array | pa.ChunkedArray | Sequence[str | None]
__all__ = ["OUTPUT_SCHEMA", "SPECIAL_BLOCKS", "IntelSettings", "NetIntel", "classify_cli_rows"]


def _paths(value: Any) -> tuple[Path, ...]:
    if value is None:
        return ()
    if isinstance(value, str | Path):
        value = [value]
    return tuple(Path(v).expanduser() for v in value)


@dataclass(frozen=True)
class IntelSettings:
    """Data files for remote-address classes; every list may be empty."""

    asn_files: tuple[Path, ...] = ()  # iptoasn TSV (plain/.gz, v4, v6 or combined) or start,end,asn,org CSV
    mmdb_files: tuple[Path, ...] = ()  # GeoLite2-ASN, IPinfo Lite, DB-IP ASN Lite, ...
    cloud_files: tuple[Path, ...] = ()  # AWS ip-ranges.json, Azure ServiceTags, GCP cloud.json, Oracle
    tor_files: tuple[Path, ...] = ()  # exit-addresses or one address a line
    max_age_days: int = 60  # a data file older than this is reported stale

    def __post_init__(self) -> None:
        for name in ("asn_files", "mmdb_files", "cloud_files", "tor_files"):
            object.__setattr__(self, name, _paths(getattr(self, name)))
        try:
            age = int(self.max_age_days)
        except (TypeError, ValueError):
            raise ConfigError(f"max_age_days must be a whole number of days, not {self.max_age_days!r}") from None
        if age < 0:
            raise ConfigError(f"max_age_days must be >= 0, not {age}")
        object.__setattr__(self, "max_age_days", age)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> IntelSettings:
        """Build from the ``intel:`` section of the YAML config; an unknown key is an error."""
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"intel: unknown setting(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(known))})")
        try:
            return cls(**raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"intel: {exc}") from exc

    def files(self) -> tuple[Path, ...]:
        return self.asn_files + self.mmdb_files + self.cloud_files + self.tor_files


@dataclass
class _Layer:
    """A range table and per-payload attributes (concatenated over the files of one kind)."""

    table: RangeTable
    file_of: np.ndarray  # payload row -> index into labels
    labels: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


def _layer(parts: list[tuple[RangeSpec, RangeSpec, int]], labels: list[str], **attrs: Any) -> _Layer:
    """Merge per-file specs (local payload rows) into one table; earlier files win ties."""
    v4, v6, owners, offset = RangeSpec.empty(), RangeSpec.empty(), [], 0
    for i, (s4, s6, rows) in enumerate(parts):
        # Within a file its own priority decides; between files at equal size, the earlier file.
        s4, s6 = (RangeSpec(s.start_hi, s.start_lo, s.end_hi, s.end_lo, s.payload + offset,
                            s.priority * (len(parts) + 1) - i) for s in (s4, s6))
        v4, v6 = v4.concat(s4), v6.concat(s6)
        owners.append(np.full(rows, i, np.int64))
        offset += rows
    file_of = np.concatenate(owners) if owners else np.zeros(0, np.int64)
    return _Layer(RangeTable.build(v4, v6), file_of, labels, attrs)


def _concat(arrays: list[pa.Array]) -> pa.Array:
    return pa.concat_arrays(arrays) if arrays else pa.array([], pa.string())


class NetIntel:
    """Loaded data files; ``classify`` maps addresses to classes. Build with ``NetIntel.load``."""

    _cache: dict[tuple[Any, ...], NetIntel] = {}  # noqa: RUF012 - one process-wide cache

    def __init__(self, settings: IntelSettings) -> None:
        self.settings = settings
        age = int(settings.max_age_days)
        asn_parts = [load_asn_table(p, age) for p in settings.asn_files]
        cloud_parts = [load_cloud_file(p, age) for p in settings.cloud_files]
        tor_parts = [load_tor_file(p, age) for p in settings.tor_files]
        self.mmdbs = [MmdbSource(p, age) for p in settings.mmdb_files]
        asns = np.concatenate([a.asn for a in asn_parts]) if asn_parts else np.zeros(0, np.int64)
        names = _concat([a.names for a in asn_parts])
        cls, via = classify_asns(asns, names)
        self.asn = _layer([(a.v4, a.v6, len(a.asn)) for a in asn_parts], [a.info.label for a in asn_parts],
                          asn=asns, names=names, countries=_concat([a.countries for a in asn_parts]),
                          cls=cls, via=via)
        cloud_cls = np.concatenate([c.classes for c in cloud_parts]) if cloud_parts else np.zeros(0, np.int8)
        self.cloud = _layer([(c.v4, c.v6, len(c.classes)) for c in cloud_parts],
                            [c.info.label for c in cloud_parts],
                            cls=cloud_cls, details=_concat([c.details for c in cloud_parts]))
        self.tor = _layer([(t.v4, t.v6, t.rows) for t in tor_parts], [t.info.label for t in tor_parts])
        special = cidr_specs([b for b, _ in SPECIAL_BLOCKS], range(len(SPECIAL_BLOCKS)))
        self.special = RangeTable.build(special.v4, special.v6)
        self.special_words = [ip_type(b.split("/")[0]) if uniform else None for b, uniform in SPECIAL_BLOCKS]
        builtin = builtin_table()
        self.builtin = builtin
        self.infos: list[SourceInfo] = [
            *(a.info for a in asn_parts), *(m.info for m in self.mmdbs), *(c.info for c in cloud_parts),
            *(t.info for t in tor_parts),
            SourceInfo(BUILTIN_NAME, "builtin", "asn-classes-csv", builtin.rows, 0, builtin.as_of,
                       "as_of header", BUILTIN_MAX_AGE_DAYS)]

    @classmethod
    def load(cls, settings: IntelSettings) -> NetIntel:
        """Load (or reuse) the data files; a file changed on disk since the last load is read again."""
        try:
            stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in settings.files())
        except OSError:
            stamp = ()  # let the loader raise a ConfigError naming the missing file
        key = (settings, stamp)
        if key not in cls._cache:
            if len(cls._cache) >= 4:
                cls._cache.pop(next(iter(cls._cache)))
            cls._cache[key] = cls(settings)
        return cls._cache[key]

    def sources(self) -> list[SourceInfo]:
        """Every loaded file and the built-in table, with date, age and stale flag."""
        return list(self.infos)

    @property
    def has_data(self) -> bool:
        return bool(self.settings.files())

    # ------------------------------------------------------------------ classification

    def classify(self, ips: IpInput) -> pa.Table:
        """One row per input value: ip, net_class, asn, as_name, country, decided_by."""
        return self._classify(ips, extra=False)

    def classify_detail(self, ips: IpInput) -> pa.Table:
        """``classify`` plus ``asn_source`` (file that gave the ASN) and ``detail`` (cloud service)."""
        return self._classify(ips, extra=True)

    def _classify(self, ips: IpInput, extra: bool) -> pa.Table:
        arr = as_string_array(ips)
        ip = arr.dictionary.take(arr.indices) if isinstance(arr, pa.DictionaryArray) else arr
        values, idx = distinct_values(arr)
        r = resolve(self, values)

        def per_row(codes: np.ndarray) -> np.ndarray:
            return codes if idx is None else codes[idx]

        def pick(pool: pa.Array, codes: np.ndarray) -> pa.Array:
            rows = per_row(codes)
            return pool.take(pa.array(rows, pa.int64(), mask=rows < 0))

        asn = per_row(r.asn)
        cols = {
            "ip": ip.cast(pa.string()),
            "net_class": pick(pa.array(CLASSES, pa.string()), r.cls.astype(np.int64)),
            "asn": pa.array(asn, pa.int64(), mask=asn <= 0),
            "as_name": pick(r.name_pool, r.name),
            "country": pick(r.country_pool, r.country),
            "decided_by": pick(r.label_pool, r.decided),
        }
        if extra:
            cols["asn_source"] = pick(r.label_pool, r.asn_src)
            cols["detail"] = pick(r.detail_pool, r.detail)
        return pa.table(cols)


def classify_cli_rows(ips: Sequence[str], settings: IntelSettings) -> list[dict[str, Any]]:
    """Rows for ``bothunt netclass IP...``: the verdict, the file behind it and its age, and warnings.

    ``decided_by`` names the method and the file that decided the class (the Tor list, the cloud
    range file, or for ASN classes the IP-to-ASN data that named the AS); ``source_date`` and
    ``source_age_days`` are that file's. ``warnings`` (one string, or None) names every stale file
    the verdict rests on: for a public address that is every file consulted, since "not in the Tor
    list" is only as fresh as the list.
    """
    intel = NetIntel.load(settings)
    table = intel.classify_detail(list(ips)).to_pylist()
    infos = {info.label: info for info in intel.sources()}
    stale = [info for info in intel.sources() if info.stale]
    rows = []
    for rec in table:
        decided = rec["decided_by"]
        source = _source_label(decided)
        info = infos.get(source) if source else None
        warnings = []
        if _unparseable(rec["ip"]):
            warnings.append("not an IP address")
        elif not (decided or "").startswith("ip_type:"):
            if not intel.has_data:
                warnings.append("no data files configured: only private/reserved addresses can be "
                                "classified (set intel: asn_files, mmdb_files, cloud_files or tor_files)")
            warnings += [f"{s.label} is {s.age_days:.0f} days old (older than {s.max_age_days} days): "
                         "refresh it" for s in stale]
        age = info.age_days if info else None
        rows.append({
            **{k: rec[k] for k in ("ip", "net_class", "asn", "as_name", "country", "decided_by", "detail")},
            "source_date": info.date.date().isoformat() if info and info.date else None,
            "source_age_days": None if age is None else round(age, 1),
            "warnings": "; ".join(warnings) or None,
        })
    return rows


def _source_label(decided: str | None) -> str | None:
    """The file label inside a decided_by value ("tor:<file>", "as-name:hosting:<file>", ...)."""
    if not decided or decided.startswith("ip_type:"):
        return None
    head, _, rest = decided.partition(":")
    if head == "as-name":
        rest = rest.partition(":")[2]
    return rest or None


def _unparseable(ip: str | None) -> bool:
    return ip is None or parse_addresses(pa.array([ip], pa.string())).family[0] == 0
