"""Remote-address classification speed: NetIntel.classify against a bare numpy searchsorted.

A synthetic iptoasn table of 500,000 IPv4 ranges (plus 50,000 IPv6 ranges) is written to a temporary
folder and loaded the way a user's file would be; then 1,000,000 addresses are classified:

- all distinct (random IPv4): the worst case, every address parsed and looked up;
- drawn from 20,000 distinct addresses: what telemetry looks like;
- 200,000 random IPv6 addresses.

The baseline is ``np.searchsorted`` of the same integers (already parsed, in the same order) over
the same range starts, in the same run. Prints only; no asserts. Target: >= 1M addresses/s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from bothunt.netclass.intel import IntelSettings, NetIntel

RANGES_V4 = 500_000
RANGES_V6 = 50_000
QUERIES = 1_000_000


def best_of(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def v4_text(keys: np.ndarray) -> list[str]:
    k = keys.astype(np.int64)
    parts = [(k >> 24) & 255, (k >> 16) & 255, (k >> 8) & 255, k & 255]
    cols = [p.astype(str) for p in parts]
    return [".".join(t) for t in zip(*cols, strict=True)]


def write_table(folder: Path, rng: np.random.Generator) -> tuple[Path, Path, np.ndarray]:
    """Non-overlapping v4 ranges with gaps, as iptoasn TSV; returns the files and the range starts."""
    bounds = np.sort(rng.choice(1 << 32, size=2 * RANGES_V4, replace=False).astype(np.uint64))
    starts, ends = bounds[0::2], bounds[1::2]
    asns = rng.integers(1, 400_000, RANGES_V4)
    names = np.array(["Example Hosting", "Valley Broadband", "Acme Mobile", "University"])[asns % 4]
    v4 = folder / "ip2asn-v4.tsv"
    with v4.open("w") as fh:
        for s, e, a, n in zip(v4_text(starts), v4_text(ends), asns.tolist(), names.tolist(), strict=True):
            fh.write(f"{s}\t{e}\t{a}\tUS\t{n}\n")
    v6 = folder / "ip2asn-v6.tsv"
    with v6.open("w") as fh:
        for i in range(RANGES_V6):
            end = f"2a00:{i:x}:ffff:ffff:ffff:ffff:ffff:ffff"
            fh.write(f"2a00:{i:x}::\t{end}\t{64500 + i % 100}\tDE\tV6 Net\n")
    return v4, v6, starts


def main() -> None:
    rng = np.random.default_rng(20240501)
    with tempfile.TemporaryDirectory() as tmp:
        v4, v6, starts = write_table(Path(tmp), rng)
        t0 = time.perf_counter()
        intel = NetIntel.load(IntelSettings(asn_files=(v4, v6)))
        load_s = time.perf_counter() - t0
    print(f"netclass bench: {RANGES_V4:,} IPv4 + {RANGES_V6:,} IPv6 ranges loaded from iptoasn TSV "
          f"in {load_s:.2f} s ({len(intel.asn.table.v4.starts):,} IPv4 segments)")

    keys = rng.integers(0, 1 << 32, QUERIES, dtype=np.uint64)
    addrs = pa.array(v4_text(keys))
    baseline = best_of(lambda: np.searchsorted(starts, keys, side="right"))
    print(f"  bare np.searchsorted, {QUERIES:,} uint64 keys:       {QUERIES / baseline / 1e6:6.2f} M/s")

    cases = [("1M IPv4, all distinct (strings)", addrs)]
    pool = addrs.take(pa.array(rng.integers(0, QUERIES, 20_000)))
    cases.append(("1M IPv4 rows, 20k distinct", pool.take(pa.array(rng.integers(0, 20_000, QUERIES)))))
    for label, arr in cases:
        secs = best_of(lambda arr=arr: intel.classify(arr))
        rate = len(arr) / secs
        print(f"  classify {label:34s} {rate / 1e6:6.2f} M/s  ({secs:.3f} s, "
              f"{secs / baseline:.1f}x the bare searchsorted time)")
    hits = intel.classify(addrs)["asn"].null_count
    print(f"  (sanity: {QUERIES - hits:,} of {QUERIES:,} random addresses fell inside a range)")

    v6_addrs = pa.array([f"2a00:{int(i):x}::{int(j):x}" for i, j in
                         zip(rng.integers(0, RANGES_V6 * 2, 200_000), rng.integers(0, 1 << 16, 200_000),
                             strict=True)])
    secs = best_of(lambda: intel.classify(v6_addrs))
    rate = len(v6_addrs) / secs / 1e6
    print(f"  classify 200k IPv6, all distinct             {rate:6.2f} M/s  ({secs:.3f} s)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
