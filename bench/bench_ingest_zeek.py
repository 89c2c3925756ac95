"""Benchmark: Zeek conn.log ingest against a bare DuckDB `read_csv` -> Parquet of the same file.

Generates a synthetic Zeek conn TSV (default 5M lines: a few thousand internal hosts, tens of
thousands of destinations, realistic mixes of ports, protocols, states and sizes) in a temporary
directory, then times, each in its own subprocess so peak RSS is measured per run:

  (a) DuckDB `read_csv` of the file (typed columns, `#` lines as comments) -> zstd Parquet
  (b) bothunt's ingest of the same file (`bothunt.ingest.ingest_paths`) into a fresh workspace
  (c) for reference, ZeekSource.read alone (the share of (b) that is parsing and mapping)

and prints lines/s, the ratio (b)/(a) and peak RSS. Prints only: no asserts, not a test.

    .venv/bin/python bench/bench_ingest_zeek.py            # 5M lines
    .venv/bin/python bench/bench_ingest_zeek.py --lines 500000 --keep /tmp/zeekbench
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration",
          "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes", "history",
          "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents"]
TYPES = ["time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count", "count",
         "string", "bool", "bool", "count", "string", "count", "count", "count", "count", "set[string]"]
DUCK_TYPES = {"time": "DOUBLE", "interval": "DOUBLE", "count": "BIGINT", "port": "BIGINT"}

# (proto, service, resp port, weight)
SERVICES = [("tcp", "ssl", 443, 40), ("tcp", "http", 80, 12), ("udp", "dns", 53, 25), ("tcp", "-", 8080, 2),
            ("tcp", "ssh", 22, 2), ("udp", "-", 123, 3), ("tcp", "-", 445, 2), ("udp", "-", 1900, 3),
            ("tcp", "smtp", 25, 1), ("tcp", "-", 3389, 1), ("icmp", "-", 0, 2), ("tcp", "http,ssl", 3128, 7)]
# (conn_state, history, weight)
STATES = [("SF", "ShADadFf", 55), ("S0", "S", 14), ("REJ", "Sr", 6), ("RSTO", "ShADadR", 6),
          ("RSTR", "ShADadr", 5), ("S1", "ShAD", 3), ("OTH", "D", 5), ("SH", "SF", 2), ("S3", "ShADadfF", 2),
          ("RSTOS0", "R", 1), ("SHR", "Hf", 1)]
B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype="S1")


def _pick(rng: np.random.Generator, n: int, weights: list[int]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=n, p=w / w.sum())


def _strs(values: np.ndarray) -> pa.Array:
    return pa.array(values).cast(pa.string())


def _ips(octets: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(*[_strs(octets[:, i]) for i in range(4)], ".")


def _fixed6(seconds: np.ndarray) -> pa.Array:
    """Zeek's `%.6f` rendering, built in Arrow (numpy's char.mod is a Python loop)."""
    us = np.round(seconds * 1e6).astype(np.int64)
    frac = pc.utf8_lpad(_strs(us % 1_000_000), 6, "0")
    return pc.binary_join_element_wise(_strs(us // 1_000_000), frac, ".")


def generate(path: Path, lines: int, seed: int = 7, block: int = 1_000_000) -> None:
    """Write a Zeek conn TSV with `lines` data lines (built and written in vectorised blocks)."""
    rng = np.random.default_rng(seed)
    hosts = np.column_stack([np.full(3000, 10), rng.integers(0, 8, 3000), rng.integers(0, 256, 3000),
                             rng.integers(1, 255, 3000)])
    dests = np.column_stack([rng.integers(11, 223, 40000), rng.integers(0, 256, 40000),
                             rng.integers(0, 256, 40000), rng.integers(1, 255, 40000)])
    header = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-",
              "#path\tconn", "#open\t2024-05-01-00-00-00", "#fields\t" + "\t".join(FIELDS),
              "#types\t" + "\t".join(TYPES)]
    start = 1714521600.0
    opts = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    with open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode())
        done = 0
        while done < lines:
            n = min(block, lines - done)
            ts = start + np.sort(rng.uniform(0, 86400, n)) + done * 1e-3
            svc = _pick(rng, n, [s[3] for s in SERVICES])
            st = _pick(rng, n, [s[2] for s in STATES])
            # Heavy-tailed host and destination popularity, as in real networks.
            src = hosts[np.minimum(rng.zipf(1.3, n) - 1, len(hosts) - 1)]
            dst = dests[np.minimum(rng.zipf(1.2, n) - 1, len(dests) - 1)]
            uid = np.concatenate([np.full((n, 1), b"C", dtype="S1"), B62[rng.integers(0, 62, (n, 17))]], axis=1)
            proto = np.array([s[0] for s in SERVICES])[svc]
            orig_bytes = rng.lognormal(6, 2, n).astype(np.int64)
            resp_bytes = rng.lognormal(8, 2.5, n).astype(np.int64)
            orig_pkts = np.maximum(1, orig_bytes // 700 + rng.integers(1, 6, n))
            resp_pkts = resp_bytes // 1200 + rng.integers(0, 6, n)
            dur = np.round(rng.exponential(4.0, n), 6)
            attempted = np.isin(np.array([s[0] for s in STATES])[st], ["S0", "REJ", "RSTOS0", "SH"])
            rb = np.where(attempted, 0, resp_bytes)
            cols = {
                "ts": _fixed6(ts),
                "uid": pa.array(uid.view("S18").ravel().astype(str)),
                "id.orig_h": _ips(src),
                "id.orig_p": _strs(rng.integers(1024, 65536, n)),
                "id.resp_h": _ips(dst),
                "id.resp_p": _strs(np.array([s[2] for s in SERVICES])[svc]),
                "proto": pa.array(proto),
                "service": pa.array(np.array([s[1] for s in SERVICES])[svc]),
                "duration": pc.if_else(pa.array(attempted), "-", _fixed6(dur)),
                "orig_bytes": _strs(orig_bytes),
                "resp_bytes": _strs(rb),
                "conn_state": pa.array(np.array([s[0] for s in STATES])[st]),
                "local_orig": pa.array(np.full(n, "T")),
                "local_resp": pa.array(np.full(n, "F")),
                "missed_bytes": pa.array(np.full(n, "0")),
                "history": pa.array(np.array([s[1] for s in STATES])[st]),
                "orig_pkts": _strs(orig_pkts),
                "orig_ip_bytes": _strs(orig_bytes + 40 * orig_pkts),
                "resp_pkts": _strs(np.where(attempted, 0, resp_pkts)),
                "resp_ip_bytes": _strs(np.where(attempted, 0, rb + 40 * resp_pkts)),
                "tunnel_parents": pa.array(np.full(n, "-")),
            }
            buf = pa.BufferOutputStream()
            pacsv.write_csv(pa.table(cols), buf, opts)
            fh.write(buf.getvalue().to_pybytes())
            done += n
        fh.write(b"#close\t2024-05-02-00-00-00\n")


# Explicit columns and no auto-detection: the sniffer cannot make sense of `#separator \x09`, and with
# `skip` DuckDB would drop data rows as well as the header.
DUCK_SCRIPT = """
import ast, duckdb, sys
src, out, cols = sys.argv[1], sys.argv[2], ast.literal_eval(sys.argv[3])
duckdb.connect().execute(
    f"COPY (SELECT * FROM read_csv('{src}', delim='\\t', header=false, comment='#', auto_detect=false, "
    f"quote='', escape='', nullstr='-', columns={cols})) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
"""

BOTHUNT_SCRIPT = """
import sys
from pathlib import Path
from bothunt.ingest import ingest_paths
rep = ingest_paths([Path(sys.argv[1])], Path(sys.argv[2]))
f = rep.files[0]
print(f.status, f.rows, f.rejected, f.skipped, f.error or "", file=sys.stderr)
"""

SOURCE_SCRIPT = """
import sys
from pathlib import Path
from bothunt.sources.base import ReadContext
from bothunt.sources.zeek import ZeekSource
path = Path(sys.argv[1])
rows = sum(b.data.num_rows for b in ZeekSource().read(path, ReadContext(file=str(path))))
print(rows, file=sys.stderr)
"""


def _run(script: str, *args: str) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of a fresh interpreter running `script`."""
    code = ("import resource, subprocess, sys, time\n"
            "t = time.perf_counter()\n"
            f"subprocess.run([sys.executable, '-c', {script!r}, *sys.argv[1:]], check=True, "
            "stdout=subprocess.DEVNULL)\n"
            "dt = time.perf_counter() - t\n"
            "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
            "print(dt, rss)\n")
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    if out.stderr.strip():
        print("   ", out.stderr.strip())
    dt, rss = out.stdout.split()
    return float(dt), float(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--keep", type=Path, help="use (and keep) this directory instead of a temporary one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-zeek-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        log = root / "conn.log"
        if not log.exists() or log.read_bytes().count(b"\n") != args.lines + 9:
            t = time.perf_counter()
            generate(log, args.lines)
            print(f"generated {args.lines:,} lines ({log.stat().st_size / 2**20:.0f} MiB) "
                  f"in {time.perf_counter() - t:.1f}s")
        cols = {f: DUCK_TYPES.get(t, "VARCHAR") for f, t in zip(FIELDS, TYPES, strict=True)}
        duck_out = root / "duck.parquet"
        da, ra = _run(DUCK_SCRIPT, str(log), str(duck_out), repr(cols))
        ws = root / "ws"
        if ws.exists():
            import shutil
            shutil.rmtree(ws)
        db, rb = _run(BOTHUNT_SCRIPT, str(log), str(ws))
        dc, rc = _run(SOURCE_SCRIPT, str(log))
        n = args.lines
        print(f"(a) duckdb read_csv -> parquet : {da:6.2f}s  {n / da / 1e6:5.2f}M lines/s  peak RSS {ra:6.0f} MiB")
        print(f"(b) bothunt ingest             : {db:6.2f}s  {n / db / 1e6:5.2f}M lines/s  peak RSS {rb:6.0f} MiB")
        print(f"(c) ZeekSource.read alone      : {dc:6.2f}s  {n / dc / 1e6:5.2f}M lines/s  peak RSS {rc:6.0f} MiB"
              "  (parse + map, no Parquet, no netclass)")
        print(f"ratio (b)/(a): {db / da:.2f}")


if __name__ == "__main__":
    main()
