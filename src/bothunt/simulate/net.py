"""Addresses of the simulated world: IPv4 as uint32, fixed pools of real public /16s, and formatting.

Benign services, benign remote users and attacker infrastructure draw from disjoint /16 lists, so a
planted attack can always be told apart from the background by its remote addresses. No address is
in a documentation or otherwise reserved range (those classify as Reserved, not Public).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Cloud, CDN and SaaS networks: where benign Internet services live.
SERVICE_16 = (
    "13.107", "20.42", "20.190", "40.126", "52.96", "52.84", "54.230", "3.33", "18.160", "34.117",
    "35.186", "142.250", "172.217", "216.58", "104.16", "104.18", "172.67", "151.101", "199.232",
    "23.32", "23.200", "184.25", "2.16", "185.199", "31.13", "157.240", "162.159", "108.138",
)
# CDN edge networks (many addresses per name).
CDN_16 = ("13.224", "13.32", "99.84", "18.64", "23.45", "23.62", "96.16", "104.76", "152.199", "93.184")
# Residential and business access networks: legitimate remote clients, peers and mail servers.
CLIENT_16 = (
    "73.162", "24.30", "86.12", "90.84", "81.2", "109.190", "176.33", "188.120", "201.17", "177.140",
    "110.164", "119.42", "68.45", "98.207", "71.190", "82.64", "84.112", "94.23", "62.216", "80.108",
    "87.98", "115.66", "124.155", "203.87", "220.133", "189.6", "200.80", "47.149", "49.36", "58.186",
)
# Background Internet scanners (noise every exposed network sees).
SCANNER_16 = ("162.142", "167.94", "71.6", "198.235", "205.210", "64.62", "89.36", "80.82")
# Attacker infrastructure: VPS / bulletproof hosting and compromised residential botnet members.
ATTACK_16 = (
    "45.137", "45.155", "91.92", "185.220", "193.42", "5.188", "77.91", "103.224", "194.26", "146.70",
    "89.248", "141.98", "195.133", "37.120", "92.63", "212.192", "179.43", "187.190", "180.250", "36.90",
    "14.161", "117.211", "121.146", "122.176", "200.148", "190.2", "181.49", "41.215", "102.164", "154.72",
    "1.214", "27.72", "39.109", "42.112", "59.94", "60.51", "61.177", "113.160", "116.98", "123.25",
    "171.244", "175.139", "182.52", "186.31", "191.96", "196.188", "197.210", "222.252", "223.204", "78.38",
)


@lru_cache(maxsize=64)
def prefixes(pool: tuple[str, ...]) -> np.ndarray:
    out = []
    for p in pool:
        a, b = (int(x) for x in p.split("."))
        out.append((a << 8) | b)
    return np.asarray(out, dtype=np.uint32)


def ip(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def ip_text(value: int) -> str:
    v = int(value)
    return f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"


def draw(rng: np.random.Generator, pool: tuple[str, ...], n: int) -> np.ndarray:
    """n addresses (uint32) from a pool of /16s; the last octet avoids .0 and .255."""
    pre = prefixes(pool)
    p = pre[rng.integers(0, pre.size, n)].astype(np.uint32)
    third = rng.integers(0, 256, n).astype(np.uint32)
    fourth = rng.integers(1, 255, n).astype(np.uint32)
    return (p << np.uint32(16)) | (third << np.uint32(8)) | fourth


def draw_unique(rng: np.random.Generator, pool: tuple[str, ...], n: int, taken: set[int]) -> np.ndarray:
    """n distinct addresses not in `taken` (which is updated); for the small attacker pools."""
    out: list[int] = []
    while len(out) < n:
        for v in draw(rng, pool, 2 * (n - len(out)) + 8).tolist():
            if v not in taken:
                taken.add(v)
                out.append(v)
                if len(out) == n:
                    break
    return np.asarray(out, dtype=np.uint32)


def is_internal(addr: np.ndarray) -> np.ndarray:
    """The organisation only uses 10/8 and 192.168/16."""
    a = np.asarray(addr, dtype=np.uint32)
    return ((a >> np.uint32(24)) == 10) | ((a >> np.uint32(16)) == 0xC0A8)


def to_text(addr: np.ndarray) -> pa.Array:
    """Dotted-quad strings for a uint32 array, formatted per distinct address."""
    a = np.asarray(addr, dtype=np.uint32)
    if a.size == 0:
        return pa.array([], pa.string())
    uniq, inv = np.unique(a, return_inverse=True)
    table = _octet_table()
    octets = [table.take(pa.array(((uniq >> np.uint32(s)) & np.uint32(255)).astype(np.int64))) for s in (24, 16, 8, 0)]
    text = pc.binary_join_element_wise(*octets, ".")
    return text.take(pa.array(inv.astype(np.int32)))


@lru_cache(maxsize=1)
def _octet_table() -> pa.Array:
    return pa.array([str(i) for i in range(256)], pa.string())
