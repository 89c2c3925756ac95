"""Benchmark: inbound_flood and relay on 10M canonical conn events, against bare DuckDB scans.

Generates, with numpy, two days of an organisation's connections as canonical conn Parquet (default 10M
events: 3,000 internal hosts of which 200 servers take Internet traffic, 70 % outbound, 25 % inbound, 5 %
internal) with a planted HTTP flood, a low-and-slow SSH campaign and an ORB node, then times in this
process on DuckDB:

  (a) a bare DuckDB scan of the same files: count and time span of the inbound rows
  (b) a bare DuckDB group-by: per destination, port and 5-minute bin, events and distinct sources
      (the published rule's own aggregation, without the last-hour filter)
  (c) inbound_flood.detect and (d) relay.detect, each as a ratio to (a) and (b)
  (e) relay.detect again with the inbound events doubled and quadrupled (extra sessions from other
      sources, the outbound side unchanged): the time should grow about linearly with inbound events.

Prints only: no asserts, not a test.

    .venv/bin/python bench/bench_flood_relay.py                  # 10M events
    .venv/bin/python bench/bench_flood_relay.py --events 1000000 --keep /tmp/floodbench
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bothunt.config import Settings
from bothunt.detections import inbound_flood, relay
from bothunt.engine import Tables, connect
from bothunt.schema import CONN_SCHEMA, DNS_SCHEMA, conform

T0 = 1772409600.0  # 2026-03-02T00:00:00Z
SPAN = 2 * 86400.0
CHUNK = 1_000_000
HOSTS, SERVERS = 3000, 200
SERVER_PORTS = np.array([443, 443, 80, 22, 3389, 25], dtype=np.int32)
OUT_PORTS = np.array([443] * 12 + [80] * 2 + [53] * 3 + [123, 8080, 5432, 3389, 22, 25], dtype=np.int32)


def ips(values: np.ndarray) -> pa.Array:
    v = values.astype(np.uint32)
    parts = [pa.array(((v >> np.uint32(s)) & np.uint32(255)).astype(np.int64)).cast(pa.string())
             for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def internal(i: np.ndarray) -> np.ndarray:
    return (10 << 24) + (i // 250) * 256 + i % 250 + 1


def public(i: np.ndarray) -> np.ndarray:
    return (73 << 24) + i  # 73.0.0.0/8: one block of made-up public peers


def frame(ts, src, dst, dport, direction, rng, state=None, **extra) -> pa.Table:
    n = ts.size
    state = state if state is not None else np.where(rng.random(n) < 0.9, "established", "attempted")
    dur = rng.lognormal(0.0, 1.5, n)
    up, down = rng.lognormal(7, 1.2, n).astype(np.int64), rng.lognormal(9, 1.5, n).astype(np.int64)
    cols = {"ts": pa.array((ts * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC")), "src_ip": ips(src),
            "dst_ip": ips(dst), "src_port": pa.array(rng.integers(1024, 65535, n).astype(np.int32)),
            "dst_port": pa.array(dport.astype(np.int32)), "proto": pa.array(np.full(n, "tcp")),
            "direction": pa.array(np.full(n, direction)), "state": pa.array(state), "duration": pa.array(dur),
            "bytes_out": pa.array(up), "bytes_in": pa.array(down),
            "pkts_in": pa.array(np.maximum(down // 1200, 1)), "source": pa.array(np.full(n, "bench"))}
    for k, v in extra.items():
        cols[k] = v if isinstance(v, pa.Array) else pa.array(v)
    return conform(pa.table(cols), "conn")


def background(rng: np.random.Generator, n: int, kind: str) -> pa.Table:
    ts = T0 + np.sort(rng.uniform(0, SPAN, n))
    if kind == "outbound":
        # servers call out more than workstations do: a fifth of all outbound comes from the 200 servers
        host = np.where(rng.random(n) < 0.2, rng.integers(0, SERVERS, n), rng.integers(0, HOSTS, n))
        peer = np.minimum(rng.zipf(1.3, n), 300_000) - 1
        return frame(ts, internal(host), public(peer), OUT_PORTS[rng.integers(0, OUT_PORTS.size, n)], kind, rng)
    if kind == "inbound":
        server = rng.integers(0, SERVERS, n)
        port = SERVER_PORTS[server % SERVER_PORTS.size]
        # visitors from anywhere on web and mail; a few hundred staff with long sessions on SSH / RDP
        login = np.isin(port, (22, 3389))
        src = np.where(login, 900_000 + rng.integers(0, 300, n), 1_000_000 + rng.integers(0, 200_000, n))
        t = frame(ts, public(src), internal(server), port, kind, rng)
        dur = np.where(login, rng.lognormal(6.5, 1.0, n), t["duration"].to_numpy())
        return t.set_column(t.schema.get_field_index("duration"), "duration", pa.array(dur))
    a, b = rng.integers(0, HOSTS, n), rng.integers(0, HOSTS, n)
    return frame(ts, internal(a), internal(b), np.full(n, 445), kind, rng)


def planted(rng: np.random.Generator) -> list[pa.Table]:
    web = internal(np.array([0]))  # server 0 listens on 443
    flood_ts = T0 + 1.3 * 86400 + np.sort(rng.uniform(0, 900, 100_000))
    flood = frame(flood_ts, public(5_000_000 + rng.integers(0, 2000, flood_ts.size)), np.repeat(web, flood_ts.size),
                  np.full(flood_ts.size, 443), "inbound", rng)
    ssh = internal(np.array([3]))  # server 3 listens on 22
    slow_ts = T0 + 1.4 * 86400 + np.sort(rng.uniform(0, 6 * 3600, 900))  # on day two: a day of history
    slow = frame(slow_ts, public(6_000_000 + np.arange(900) % 450), np.repeat(ssh, 900), np.full(900, 22), "inbound",
                 rng, state=np.full(900, "attempted"))
    node = internal(np.array([2500]))
    orb_ts = T0 + np.sort(rng.uniform(0, SPAN, 1000))
    orb_in = frame(orb_ts, public(7_000_000 + rng.integers(0, 5, 1000)), np.repeat(node, 1000), np.full(1000, 8081),
                   "inbound", rng)
    orb_out = frame(orb_ts + rng.uniform(0.05, 1.5, 1000), np.repeat(node, 1000),
                    public(8_000_000 + rng.integers(0, 60, 1000)), np.full(1000, 443), "outbound", rng)
    return [flood, slow, orb_in, orb_out]


def write(table: pa.Table, path: Path) -> Path:
    pq.write_table(table.sort_by("ts"), path, compression="zstd")
    return path


def generate(out: Path, events: int, scales: list[int], seed: int) -> tuple[list[Path], dict[int, list[Path]]]:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    base: list[Path] = []
    shares = {"outbound": 0.70, "inbound": 0.25, "internal": 0.05}
    for kind in ("outbound", "internal"):
        n = int(events * shares[kind])
        for i, lo in enumerate(range(0, n, CHUNK)):
            base.append(write(background(rng, min(CHUNK, n - lo), kind), out / f"{kind}-{i}.parquet"))
    base += [write(t, out / f"planted-{i}.parquet") for i, t in enumerate(planted(rng))]
    inbound: dict[int, list[Path]] = {}
    n = int(events * shares["inbound"])
    copies: list[Path] = []
    for k in range(max(scales)):
        # each copy: the same volume of inbound sessions, from other sources at other times
        for i, lo in enumerate(range(0, n, CHUNK)):
            copies.append(write(background(rng, min(CHUNK, n - lo), "inbound"), out / f"inbound-{k}-{i}.parquet"))
        inbound[k + 1] = list(copies)
    return base, inbound


def tables_for(con, files: list[Path]) -> Tables:
    conn = con.read_parquet([str(f) for f in files]).select(*CONN_SCHEMA.names)
    return Tables(con=con, engine="duckdb", conn=conn, dns=ibis.memtable(DNS_SCHEMA.empty_table()))


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def bare(files: list[Path]) -> tuple[float, float]:
    con = duckdb.connect()
    src = "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "])"
    scan, _ = timed(lambda: con.sql(f"SELECT count(*), min(ts), max(ts) FROM {src} "
                                    "WHERE direction = 'inbound'").fetchall())
    group, _ = timed(lambda: con.sql(
        f"SELECT dst_ip, dst_port, epoch(ts)::BIGINT // 300 AS b, count(*) AS n, count(DISTINCT src_ip) AS d "
        f"FROM {src} WHERE direction = 'inbound' GROUP BY ALL HAVING n > 500 AND d > 50").fetchall())
    return scan, group


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--scales", default="1,2,4", help="inbound multipliers for the relay runs")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", type=Path, help="write the Parquet here and keep it")
    args = ap.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        t_gen, (base, inbound) = timed(lambda: generate(out, args.events, scales, args.seed))
        files = base + inbound[1]
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        print(f"generated {rows:,} events ({len(files)} Parquet files) in {t_gen:.1f} s")
        scan, group = bare(files)
        print(f"(a) bare DuckDB scan of inbound rows      {scan:8.2f} s")
        print(f"(b) bare DuckDB 5-minute group-by         {group:8.2f} s")
        con = connect("duckdb")
        settings = Settings()
        for name, module in (("inbound_flood", inbound_flood), ("relay", relay)):
            secs, found = timed(lambda m=module: m.detect(tables_for(con, files), settings))
            print(f"    {name:14} {secs:8.2f} s   {secs / scan:7.1f}x scan  {secs / group:6.1f}x group-by   "
                  f"{len(found)} findings")
        first = None
        for k in scales:
            fk = base + inbound[k]
            n_in = sum(pq.ParquetFile(f).metadata.num_rows for f in inbound[k])
            secs, found = timed(lambda fk=fk: relay.detect(tables_for(con, fk), settings))
            first = first or secs / n_in
            print(f"(e) relay, inbound x{k}: {n_in:>11,} inbound events {secs:8.2f} s   "
                  f"{secs / n_in * 1e6:6.2f} us per inbound event ({secs / n_in / first:4.2f}x the x1 rate), "
                  f"{len(found)} findings")


if __name__ == "__main__":
    main()
