"""Range tables and address keys, checked against plain-Python brute force."""

import ipaddress
import random

import numpy as np
import pyarrow as pa
import pytest

from bothunt.netclass.ranges import (
    FamilyTable,
    RangeSpec,
    cidr_specs,
    halves_from_s16,
    key_text,
    parse_addresses,
    s16_from_halves,
    v4_keys,
)

MASK64 = (1 << 64) - 1


def _keys(values, v6):
    if not v6:
        return np.array(values, np.uint64)
    return s16_from_halves(np.array([v >> 64 for v in values], np.uint64),
                           np.array([v & MASK64 for v in values], np.uint64))


def _brute(ranges, priority, q):
    """Most specific covering range: smallest span, then highest priority, then the last given."""
    cands = [(e - s, -priority[i], -i, i) for i, (s, e) in enumerate(ranges) if s <= q <= e]
    return min(cands)[3] if cands else -1


@pytest.mark.parametrize("v6", [False, True])
def test_overlapping_ranges_match_brute_force(v6):
    rng = random.Random(7)
    top = (1 << 128) if v6 else (1 << 32)
    for trial in range(40):
        # Bases at both ends of the space exercise the successor of the largest address.
        base = [0, top - 700, rng.randrange(top - 700)][trial % 3]
        ranges, priority = [], []
        for _ in range(rng.randint(1, 30)):
            s = base + rng.randrange(500)
            ranges.append((s, min(top - 1, s + rng.randrange(200))))
            priority.append(rng.randint(0, 1))
        starts, ends = [r[0] for r in ranges], [r[1] for r in ranges]
        spec = RangeSpec.from_ints(starts, ends, range(len(ranges)), priority)
        table = FamilyTable.build(spec, v6=v6)
        queries = list(range(max(0, base - 3), min(top, base + 702)))
        got = table.lookup(_keys(queries, v6)).tolist()
        assert got == [_brute(ranges, priority, q) for q in queries]


def test_boundaries_are_inside_and_neighbours_outside():
    starts, ends = [0x01000000, 0x01000100, 0x05000000], [0x010000FF, 0x010001FF, 0x05000000]
    table = FamilyTable.build(RangeSpec.from_ints(starts, ends, [10, 11, 12]), v6=False)
    probes = [0x00FFFFFF, 0x01000000, 0x010000FF, 0x01000100, 0x010001FF, 0x01000200, 0x04FFFFFF,
              0x05000000, 0x05000001]
    assert table.lookup(np.array(probes, np.uint64)).tolist() == [-1, 10, 10, 11, 11, -1, -1, 12, -1]


def test_whole_space_and_reversed_ranges():
    top = (1 << 128) - 1
    spec = RangeSpec.from_ints([0, 50, 9], [top, 60, 3], [0, 1, 2])  # the last one is start > end
    table = FamilyTable.build(spec, v6=True)
    assert table.lookup(_keys([0, 49, 50, 60, 61, top, 5], True)).tolist() == [0, 0, 1, 1, 0, 0, 0]


def test_s16_keys_order_like_integers():
    rng = random.Random(3)
    values = [rng.randrange(1 << 128) for _ in range(2000)] + [0, 1, (1 << 64), (1 << 128) - 1]
    keys = _keys(values, True)
    assert np.argsort(keys, kind="stable").tolist() == sorted(range(len(values)), key=lambda i: values[i])
    hi, lo = halves_from_s16(keys)
    assert [(int(h) << 64) | int(x) for h, x in zip(hi, lo, strict=True)] == values


def test_v4_parser_agrees_with_ipaddress():
    rng = random.Random(11)
    good = [str(ipaddress.IPv4Address(rng.randrange(1 << 32))) for _ in range(3000)]
    good += ["0.0.0.0", "255.255.255.255", "1.2.3.4", "100.200.250.255"]
    bad = ["1.2.3.04", "256.1.1.1", "1.2.3", "1.2.3.4.5", "a.b.c.d", " 1.2.3.4", "1.2.3.4 ", "", "1..2.3",
           "1.2.3.-4", "1.2.3.4/24", "01.2.3.4", "1.2.3.4\n"]
    keys, ok = v4_keys(pa.array(good + bad + [None]))
    assert ok.tolist() == [True] * len(good) + [False] * (len(bad) + 1)
    assert keys[: len(good)].tolist() == [int(ipaddress.IPv4Address(s)) for s in good]
    # A sliced array (non-zero offset) reads the right bytes.
    keys2, ok2 = v4_keys(pa.array(["x", "9.9.9.9", "1.1.1.1"]).slice(1))
    assert ok2.tolist() == [True, True] and keys2.tolist() == [0x09090909, 0x01010101]


def test_parse_addresses_families_and_mapped_v4():
    parsed = parse_addresses(pa.array(["1.2.3.4", "::ffff:10.0.0.1", "2a00:1450::1", "fe80::1%eth0", "[::1]",
                                       "2a00::zz", "junk", None, ""]))
    assert parsed.family.tolist() == [4, 4, 6, 6, 6, 0, 0, 0, 0]
    assert parsed.v4[:2].tolist() == [0x01020304, 0x0A000001]
    assert key_text(6, parsed.v6[2]) == "2a00:1450::1"
    assert key_text(6, parsed.v6[3]) == "fe80::1"
    assert key_text(4, int(parsed.v4[1])) == "10.0.0.1"


def test_cidr_specs_split_families_and_reject():
    split = cidr_specs(["10.0.0.0/8", "2a00::/16", "nonsense", "::ffff:1.2.3.0/120", "1.2.3.4"], range(5))
    assert split.rejected == [2]
    assert split.v4.payload.tolist() == [0, 3, 4] and split.v6.payload.tolist() == [1]
    assert split.v4.start_lo.tolist() == [0x0A000000, 0x01020300, 0x01020304]
    assert split.v4.end_lo.tolist() == [0x0AFFFFFF, 0x010203FF, 0x01020304]
