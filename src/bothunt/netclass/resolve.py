"""The per-distinct-address verdict behind ``NetIntel.classify``, in array operations.

Input: distinct address strings. Output: per value a class code, the label of what decided it, the
ASN, and rows into small pools of AS names, countries and cloud details, which the caller broadcasts
back to its rows. Only three things run per value in Python: parsing IPv6 literals, ip_type() for
addresses in the few special blocks where its answer varies, and MMDB reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from bothunt.netclass import ip_type
from bothunt.netclass.asnclass import CLASS_CODE, VIA_LABELS, classify_asns
from bothunt.netclass.ranges import ParsedAddresses, RangeTable, key_text, parse_addresses

if TYPE_CHECKING:
    from bothunt.netclass.intel import NetIntel

# Every block ip_type() can call non-public, as (CIDR, uniform). In a uniform block ip_type() gives
# one answer for every address, so it is asked once, for the block's first address, at load time;
# the other blocks are asked per distinct address. The most specific block wins (255.255.255.255
# inside 240.0.0.0/4). tests/unit/test_netclass_intel.py checks both claims against ip_type().
SPECIAL_BLOCKS = (
    ("0.0.0.0/8", True), ("10.0.0.0/8", True), ("100.64.0.0/10", True), ("127.0.0.0/8", True),
    ("169.254.0.0/16", True), ("172.16.0.0/12", True), ("192.0.0.0/24", False), ("192.0.2.0/24", True),
    ("192.88.99.0/24", False), ("192.168.0.0/16", True), ("198.18.0.0/15", True), ("198.51.100.0/24", True),
    ("203.0.113.0/24", True), ("224.0.0.0/4", True), ("240.0.0.0/4", True), ("255.255.255.255/32", False),
    ("::/3", False), ("2001::/16", False), ("2002::/16", False), ("2620:4f:8000::/48", False),
    ("3fff::/20", False), ("4000::/2", True), ("8000::/2", True), ("c000::/3", True), ("e000::/4", True),
    ("f000::/5", True), ("f800::/6", True), ("fc00::/7", True), ("fe00::/9", True), ("fe80::/10", True),
    ("fec0::/10", False), ("ff00::/8", True),
)
PUBLIC_TYPES = frozenset({"Public", "Teredo"})
_UNKNOWN, _PRIVATE, _TOR = CLASS_CODE["unknown"], CLASS_CODE["private"], CLASS_CODE["tor"]
# Above this many rows, the first SAMPLE_ROWS are de-duplicated to see whether de-duplicating pays:
# when most sampled values are distinct, hashing every string costs more than it saves.
SAMPLE_ROWS = 65_536


@dataclass
class Resolution:
    """Per distinct value: codes (-1 = null) into the pools, and the ASN (0 = none)."""

    cls: np.ndarray
    decided: np.ndarray
    asn: np.ndarray
    name: np.ndarray
    country: np.ndarray
    asn_src: np.ndarray
    detail: np.ndarray
    name_pool: pa.Array
    country_pool: pa.Array
    detail_pool: pa.Array
    label_pool: pa.Array


class _Labels:
    """decided_by strings, interned to small integer codes."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.codes: dict[str, int] = {}

    def code(self, label: str) -> int:
        if label not in self.codes:
            self.codes[label] = len(self.items)
            self.items.append(label)
        return self.codes[label]


class _Keys:
    """Parsed values with the IPv4 keys sorted once, so every table look-up walks memory in order."""

    def __init__(self, parsed: ParsedAddresses) -> None:
        self.parsed = parsed
        self.is4, self.is6 = parsed.family == 4, parsed.family == 6
        k4 = parsed.v4[self.is4]
        self.order = v4_order(k4)
        self.k4_sorted = k4[self.order]
        self.k6 = parsed.v6[self.is6]

    def lookup(self, table: RangeTable) -> np.ndarray:
        out = np.full(len(self.parsed.family), -1, np.int64)
        if len(table) == 0:
            return out
        r4 = np.empty(len(self.order), np.int64)
        r4[self.order] = table.v4.lookup(self.k4_sorted)
        out[self.is4] = r4
        out[self.is6] = table.v6.lookup(self.k6)
        return out

    def text(self, row: int) -> str:
        fam = int(self.parsed.family[row])
        return key_text(4, int(self.parsed.v4[row])) if fam == 4 else key_text(6, self.parsed.v6[row])


def resolve(intel: NetIntel, values: pa.Array) -> Resolution:
    """The verdict for each distinct value, in the documented precedence."""
    keys = _Keys(parse_addresses(values))
    n = len(values)
    labels = _Labels()
    cls = np.full(n, _UNKNOWN, np.int8)
    decided = np.full(n, -1, np.int64)
    public = keys.parsed.family > 0

    block = keys.lookup(intel.special)
    for b, word in enumerate(intel.special_words):
        sel = public & (block == b)
        if word is not None and word not in PUBLIC_TYPES and sel.any():
            public[sel], cls[sel], decided[sel] = False, _PRIVATE, labels.code(f"ip_type:{word}")
    asked = [b for b, word in enumerate(intel.special_words) if word is None]
    for row in np.flatnonzero(public & np.isin(block, asked)).tolist():
        word = ip_type(keys.text(row))
        if word not in PUBLIC_TYPES:
            public[row], cls[row], decided[row] = False, _PRIVATE, labels.code(f"ip_type:{word}")

    info = _asn_info(intel, keys, public)
    _, builtin_row = intel.builtin.lookup(info["asn"])
    # An AS the data names without a name gets the built-in table's name for it.
    fallback = (info["name"] < 0) & (builtin_row >= 0)
    name = np.where(fallback, len(info["name_pool"]) + builtin_row, info["name"])
    name_pool = pa.concat_arrays([info["name_pool"], intel.builtin.names])

    todo = public.copy()
    hit_rows = keys.lookup(intel.tor.table)
    hit = todo & (hit_rows >= 0)
    tor_codes = np.array([labels.code(f"tor:{label}") for label in intel.tor.labels], np.int64)
    if hit.any():
        cls[hit], decided[hit] = _TOR, tor_codes[intel.tor.file_of[hit_rows[hit]]]
    todo &= ~hit

    detail = np.full(n, -1, np.int64)
    hit_rows = keys.lookup(intel.cloud.table)
    hit = todo & (hit_rows >= 0)
    cloud_codes = np.array([labels.code(f"cloud:{label}") for label in intel.cloud.labels], np.int64)
    if hit.any():
        rows = hit_rows[hit]
        cls[hit], detail[hit] = intel.cloud.attrs["cls"][rows], rows
        decided[hit] = cloud_codes[intel.cloud.file_of[rows]]
    todo &= ~hit

    src_labels = intel.asn.labels + [m.info.label for m in intel.mmdbs]
    hit = todo & (info["cls"] >= 0) & (info["src"] >= 0)
    if hit.any():
        via_src = np.array([[labels.code(f"{via}:{src}") if via else -1 for src in src_labels]
                            for via in VIA_LABELS], np.int64)
        cls[hit] = info["cls"][hit]
        decided[hit] = via_src[info["via"][hit], info["src"][hit]]
    src_codes = np.array([labels.code(label) for label in src_labels] or [-1], np.int64)
    asn_src = np.where(info["src"] >= 0, src_codes[np.maximum(info["src"], 0)], -1)

    return Resolution(cls, decided, info["asn"], name, info["country"], asn_src, detail, name_pool,
                      info["country_pool"], intel.cloud.attrs["details"], pa.array(labels.items, pa.string()))


def _asn_info(intel: NetIntel, keys: _Keys, public: np.ndarray) -> dict[str, Any]:
    """ASN, pool rows of name and country, source index, class and VIA code per distinct value.

    IP-to-ASN tables answer first; MMDB files, in the configured order, fill what they left open.
    """
    layer = intel.asn
    rows = keys.lookup(layer.table)
    found = public & (rows >= 0)
    safe = np.maximum(rows, 0)
    n = len(rows)
    if len(layer.file_of):
        asn = np.where(found, layer.attrs["asn"][safe], 0)
        src = np.where(found, layer.file_of[safe], -1)
        cls = np.where(found, layer.attrs["cls"][safe], -1).astype(np.int8)
        via = np.where(found, layer.attrs["via"][safe], 0).astype(np.int8)
    else:
        asn, src = np.zeros(n, np.int64), np.full(n, -1, np.int64)
        cls, via = np.full(n, -1, np.int8), np.zeros(n, np.int8)
    name_pool, country_pool = layer.attrs["names"], layer.attrs["countries"]
    named = name_pool.is_valid().to_numpy(zero_copy_only=False)
    name = np.where(found & named[safe], rows, -1) if len(named) else np.full(n, -1, np.int64)
    country = np.where(found, rows, -1)
    if intel.mmdbs:
        missing = np.flatnonzero(public & (asn == 0))
        texts = [keys.text(r) for r in missing.tolist()]
        fams = keys.parsed.family[missing].tolist()
        for m, reader in enumerate(intel.mmdbs):
            got_asn, got_name, got_country = reader.lookup(texts, fams)
            got = np.asarray(got_asn, np.int64)
            take = (got > 0) & (asn[missing] == 0)
            names = pa.array(got_name, pa.string())
            m_cls, m_via = classify_asns(got, names)
            sel = missing[take]
            asn[sel], src[sel] = got[take], len(layer.labels) + m
            has_name = take & names.is_valid().to_numpy(zero_copy_only=False)
            name[missing[has_name]] = len(name_pool) + np.flatnonzero(has_name)
            cls[sel], via[sel] = m_cls[take], m_via[take]
            has_country = np.array([c is not None for c in got_country], bool) & (country[missing] < 0)
            country[missing[has_country]] = len(country_pool) + np.flatnonzero(has_country)
            name_pool = pa.concat_arrays([name_pool, names])
            country_pool = pa.concat_arrays([country_pool, pa.array(got_country, pa.string())])
    return {"asn": asn, "name": name, "country": country, "src": src, "cls": cls, "via": via,
            "name_pool": name_pool, "country_pool": country_pool}


def v4_order(keys: np.ndarray) -> np.ndarray:
    """Sort order of IPv4 keys: packing key and position in one uint64 lets numpy's radix sort do it."""
    if len(keys) == 0 or len(keys) >= 1 << 32:
        return np.argsort(keys, kind="stable")
    packed = (keys << np.uint64(32)) | np.arange(len(keys), dtype=np.uint64)
    return (np.sort(packed) & np.uint64(0xFFFFFFFF)).astype(np.int64)


def distinct_values(arr: pa.Array) -> tuple[pa.Array, np.ndarray | None]:
    """The values to classify and, per input row, its position among them (None = one per row)."""
    if isinstance(arr, pa.DictionaryArray):
        dictionary, indices = arr.dictionary, arr.indices
    else:
        if len(arr) > SAMPLE_ROWS and len(arr.slice(0, SAMPLE_ROWS).unique()) > SAMPLE_ROWS // 2:
            return arr, None
        enc = arr.dictionary_encode()
        dictionary, indices = enc.dictionary, enc.indices
    if not pa.types.is_string(dictionary.type):
        dictionary = dictionary.cast(pa.string())
    idx = indices.to_numpy(zero_copy_only=False)
    if indices.null_count:
        # A null address becomes one more "distinct" value that parses as nothing.
        dictionary = pa.concat_arrays([dictionary, pa.array([None], pa.string())])
        idx = np.where(indices.is_valid().to_numpy(zero_copy_only=False), idx, len(dictionary) - 1)
    return dictionary, idx.astype(np.int64)


def as_string_array(ips: Any) -> pa.Array:
    """Arrow string (or dictionary) array from an Arrow array, a chunked array or a sequence."""
    if isinstance(ips, pa.ChunkedArray):
        if not ips.num_chunks:
            return pa.array([], pa.string())
        ips = (ips.unify_dictionaries() if pa.types.is_dictionary(ips.type) else ips).combine_chunks()
    if isinstance(ips, pa.Array):
        if isinstance(ips, pa.DictionaryArray):
            return ips
        return ips if pa.types.is_string(ips.type) else ips.cast(pa.string())
    return pa.array([None if v is None else str(v) for v in ips], pa.string())
