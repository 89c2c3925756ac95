"""Benchmark: the DNS detections against a bare DuckDB scan of the same Parquet, in the same run.

Generates canonical `dns` rows with numpy (default 3M lookups over one day: about 1,500 devices
browsing Zipf-popular names, each with its own long tail of rare names, misconfigured devices failing on
search suffixes, and DGA bots trying hundreds of thousands of unique generated domains, mostly
NXDOMAIN) into a Parquet workspace in a temporary directory, then times:

  (a) DuckDB directly: `GROUP BY src_ip, query` with count and NXDOMAIN count, fetched as Arrow (the
      floor any per-name analysis pays);
  (b) `bothunt.detections.dga.detect`, and inside it the scoring of unique registered labels
      (`dga.score_regs`: label extraction, features and model): unique names scored per second;
  (c) `bothunt.detections.dns_c2.detect`.

Prints lookups/s, names/s, the ratios (b)/(a) and (c)/(a) and what was found. Prints only: no asserts.

    .venv/bin/python bench/bench_dns.py                   # 3M lookups
    .venv/bin/python bench/bench_dns.py --lookups 500000 --keep /tmp/dnsbench
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.config import Settings
from bothunt.detections import dga, dns_c2
from bothunt.engine import open_tables
from bothunt.schema import conform
from bothunt.workspace import PartWriter, Workspace

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LETTERS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
TLDS = np.array(["com", "net", "org", "info", "ru", "biz", "top"], dtype=object)


def random_labels(rng: np.random.Generator, n: int, length: int) -> pa.Array:
    """n random lower-case labels of one length, built as one byte buffer (no Python loop per label)."""
    raw = LETTERS[rng.integers(0, 26, (n, length))]
    return pa.array(raw.view(f"S{length}").ravel(), pa.binary()).cast(pa.string())


def join(*parts: pa.Array | str) -> pa.Array:
    cols = [pa.scalar(p) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*cols, "")


def generate(lookups: int, seed: int = 5) -> tuple[pa.Table, int]:
    rng = np.random.default_rng(seed)
    devices = max(100, lookups // 2000)
    dev_ips = np.array([f"10.{(i >> 8) & 255}.{i & 255}.{(i * 7) % 250 + 1}" for i in range(devices)], dtype=object)
    bots = max(5, devices // 50)
    n_dga = lookups // 5  # a fifth of all lookups are bots trying generated names: that many unique names
    n_tail = lookups // 5
    n_noise = lookups // 20
    n_pop = lookups - n_dga - n_tail - n_noise
    popular = join(random_labels(rng, 20_000, 9), ".", pa.array(TLDS[rng.integers(0, 3, 20_000)].tolist()))
    pop_idx = np.minimum(rng.zipf(1.2, n_pop), 20_000) - 1
    tail = join("www.", random_labels(rng, n_tail, 11), ".com")
    dga_names = join(random_labels(rng, n_dga, 14), ".", pa.array(TLDS[rng.integers(0, len(TLDS), n_dga)].tolist()))
    noise = pa.array(np.array(["intranet.corp.example.com.corp.local", "fs.corp.example.com.corp.example.com"],
                              dtype=object)[rng.integers(0, 2, n_noise)].tolist())
    # bots: bursts of 100 names within a minute, spread over the day
    bot_of = rng.integers(0, bots, n_dga)
    burst_t = (np.arange(n_dga) // 100) * 600.0 % 86400 + rng.uniform(0, 60, n_dga)
    queries = pa.concat_arrays([popular.take(pa.array(pop_idx)), tail, dga_names, noise])
    src = np.concatenate([dev_ips[rng.integers(0, devices, n_pop)], dev_ips[rng.integers(0, devices, n_tail)],
                          dev_ips[bot_of], dev_ips[rng.integers(0, 10, n_noise)]])
    ts = np.concatenate([rng.uniform(0, 86400, n_pop), rng.uniform(0, 86400, n_tail), burst_t,
                         rng.uniform(0, 86400, n_noise)])
    n = len(ts)
    ok = np.concatenate([np.ones(n_pop + n_tail, bool), rng.random(n_dga) < 0.002, np.zeros(n_noise, bool)])
    addr = pa.array([f"151.101.{i % 250}.{i % 200 + 1}" for i in range(1000)], pa.string())
    answers = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(ok)]).astype(np.int32)),
                                       addr.take(pa.array(rng.integers(0, 1000, int(ok.sum())))))
    ttls = pa.ListArray.from_arrays(answers.offsets, pa.array(np.full(int(ok.sum()), 300.0)))
    table = pa.table({
        "ts": pa.array(((T0 + ts) * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC")),
        "src_ip": pa.array(src.tolist(), pa.string()), "dst_ip": pa.array(["10.0.0.53"] * n),
        "query": queries, "qtype": pa.array(["A"] * n), "rcode": pa.array(np.where(ok, "NOERROR", "NXDOMAIN").tolist()),
        "answers": answers, "ttls": ttls, "source": pa.array(["zeek"] * n),
    })
    return conform(table, "dns"), n_dga


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lookups", type=int, default=3_000_000)
    ap.add_argument("--keep", type=Path, help="write the workspace here and keep it")
    args = ap.parse_args()
    t = time.perf_counter()
    table, n_dga = generate(args.lookups)
    print(f"generated {table.num_rows:,} lookups ({n_dga:,} unique generated names) "
          f"in {time.perf_counter() - t:.1f} s")
    tmp = tempfile.TemporaryDirectory()
    root = args.keep or Path(tmp.name) / "ws"
    ws = Workspace.create(root)
    w = PartWriter(ws, "bench")
    for batch in table.to_batches(max_chunksize=500_000):
        w.write("dns", pa.Table.from_batches([batch]))
    w.close()
    files = [str(p) for p in ws.parts("dns")]

    t = time.perf_counter()
    rel = duckdb.connect().sql(
        "SELECT src_ip, query, count(*) AS n, sum(CASE WHEN rcode = 'NXDOMAIN' THEN 1 ELSE 0 END) AS nx "
        f"FROM read_parquet({files!r}) GROUP BY src_ip, query")
    bare = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    t_bare = time.perf_counter() - t
    print(f"(a) bare DuckDB group-by: {t_bare:.2f} s, {table.num_rows / t_bare:,.0f} lookups/s, "
          f"{bare.num_rows:,} pairs")

    scored = {"names": 0, "seconds": 0.0}
    inner = dga.score_regs

    def timed(regs):  # type: ignore[no-untyped-def]
        s = time.perf_counter()
        out = inner(regs)
        scored["seconds"] += time.perf_counter() - s
        scored["names"] += len(pc.unique(regs))
        return out

    dga.score_regs = timed
    for module, label in ((dga, "(b) dga"), (dns_c2, "(c) dns_c2")):
        tables = open_tables(ws)
        t = time.perf_counter()
        found = module.detect(tables, Settings())
        took = time.perf_counter() - t
        print(f"{label}.detect: {took:.2f} s, {table.num_rows / took:,.0f} lookups/s, "
              f"ratio to (a) {took / t_bare:.1f}x, {len(found)} finding(s): "
              + ", ".join(sorted({f.severity for f in found})))
        if module is dga and scored["seconds"]:
            print(f"    scoring {scored['names']:,} unique registered labels: {scored['seconds']:.2f} s, "
                  f"{scored['names'] / scored['seconds']:,.0f} names/s (labels, features and model)")
    dga.score_regs = inner


if __name__ == "__main__":
    main()
