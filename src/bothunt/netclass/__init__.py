"""Address classes computed the same way for every source: internal vs external, Defender's
RemoteIPType vocabulary, and connection direction.

Classification is per *distinct* address (Arrow dictionary encoding), so a batch of a million rows
with ten thousand addresses costs ten thousand look-ups, not a million.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.errors import ConfigError

DEFAULT_INTERNAL = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "100.64.0.0/10")

# Defender's RemoteIPType words, plus LinkLocal and Multicast where Defender has none.
IP_TYPES = ("Public", "Private", "Reserved", "Loopback", "Teredo", "FourToSixMapping", "Broadcast",
            "LinkLocal", "Multicast")
# Types that never leave the local network, so they never make a connection outbound/inbound.
LOCAL_TYPES = frozenset({"Loopback", "LinkLocal", "Multicast", "Broadcast", "Reserved"})

_V4_PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                  "100.64.0.0/10")]
_TEREDO = ipaddress.ip_network("2001::/32")
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_ULA = ipaddress.ip_network("fc00::/7")


class InternalNetworks:
    """The configured internal networks; membership is tested per distinct address."""

    def __init__(self, cidrs: Iterable[str] = DEFAULT_INTERNAL) -> None:
        try:
            self.cidrs = tuple(str(ipaddress.ip_network(c.strip(), strict=False)) for c in cidrs if c.strip())
        except ValueError as exc:
            raise ConfigError(f"internal networks: {exc}") from exc
        self._nets = [ipaddress.ip_network(c) for c in self.cidrs]
        self.v4_bounds = _v4_bounds(self.cidrs)
        self.contains = lru_cache(maxsize=1 << 18)(self._contains)

    def _contains(self, ip: str | None) -> bool:
        addr = parse_ip(ip)
        return addr is not None and any(addr.version == n.version and addr in n for n in self._nets)

    def __repr__(self) -> str:
        return f"InternalNetworks({', '.join(self.cidrs)})"


@lru_cache(maxsize=1 << 18)
def parse_ip(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not ip:
        return None
    try:
        return ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None


@lru_cache(maxsize=1 << 18)
def ip_type(ip: str | None) -> str | None:
    """Defender's RemoteIPType word for one address (None when it is not an address)."""
    addr = parse_ip(ip)
    if addr is None:
        return None
    if addr.version == 6:
        if addr.is_loopback:
            return "Loopback"
        if addr in _MAPPED:
            return "FourToSixMapping"
        if addr in _TEREDO:
            return "Teredo"
        if addr.is_link_local:
            return "LinkLocal"
        if addr.is_multicast:
            return "Multicast"
        if addr in _ULA:
            return "Private"
        if addr.is_unspecified or addr.is_reserved or not addr.is_global:
            return "Reserved"
        return "Public"
    if addr.is_loopback:
        return "Loopback"
    if int(addr) == 0xFFFFFFFF:
        return "Broadcast"
    if addr.is_link_local:
        return "LinkLocal"
    if addr.is_multicast:
        return "Multicast"
    if any(addr in n for n in _V4_PRIVATE):
        return "Private"
    if not addr.is_global:
        return "Reserved"
    return "Public"


# IPv4 blocks with any special meaning (a superset of what `ip_type` treats as non-Public). Addresses
# outside all of them are Public without asking Python; those inside go through `ip_type`, which is
# cached, and are few (the internal hosts, mostly).
_V4_SPECIAL = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
               "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
               "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3")
_DOTTED = r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$"


def _v4_bounds(cidrs: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    nets = [ipaddress.ip_network(c) for c in cidrs]
    nets = [n for n in nets if n.version == 4]
    lo = np.array([int(n.network_address) for n in nets], dtype=np.uint32)
    hi = np.array([int(n.broadcast_address) for n in nets], dtype=np.uint32)
    return lo, hi


def _in_any(ints: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    lo, hi = bounds
    if lo.size == 0:
        return np.zeros(ints.shape, dtype=bool)
    return ((ints[:, None] >= lo[None, :]) & (ints[:, None] <= hi[None, :])).any(axis=1)


_SPECIAL_BOUNDS = _v4_bounds(_V4_SPECIAL)


def _dotted_quads(dictionary: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(is_plain_ipv4 mask, uint32 values for those) for an array of distinct strings, vectorised."""
    ok = pc.fill_null(pc.match_substring_regex(dictionary, _DOTTED), False)
    mask = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
    quads = dictionary.filter(ok)
    if len(quads) == 0:
        return mask, np.zeros(0, dtype=np.uint32)
    octets = pc.split_pattern(quads, ".").flatten().cast(pa.uint32()).to_numpy().reshape(-1, 4)
    ints = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
    return mask, ints.astype(np.uint32)


_TYPE_WORDS = pa.array(IP_TYPES, pa.string())
_TYPE_CODE = {t: i for i, t in enumerate(IP_TYPES)}
_PUBLIC = _TYPE_CODE["Public"]
_DIRECTION_WORDS = pa.array(["external", "outbound", "inbound", "internal"], pa.string())


@dataclass(frozen=True)
class _Classified:
    """One address column classified per distinct value and broadcast back to rows as small integers:
    `code` indexes IP_TYPES (-1: null or not an address), `local` is internal-or-never-routed."""

    code: np.ndarray
    local: np.ndarray


def _words(codes: np.ndarray, words: pa.Array) -> pa.Array:
    """Integer codes (-1 for null) -> strings: one `take`, no per-row Python or numpy strings."""
    return words.take(pa.array(codes, pa.int8(), mask=codes < 0))


def _classify(values: pa.ChunkedArray | pa.Array, internal: InternalNetworks | None) -> _Classified:
    """Plain dotted-quad IPv4 outside every special block is decided in numpy; IPv6 and special IPv4
    blocks go through the cached Python functions, once per distinct value."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    enc = values.dictionary_encode()
    dictionary = enc.dictionary
    v4, ints = _dotted_quads(dictionary)
    special = np.ones(len(dictionary), dtype=bool)
    special[np.flatnonzero(v4)] = _in_any(ints, _SPECIAL_BOUNDS)
    types = np.full(len(dictionary), _PUBLIC, dtype=np.int8)
    local = np.zeros(len(dictionary), dtype=bool)
    if internal is not None and v4.any():
        local[np.flatnonzero(v4)] = _in_any(ints, internal.v4_bounds)
    slow = np.flatnonzero(special)
    names = dictionary.take(pa.array(slow, pa.int64())).to_pylist() if slow.size else []
    for i, ip in zip(slow.tolist(), names, strict=True):
        word = ip_type(ip)
        types[i] = -1 if word is None else _TYPE_CODE[word]
        if internal is not None:
            local[i] = internal.contains(ip) or word in LOCAL_TYPES
    idx = np.asarray(pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    valid = idx >= 0
    # An empty dictionary (all null) still needs one slot to index into.
    types, local = np.append(types, np.int8(-1)), np.append(local, False)
    idx = np.where(valid, idx, len(types) - 1)
    return _Classified(code=types[idx], local=local[idx])


def ip_types(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    return _words(_classify(values, None).code, _TYPE_WORDS)


def internal_mask(values: pa.ChunkedArray | pa.Array, internal: InternalNetworks) -> np.ndarray:
    """True where the address is internal or never routed beyond the local network."""
    return _classify(values, internal).local


def _direction_codes(s_local: np.ndarray, d_local: np.ndarray) -> np.ndarray:
    # bit 0: source is local, bit 1: destination is local -> external, outbound, inbound, internal
    return s_local.astype(np.int8) | (d_local.astype(np.int8) << 1)


def directions(src: pa.ChunkedArray | pa.Array, dst: pa.ChunkedArray | pa.Array,
               internal: InternalNetworks) -> pa.Array:
    codes = _direction_codes(internal_mask(src, internal), internal_mask(dst, internal))
    return _words(codes, _DIRECTION_WORDS)


def annotate(table: pa.Table, internal: InternalNetworks) -> pa.Table:
    """Fill `direction` and `remote_ip_type` on a canonical conn table where the source left them null.

    The remote side is dst for outbound/internal/external rows and src for inbound rows, as in
    DESIGN.md. A value the source carried (Defender's own RemoteIPType, its inbound ActionType) wins.
    Each address column is classified once and both answers are derived from the codes.
    """
    if table.num_rows == 0:
        return table
    src, dst = _classify(table["src_ip"], internal), _classify(table["dst_ip"], internal)
    ours = _words(_direction_codes(src.local, dst.local), _DIRECTION_WORDS)
    given = table["direction"]
    direction = ours if given.null_count == len(given) else pc.coalesce(given, ours)
    if direction is ours:
        inbound = src.local < dst.local  # code 2: destination local, source not
    else:
        inbound = np.asarray(pc.fill_null(pc.equal(direction, "inbound"), False)
                             .to_numpy(zero_copy_only=False), dtype=bool)
    remote = _words(np.where(inbound, src.code, dst.code), _TYPE_WORDS)
    given = table["remote_ip_type"]
    rtype = remote if given.null_count == len(given) else pc.coalesce(given, remote)
    table = table.set_column(table.schema.get_field_index("direction"), "direction", direction)
    return table.set_column(table.schema.get_field_index("remote_ip_type"), "remote_ip_type", rtype)


def parse_cidrs(text: str | Sequence[str] | None) -> InternalNetworks:
    if text is None:
        return InternalNetworks()
    items = text.split(",") if isinstance(text, str) else list(text)
    return InternalNetworks(items)
