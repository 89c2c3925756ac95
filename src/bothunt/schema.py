"""Canonical tables (`conn`, `dns`), the reject record and the findings record.

Sources produce Arrow tables that `conform()` turns into exactly these schemas, so the engine and the
detections never see a source's own column names or types.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

TS = pa.timestamp("us", tz="UTC")

CONN_SCHEMA = pa.schema(
    [
        ("ts", TS),
        ("duration", pa.float64()),
        ("src_ip", pa.string()),
        ("dst_ip", pa.string()),
        ("src_port", pa.int32()),
        ("dst_port", pa.int32()),
        ("proto", pa.string()),
        ("service", pa.string()),
        ("direction", pa.string()),
        ("bytes_out", pa.int64()),
        ("bytes_in", pa.int64()),
        ("pkts_out", pa.int64()),
        ("pkts_in", pa.int64()),
        ("state", pa.string()),
        ("action", pa.string()),
        ("host", pa.string()),
        ("user", pa.string()),
        ("process", pa.string()),
        ("pid", pa.int64()),
        ("cmdline", pa.string()),
        ("server_name", pa.string()),
        ("remote_ip_type", pa.string()),
        ("source", pa.string()),
        ("uid", pa.string()),
        ("label", pa.string()),
    ]
)

DNS_SCHEMA = pa.schema(
    [
        ("ts", TS),
        ("src_ip", pa.string()),
        ("host", pa.string()),
        ("dst_ip", pa.string()),
        ("query", pa.string()),
        ("qtype", pa.string()),
        ("rcode", pa.string()),
        ("answers", pa.list_(pa.string())),
        ("ttls", pa.list_(pa.float64())),
        ("source", pa.string()),
        ("uid", pa.string()),
        ("label", pa.string()),
    ]
)

REJECT_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("line", pa.int64()),
        ("reason", pa.string()),
        ("raw", pa.string()),
    ]
)

TABLES: dict[str, pa.Schema] = {"conn": CONN_SCHEMA, "dns": DNS_SCHEMA}

# Normalised connection outcome words (the `state` column).
STATES = ("established", "rejected", "attempted", "other")
DIRECTIONS = ("outbound", "inbound", "internal", "external")
SEVERITIES = ("info", "low", "medium", "high", "critical")
RAW_SAMPLE_CHARS = 500


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def empty_table(name: str) -> pa.Table:
    return TABLES[name].empty_table()


def conform(table: pa.Table, name: str) -> pa.Table:
    """Cast a source's table to the canonical schema: add missing columns as nulls, drop extras,
    order columns, and normalise timestamps to UTC microseconds.

    Raises pa.ArrowInvalid when a present column cannot be cast (a source bug, not bad input:
    sources must reject bad values row by row before this point).
    """
    schema = TABLES[name]
    n = table.num_rows
    cols = []
    for fld in schema:
        if fld.name in table.column_names:
            col = table.column(fld.name)
            if col.type != fld.type:
                if pa.types.is_timestamp(fld.type) and pa.types.is_timestamp(col.type) and col.type.tz is None:
                    col = pc.assume_timezone(col, "UTC")
                col = col.cast(fld.type)
            cols.append(col)
        else:
            cols.append(pa.nulls(n, fld.type))
    return pa.Table.from_arrays(cols, schema=schema)


# ---------------------------------------------------------------------------------------------------
# Findings


def finding_id(detection: str, *entities: object) -> str:
    """Stable id: the same detection over the same key entities gives the same id on every run."""
    key = json.dumps([detection, *[None if e is None else str(e) for e in entities]])
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def iso(ts: datetime | str | None) -> str | None:
    if ts is None:
        return None
    if isinstance(ts, str):
        return ts
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


@dataclass(frozen=True)
class Finding:
    """One finding; every detection emits these and every sink renders them."""

    detection: str
    title: str
    severity: str
    score: float
    first_seen: str | None
    last_seen: str | None
    explanation: str
    id: str = ""
    host: str | None = None
    src_ip: str | None = None
    user: str | None = None
    process: str | None = None
    dst_ip: str | None = None
    dst_port: int | None = None
    domain: str | None = None
    techniques: Sequence[str] = ("T1583.005",)
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")
        if not 0.0 <= float(self.score) <= 1.0:
            raise ValueError(f"score {self.score} is outside 0..1")
        if not self.techniques or self.techniques[0] != "T1583.005":
            raise ValueError("techniques must start with T1583.005")
        if not self.id:
            object.__setattr__(
                self,
                "id",
                finding_id(self.detection, self.host, self.src_ip, self.process, self.dst_ip,
                           self.dst_port, self.domain),
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["techniques"] = list(self.techniques)
        d["evidence"] = _plain(dict(self.evidence))
        d["score"] = round(float(self.score), 4)
        return {k: d[k] for k in FINDING_FIELDS}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        known = {k: d[k] for k in FINDING_FIELDS if k in d}
        known["techniques"] = tuple(known.get("techniques") or ("T1583.005",))
        return cls(**known)


FINDING_FIELDS = (
    "id", "detection", "title", "severity", "score", "first_seen", "last_seen", "host", "src_ip",
    "user", "process", "dst_ip", "dst_port", "domain", "techniques", "evidence", "explanation",
)


def _plain(value: Any) -> Any:
    """Turn numpy scalars / arrays and datetimes inside evidence into JSON-native values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _plain(value.tolist())
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def sort_findings(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-severity_rank(f.severity), -f.score, f.detection, f.id))
