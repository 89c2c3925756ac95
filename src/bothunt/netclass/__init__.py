"""Address classes computed the same way for every source: internal vs external, Defender's
RemoteIPType vocabulary, and connection direction.

Classification is per *distinct* address (Arrow dictionary encoding), so a batch of a million rows
with ten thousand addresses costs ten thousand look-ups, not a million.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
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


def _per_distinct(values: pa.ChunkedArray | pa.Array, fn, out_type: pa.DataType) -> pa.Array:  # type: ignore[no-untyped-def]
    """Apply a Python function to each distinct value and broadcast back with `take`."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    enc = values.dictionary_encode()
    mapped = pa.array([fn(v) for v in enc.dictionary.to_pylist()], out_type)
    return mapped.take(enc.indices)


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


def _classify_distinct(values: pa.ChunkedArray | pa.Array, internal: InternalNetworks | None
                       ) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """(dictionary indices, Defender type per distinct value, local mask per distinct value).

    Plain dotted-quad IPv4 outside every special block is decided in numpy; IPv6 and special IPv4
    blocks go through the cached Python functions, once per distinct value."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    enc = values.dictionary_encode()
    dictionary = enc.dictionary
    v4, ints = _dotted_quads(dictionary)
    special = np.ones(len(dictionary), dtype=bool)
    special[np.flatnonzero(v4)] = _in_any(ints, _SPECIAL_BOUNDS)
    types = np.full(len(dictionary), "Public", dtype=object)
    local = np.zeros(len(dictionary), dtype=bool)
    if internal is not None and v4.any():
        local[np.flatnonzero(v4)] = _in_any(ints, internal.v4_bounds)
    slow = np.flatnonzero(special)
    names = dictionary.take(pa.array(slow, pa.int64())).to_pylist() if slow.size else []
    for i, ip in zip(slow.tolist(), names, strict=True):
        types[i] = ip_type(ip)
        if internal is not None:
            local[i] = internal.contains(ip) or types[i] in LOCAL_TYPES
    return enc.indices, pa.array(types, pa.string()), local


def ip_types(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    indices, types, _ = _classify_distinct(values, None)
    return types.take(indices)


def internal_mask(values: pa.ChunkedArray | pa.Array, internal: InternalNetworks) -> np.ndarray:
    """True where the address is internal or never routed beyond the local network."""
    indices, _, local = _classify_distinct(values, internal)
    idx = np.asarray(indices.to_numpy(zero_copy_only=False))
    out = np.zeros(len(idx), dtype=bool)
    valid = ~np.asarray(pc.is_null(indices).to_numpy(zero_copy_only=False), dtype=bool)
    out[valid] = local[idx[valid].astype(np.int64)]
    return out


def directions(src: pa.ChunkedArray | pa.Array, dst: pa.ChunkedArray | pa.Array,
               internal: InternalNetworks) -> pa.Array:
    s = internal_mask(src, internal)
    d = internal_mask(dst, internal)
    out = np.where(s & d, "internal", np.where(s, "outbound", np.where(d, "inbound", "external")))
    return pa.array(out, pa.string())


def annotate(table: pa.Table, internal: InternalNetworks) -> pa.Table:
    """Fill `direction` and `remote_ip_type` on a canonical conn table where the source left them null.

    The remote side is dst for outbound/internal/external rows and src for inbound rows, as in
    DESIGN.md. A value the source carried (Defender's own RemoteIPType, its inbound ActionType) wins.
    """
    if table.num_rows == 0:
        return table
    ours = directions(table["src_ip"], table["dst_ip"], internal)
    direction = pc.coalesce(table["direction"], ours)
    remote = pc.if_else(pc.equal(direction, "inbound"), table["src_ip"], table["dst_ip"])
    rtype = pc.coalesce(table["remote_ip_type"], ip_types(remote))
    table = table.set_column(table.schema.get_field_index("direction"), "direction", direction)
    return table.set_column(table.schema.get_field_index("remote_ip_type"), "remote_ip_type", rtype)


def parse_cidrs(text: str | Sequence[str] | None) -> InternalNetworks:
    if text is None:
        return InternalNetworks()
    items = text.split(",") if isinstance(text, str) else list(text)
    return InternalNetworks(items)
