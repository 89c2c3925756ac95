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


def ip_types(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    return _per_distinct(values, ip_type, pa.string())


def internal_mask(values: pa.ChunkedArray | pa.Array, internal: InternalNetworks) -> np.ndarray:
    """True where the address is internal or never routed beyond the local network."""
    def local(ip: str | None) -> bool:
        return internal.contains(ip) or ip_type(ip) in LOCAL_TYPES

    arr = _per_distinct(values, local, pa.bool_())
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


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
