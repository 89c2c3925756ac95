"""Address keys and vectorised range tables.

IPv4 addresses are uint64 keys (room for 2**32, the successor of 255.255.255.255). IPv6 addresses
are 16-byte big-endian strings (numpy ``S16``): numpy orders ``S`` values bytewise, which for
fixed-width big-endian bytes is exactly 128-bit integer order, so one ``np.searchsorted`` answers an
IPv6 look-up without a Python loop. While a table is built, IPv6 values travel as two uint64 halves
(hi, lo) so that successor and span arithmetic stay vectorised.

A table is a set of inclusive ranges, each carrying a payload row number and a priority. Ranges may
overlap: at load time they are cut into elementary segments at every start and every end + 1, and
each segment keeps the most specific covering range (smallest span, then highest priority, then the
range given last). A look-up is then a single ``searchsorted`` over the segment starts; segments no
range covers carry payload -1, so no end array is needed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

U64 = np.uint64
_MASK64 = (1 << 64) - 1
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# Same strictness as ipaddress: four decimal octets, no leading zeros, nothing around them.
V4_PATTERN = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"


# ---------------------------------------------------------------- parsing addresses


def _string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (int64) and data bytes of a string array, honouring a slice offset."""
    width = 8 if pa.types.is_large_string(arr.type) else 4
    offs = np.frombuffer(arr.buffers()[1], np.int64 if width == 8 else np.int32,
                         count=len(arr) + 1, offset=arr.offset * width).astype(np.int64)
    data_buf = arr.buffers()[2]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(1, np.uint8)
    return offs, data


def v4_keys(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """uint64 keys and a validity mask for dotted-quad strings, without a per-value Python loop.

    The regex (RE2, in Arrow) validates; the octets are then read straight from the string
    buffer: after validation every row holds exactly three dots, so the dot positions reshape to
    (n, 3) and each octet is one to three digits gathered at fixed offsets.
    """
    n = len(arr)
    keys = np.zeros(n, U64)
    if n == 0:
        return keys, np.zeros(0, bool)
    ok = pc.match_substring_regex(arr, V4_PATTERN).fill_null(False).to_numpy(zero_copy_only=False)
    if not ok.any():
        return keys, ok
    sub = arr.filter(pa.array(ok)) if not ok.all() else arr
    offs, data = _string_buffers(sub)
    lo, hi = int(offs[0]), int(offs[-1])
    dots = (np.flatnonzero(data[lo:hi] == 46) + lo).reshape(-1, 3)
    starts = np.column_stack([offs[:-1], dots + 1])
    length = np.column_stack([dots, offs[1:]]) - starts
    last = len(data) - 1
    # Gather bytes first and widen only what was gathered: the buffer itself stays uint8.
    c0 = data[starts].astype(np.int32) - 48
    c1 = data[np.minimum(starts + 1, last)].astype(np.int32) - 48
    c2 = data[np.minimum(starts + 2, last)].astype(np.int32) - 48
    octets = np.where(length == 1, c0, np.where(length == 2, c0 * 10 + c1, c0 * 100 + c1 * 10 + c2))
    low = (octets[:, 1] << 16 | octets[:, 2] << 8 | octets[:, 3]).astype(U64)
    keys[ok] = (octets[:, 0].astype(U64) << U64(24)) | low
    return keys, ok


def v6_bytes(text: str) -> bytes | None:
    """16 network-order bytes of an IPv6 literal (zone id and brackets dropped), or None."""
    text = text.split("%", 1)[0]
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class ParsedAddresses:
    """Per input value: family (0 = not an address, 4, 6) and its key in that family.

    IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are folded into IPv4: the remote host is the same.
    """

    family: np.ndarray  # int8
    v4: np.ndarray  # uint64, valid where family == 4
    v6: np.ndarray  # S16, valid where family == 6


def parse_addresses(arr: pa.Array) -> ParsedAddresses:
    """Parse distinct address strings: IPv4 vectorised, the rest (IPv6 literals) one by one."""
    if pa.types.is_large_string(arr.type) or not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    n = len(arr)
    keys4, ok4 = v4_keys(arr)
    family = np.where(ok4, 4, 0).astype(np.int8)
    v6 = np.zeros(n, "S16")
    rows = np.flatnonzero(~ok4)
    if len(rows):
        texts = arr.take(pa.array(rows)).to_pylist()
        for row, text in zip(rows.tolist(), texts, strict=True):
            raw = v6_bytes(text) if text and ":" in text else None
            if raw is None:
                continue
            if raw[:12] == _MAPPED_PREFIX:
                family[row] = 4
                keys4[row] = int.from_bytes(raw[12:], "big")
            else:
                family[row] = 6
                v6[row] = raw
    return ParsedAddresses(family, keys4, v6)


def s16_from_halves(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    pair = np.empty((len(hi), 2), ">u8")
    pair[:, 0] = hi
    pair[:, 1] = lo
    return pair.view("S16").reshape(-1)


def halves_from_s16(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pair = np.frombuffer(np.ascontiguousarray(keys).tobytes(), ">u8").reshape(-1, 2)
    return pair[:, 0].astype(U64), pair[:, 1].astype(U64)


def key_text(family: int, key: int | bytes) -> str:
    """Canonical text of one key (used only for the few addresses that need a second opinion)."""
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, int(key).to_bytes(4, "big"))
    raw = key if isinstance(key, bytes) else int(key).to_bytes(16, "big")
    return socket.inet_ntop(socket.AF_INET6, raw.ljust(16, b"\x00"))


# ---------------------------------------------------------------- building tables


@dataclass
class RangeSpec:
    """Inclusive ranges of one address family as column arrays (v4: hi is all zero)."""

    start_hi: np.ndarray
    start_lo: np.ndarray
    end_hi: np.ndarray
    end_lo: np.ndarray
    payload: np.ndarray  # int64 row in the owner's attribute arrays
    priority: np.ndarray  # int64; higher wins between ranges of equal size

    @classmethod
    def empty(cls) -> RangeSpec:
        z = np.zeros(0, U64)
        return cls(z, z, z, z, np.zeros(0, np.int64), np.zeros(0, np.int64))

    @classmethod
    def from_ints(cls, starts: Iterable[int], ends: Iterable[int], payload: Iterable[int],
                  priority: Iterable[int] | None = None) -> RangeSpec:
        s, e = list(starts), list(ends)
        pay = np.asarray(list(payload), np.int64)
        pri = np.zeros(len(s), np.int64) if priority is None else np.asarray(list(priority), np.int64)
        return cls(np.array([x >> 64 for x in s], U64), np.array([x & _MASK64 for x in s], U64),
                   np.array([x >> 64 for x in e], U64), np.array([x & _MASK64 for x in e], U64), pay, pri)

    def __len__(self) -> int:
        return len(self.payload)

    def concat(self, other: RangeSpec) -> RangeSpec:
        return RangeSpec(*(np.concatenate([a, b]) for a, b in zip(self._cols(), other._cols(), strict=True)))

    def _cols(self) -> tuple[np.ndarray, ...]:
        return (self.start_hi, self.start_lo, self.end_hi, self.end_lo, self.payload, self.priority)


@dataclass
class CidrSplit:
    """Prefixes parsed into per-family RangeSpecs, with the input positions that failed."""

    v4: RangeSpec
    v6: RangeSpec
    rejected: list[int]


def cidr_specs(prefixes: Iterable[str], payload: Iterable[int],
               priority: Iterable[int] | None = None) -> CidrSplit:
    """Turn CIDR strings (or bare addresses) into RangeSpecs; one Python parse per prefix at load time."""
    cols: dict[int, tuple[list[int], ...]] = {4: ([], [], [], []), 6: ([], [], [], [])}
    rejected: list[int] = []
    pri_iter = iter(priority) if priority is not None else None
    for i, (text, pay) in enumerate(zip(prefixes, payload, strict=True)):
        pri = next(pri_iter) if pri_iter is not None else 0
        try:
            net = ipaddress.ip_network(str(text).strip(), strict=False)
        except ValueError:
            rejected.append(i)
            continue
        first, last, version = int(net.network_address), int(net.broadcast_address), net.version
        if version == 6 and net.prefixlen >= 96 and (first >> 32) == 0xFFFF:
            first, last, version = first & 0xFFFFFFFF, last & 0xFFFFFFFF, 4
        s, e, p, r = cols[version]
        s.append(first)
        e.append(last)
        p.append(pay)
        r.append(pri)
    return CidrSplit(RangeSpec.from_ints(*cols[4]), RangeSpec.from_ints(*cols[6]), rejected)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sort and drop repeats (np.unique may hash first, which is far slower for these keys)."""
    values = np.sort(values)
    keep = np.ones(len(values), bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


def _successor(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo2 = lo + U64(1)
    carry = lo2 == 0
    hi2 = hi + carry.astype(U64)
    overflow = carry & (hi == U64(_MASK64))
    return hi2, lo2, overflow


class FamilyTable:
    """Non-overlapping segments of one family: sorted starts and the winning payload of each."""

    def __init__(self, starts: np.ndarray, payload: np.ndarray, v6: bool) -> None:
        self.starts = starts
        self.payload = payload
        self.v6 = v6

    @classmethod
    def build(cls, spec: RangeSpec, v6: bool) -> FamilyTable:
        keyer = s16_from_halves if v6 else (lambda hi, lo: lo)
        empty = cls(np.zeros(0, "S16" if v6 else U64), np.zeros(0, np.int64), v6)
        if len(spec) == 0:
            return empty
        shi, slo, ehi, elo = spec.start_hi, spec.start_lo, spec.end_hi, spec.end_lo
        valid = (shi < ehi) | ((shi == ehi) & (slo <= elo))
        shi, slo, ehi, elo = shi[valid], slo[valid], ehi[valid], elo[valid]
        payload, priority = spec.payload[valid], spec.priority[valid]
        n = len(payload)
        if n == 0:
            return empty
        nhi, nlo, overflow = _successor(ehi, elo)
        start_keys, next_keys = keyer(shi, slo), keyer(nhi, nlo)
        points = _sorted_unique(np.concatenate([start_keys, next_keys[~overflow]]))
        first = np.searchsorted(points, start_keys)
        after = np.where(overflow, len(points), np.searchsorted(points, next_keys))
        # span = end - start (128-bit with borrow); most specific = smallest span.
        span_lo = elo - slo
        span_hi = ehi - shi - (elo < slo).astype(U64)
        order = np.lexsort((-np.arange(n), -priority, span_lo, span_hi))
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        lengths = after - first
        total = int(lengths.sum())
        offsets = np.cumsum(lengths) - lengths
        cover = np.repeat(first - offsets, lengths) + np.arange(total)
        best = np.full(len(points), n, np.int64)
        np.minimum.at(best, cover, np.repeat(rank, lengths))
        winner = np.where(best < n, payload[order[np.minimum(best, n - 1)]], -1)
        keep = np.ones(len(points), bool)
        keep[1:] = winner[1:] != winner[:-1]
        return cls(points[keep], winner[keep], v6)

    def __len__(self) -> int:
        return int((self.payload >= 0).sum())

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Payload row per key (-1 where no range covers it). Sorted keys make this cache-friendly."""
        if len(self.starts) == 0 or len(keys) == 0:
            return np.full(len(keys), -1, np.int64)
        idx = np.searchsorted(self.starts, keys, side="right") - 1
        return np.where(idx >= 0, self.payload[np.maximum(idx, 0)], -1)


@dataclass
class RangeTable:
    """One IPv4 and one IPv6 FamilyTable built from the same payload space."""

    v4: FamilyTable
    v6: FamilyTable

    @classmethod
    def build(cls, v4: RangeSpec, v6: RangeSpec) -> RangeTable:
        return cls(FamilyTable.build(v4, v6=False), FamilyTable.build(v6, v6=True))

    @classmethod
    def empty(cls) -> RangeTable:
        return cls.build(RangeSpec.empty(), RangeSpec.empty())

    def __len__(self) -> int:
        return len(self.v4) + len(self.v6)

    def lookup(self, v4_keys: np.ndarray, v6_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.v4.lookup(v4_keys), self.v6.lookup(v6_keys)
