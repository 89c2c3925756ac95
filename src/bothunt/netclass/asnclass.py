"""From an autonomous system to a network class: the built-in ASN table, then AS-name keywords.

The built-in table (``bothunt/data/asn_classes.csv``) names ASNs whose operator is well known; its
``# as_of:`` header line dates it. For every other AS the name decides, by the first keyword group
that matches (case-insensitive), in this order:

- ``cdn``: "cdn"
- ``hosting``: "hosting", "host" at a word start, "vps", "server", "datacenter"/"data center"/
  "data centre", "dedicated", "colocation"/"colo", "cloud"
- ``mobile``: "mobile", "mobil" (as in Mobilfunk), "wireless", "cellular", "cellco", "lte"
- ``residential_isp``: "telecom", "telekom", "telecommunication", "broadband", "cable", "dsl",
  "fiber"/"fibre", "residential"

Hosting comes before the ISP words because VPS sellers often call themselves "... Telecom"; the
ISP words are the weakest signal and go last.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CLASSES = ("cloud", "hosting", "cdn", "residential_isp", "mobile", "tor", "private", "unknown")
CLASS_CODE = {name: i for i, name in enumerate(CLASSES)}
ASN_CLASSES = frozenset({"cloud", "hosting", "cdn", "residential_isp", "mobile"})

# (class, RE2 pattern) in the order they are tried.
KEYWORD_GROUPS: tuple[tuple[str, str], ...] = (
    ("cdn", r"(?i)cdn"),
    ("hosting", r"(?i)hosting|\bhost|vps|server|data ?cent(er|re)|dedicated|\bcolo(cation)?\b|cloud"),
    ("mobile", r"(?i)mobile|\bmobil|wireless|cellular|cellco|\blte\b"),
    ("residential_isp", r"(?i)telecom|telekom|broadband|\bcable|\bdsl\b|fib(er|re)|residential"),
)
# How a class was reached: 0 = none, 1 = built-in table, 2.. = keyword group (index + 2).
VIA_NONE, VIA_TABLE = 0, 1
VIA_LABELS = ("", "asn-table", *(f"as-name:{cls}" for cls, _ in KEYWORD_GROUPS))

BUILTIN_NAME = "builtin:asn_classes.csv"


@dataclass(frozen=True)
class AsnTable:
    """The built-in table as sorted arrays, with its date."""

    asns: np.ndarray  # int64, sorted
    codes: np.ndarray  # int8 class codes
    names: pa.Array  # string
    as_of: datetime | None
    rows: int

    def lookup(self, asns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class code (-1 = not in the table) and row (-1) for each ASN (<= 0 means none)."""
        if len(self.asns) == 0:
            return np.full(len(asns), -1, np.int8), np.full(len(asns), -1, np.int64)
        idx = np.clip(np.searchsorted(self.asns, asns), 0, len(self.asns) - 1)
        hit = (self.asns[idx] == asns) & (asns > 0)
        return np.where(hit, self.codes[idx], -1).astype(np.int8), np.where(hit, idx, -1)


def parse_table(text: str) -> AsnTable:
    """Read the CSV layout of the built-in table: `# as_of: YYYY-MM-DD` header, then asn,class,name."""
    as_of = None
    body = []
    for line in text.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            if key.strip() == "as_of":
                as_of = datetime.fromisoformat(value.strip()).replace(tzinfo=UTC)
        elif line.strip():
            body.append(line)
    rows = list(csv.DictReader(io.StringIO("\n".join(body))))
    good = [r for r in rows
            if (r.get("class") or "").strip() in ASN_CLASSES and (r.get("asn") or "").strip().isdigit()]
    good.sort(key=lambda r: int(r["asn"]))
    return AsnTable(
        np.array([int(r["asn"]) for r in good], np.int64),
        np.array([CLASS_CODE[r["class"].strip()] for r in good], np.int8),
        pa.array([(r.get("name") or "").strip() or None for r in good], pa.string()),
        as_of,
        len(good),
    )


@lru_cache(maxsize=1)
def builtin_table() -> AsnTable:
    text = resources.files("bothunt").joinpath("data/asn_classes.csv").read_text(encoding="utf-8")
    return parse_table(text)


def keyword_classes(names: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Class code (-1 = no keyword) and VIA code per AS name, one vectorised regex per group."""
    n = len(names)
    code = np.full(n, -1, np.int8)
    via = np.zeros(n, np.int8)
    if n == 0:
        return code, via
    for g, (cls, pattern) in enumerate(KEYWORD_GROUPS):
        hit = pc.match_substring_regex(names, pattern).fill_null(False).to_numpy(zero_copy_only=False)
        new = hit & (code < 0)
        code[new] = CLASS_CODE[cls]
        via[new] = g + 2
    return code, via


def classify_asns(asns: np.ndarray, names: pa.Array,
                  table: AsnTable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Class code and VIA code per (ASN, AS name): the table by number first, then the name keywords."""
    table = table or builtin_table()
    code, _ = table.lookup(asns)
    via = np.where(code >= 0, VIA_TABLE, VIA_NONE).astype(np.int8)
    kw_code, kw_via = keyword_classes(names)
    use_kw = (code < 0) & (kw_code >= 0)
    code = np.where(use_kw, kw_code, code).astype(np.int8)
    via = np.where(use_kw, kw_via, via).astype(np.int8)
    return code, via
