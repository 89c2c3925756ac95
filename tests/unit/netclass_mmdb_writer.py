"""A tiny MaxMind DB writer for tests (the ``maxminddb`` package only reads).

Follows the MaxMind DB File Format Specification v2.0: a binary search tree (one bit per level,
records of 24, 28 or 32 bits; a record equal to the node count means "no data", a larger one
points into the data section at record - node_count - 16), 16 zero bytes, the data section, then
the metadata marker and the metadata map. IPv4 networks in an IPv6 tree sit under ::/96, where
readers start IPv4 look-ups.
"""

from __future__ import annotations

import ipaddress
import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


@dataclass(frozen=True)
class Typed:
    """An integer with an explicit MaxMind type (5 uint16, 6 uint32, 9 uint64, 8 int32)."""

    type_id: int
    value: int


def u16(v: int) -> Typed:
    return Typed(5, v)


def u32(v: int) -> Typed:
    return Typed(6, v)


def u64(v: int) -> Typed:
    return Typed(9, v)


def _control(type_id: int, size: int) -> bytes:
    if size < 29:
        head, extra = size, b""
    elif size < 29 + 256:
        head, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        head, extra = 30, (size - 285).to_bytes(2, "big")
    else:
        head, extra = 31, (size - 65821).to_bytes(3, "big")
    if type_id <= 7:
        return bytes([(type_id << 5) | head]) + extra
    return bytes([head, type_id - 7]) + extra


def _uint(type_id: int, value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return _control(type_id, len(raw)) + raw


def encode(value: Any) -> bytes:
    """One data field: maps, arrays, strings, ints (uint32 / uint64 unless Typed), bools, doubles."""
    if isinstance(value, Typed):
        if value.type_id == 8:
            raw = struct.pack(">i", value.value)
            return _control(8, len(raw)) + raw
        return _uint(value.type_id, value.value)
    if isinstance(value, bool):
        return _control(14, int(value))
    if isinstance(value, int):
        if value < 0:
            raise ValueError("use Typed(8, v) for negative integers")
        return _uint(6 if value < 1 << 32 else 9, value)
    if isinstance(value, float):
        return _control(3, 8) + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _control(2, len(raw)) + raw
    if isinstance(value, bytes):
        return _control(4, len(value)) + value
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(encode(str(k)) + encode(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return _control(11, len(value)) + b"".join(encode(v) for v in value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _pack(left: int, right: int, record_size: int) -> bytes:
    if record_size == 24:
        return left.to_bytes(3, "big") + right.to_bytes(3, "big")
    if record_size == 28:
        middle = ((left >> 24) & 0x0F) << 4 | ((right >> 24) & 0x0F)
        return (left & 0xFFFFFF).to_bytes(3, "big") + bytes([middle]) + (right & 0xFFFFFF).to_bytes(3, "big")
    if record_size == 32:
        return left.to_bytes(4, "big") + right.to_bytes(4, "big")
    raise ValueError("record_size must be 24, 28 or 32")


def write_mmdb(path: Path, networks: list[tuple[str, dict[str, Any]]], *, ip_version: int = 6,
               record_size: int = 28, database_type: str = "Test-DB", build_epoch: int | None = None) -> Path:
    """Write `networks` (CIDR, record) to `path`; later and more specific networks override."""
    bits = 128 if ip_version == 6 else 32
    # A node is [left, right]; a child is ("node", index), ("data", key) or None.
    nodes: list[list[Any]] = [[None, None]]
    payloads: dict[str, Any] = {}
    # Shorter prefixes first, so a longer one later splits their leaf; equal ones keep input order.
    ordered = sorted(enumerate(networks),
                     key=lambda item: (ipaddress.ip_network(item[1][0]).prefixlen, item[0]))
    for _, (cidr, record) in ordered:
        net = ipaddress.ip_network(cidr, strict=False)
        value, length = int(net.network_address), net.prefixlen
        if net.version == 4 and ip_version == 6:
            length += 96
        elif net.version == 6 and ip_version == 4:
            raise ValueError("IPv6 network in an IPv4 database")
        width = bits if not (net.version == 4 and ip_version == 6) else 128
        key = json.dumps(record, sort_keys=True, default=lambda t: [t.type_id, t.value])
        payloads[key] = record
        node = 0
        for depth in range(length):
            bit = (value >> (width - 1 - depth)) & 1
            if depth == length - 1:
                nodes[node][bit] = ("data", key)
                break
            child = nodes[node][bit]
            if child is None or child[0] == "data":
                # Split a shorter network's leaf so the longer one can sit below it.
                nodes.append([child, child])
                nodes[node][bit] = ("node", len(nodes) - 1)
            node = nodes[node][bit][1]
    data = bytearray()
    offsets: dict[str, int] = {}
    for key, record in payloads.items():
        offsets[key] = len(data)
        data += encode(record)
    count = len(nodes)

    def record_value(child: Any) -> int:
        if child is None:
            return count
        if child[0] == "node":
            return child[1]
        return count + 16 + offsets[child[1]]

    tree = b"".join(_pack(record_value(left), record_value(right), record_size) for left, right in nodes)
    meta = {
        "binary_format_major_version": u16(2),
        "binary_format_minor_version": u16(0),
        "build_epoch": u64(int(time.time()) if build_epoch is None else build_epoch),
        "database_type": database_type,
        "description": {"en": "bothunt test database"},
        "ip_version": u16(ip_version),
        "languages": ["en"],
        "node_count": u32(count),
        "record_size": u16(record_size),
    }
    path.write_bytes(tree + b"\x00" * 16 + bytes(data) + METADATA_MARKER + encode(meta))
    return path
