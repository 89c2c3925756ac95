"""Benchmark: beacon detection against a bare DuckDB group-by over the same Parquet, in the same run.

Generates canonical `conn` rows with numpy (default 10M events over three days: a few thousand
workstations, each with several processes; bursty browsing to tens of thousands of Zipf-popular
destinations; fleet telemetry every 30 minutes; chat polling; a handful of planted beacons) into a
Parquet workspace in a temporary directory, then times:

  (a) DuckDB directly: `GROUP BY host, process, src_ip, server_name, dst_ip, dst_port` with count,
      min/max ts and sum of bytes, fetched as Arrow (the floor any per-pair analysis pays)
  (b) `bothunt.detections.beacon.detect` over the same files opened with `engine.open_tables`

and prints the ratio (b)/(a) and what was found. Each side runs `--repeat` times, alternating (a, b, b, a,
...) so drifting load on a shared machine hits both alike, and the best time of each is compared.
Prints only: no asserts, not a test.

    .venv/bin/python bench/bench_beacon.py                 # 10M events
    .venv/bin/python bench/bench_beacon.py --events 1000000 --keep /tmp/beaconbench
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bothunt.schema import conform

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAYS = 3.0
PROCS = ("chrome.exe", "msedge.exe", "Teams.exe", "OUTLOOK.EXE", "svchost.exe", "OneDrive.exe",
         "slack.exe", "python.exe", "code.exe", "firefox.exe")
PORTS = np.array([443, 443, 443, 443, 80, 8443, 53, 123, 5222, 993], dtype=np.int32)
# Planted beacons: (process, domain, period s, jitter fraction)
BEACONS = (("rundll32.exe", "cdn-update-check.net", 60.0, 0.2), ("svchost.exe", "api.weathersync.io", 300.0, 0.5),
           ("powershell.exe", "static.imgsvc.org", 4 * 3600.0, 0.1), ("msedge.exe", "telemetry.adnet.biz", 20.0, 0.3),
           ("updater.exe", "198.51.100.7", 900.0, 0.05))


def _dict(idx: np.ndarray, values: list[str]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32)), pa.array(values)).cast(pa.string())


def generate(events: int, seed: int = 7) -> pa.Table:
    """Canonical conn rows (outbound), bulk-built with numpy; strings come from small dictionaries."""
    rng = np.random.default_rng(seed)
    span = DAYS * 86400.0
    hosts = max(50, events // 5000)
    dests = max(500, events // 300)
    host_names = [f"WS-{i:05d}" for i in range(hosts)]
    host_ips = [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(hosts)]
    dom_names = [f"site{i}.example{(i % 97)}.com" for i in range(dests)]
    dom_ips = [f"203.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(dests)]

    # Periodic background: every host's telemetry every 30 min (fleet), a quarter poll chat (Poisson 60 s).
    n_tel = int(hosts * span / 1800)
    tel_h = np.repeat(np.arange(hosts), n_tel // hosts)
    tel_ts = (rng.random(hosts)[tel_h] * 1800 + np.tile(np.arange(n_tel // hosts), hosts) * 1800
              + rng.normal(0, 5, tel_h.size))
    chat_hosts = np.arange(0, hosts, 4)
    n_chat = int(chat_hosts.size * span / 60)
    chat_h = chat_hosts[rng.integers(0, chat_hosts.size, n_chat)]
    chat_ts = rng.random(n_chat) * span
    # Planted beacons on the first few hosts.
    b_h, b_ts, b_k = [], [], []
    for k, (_, _, period, jit) in enumerate(BEACONS):
        n = int(span / period)
        t = np.cumsum(period * (1 + rng.uniform(-jit, jit, n)))
        t = t[(t < span) & (rng.random(n) > 0.1)]
        b_h.append(np.full(t.size, k)), b_ts.append(t), b_k.append(np.full(t.size, k))
    bh, bts, bk = np.concatenate(b_h), np.concatenate(b_ts), np.concatenate(b_k)

    # Bursty browsing fills the rest: sessions of 1-20 connections within seconds, diurnal-ish times.
    n_rest = max(0, events - tel_ts.size - chat_ts.size - bts.size)
    n_sess = max(1, n_rest // 6)
    sess_h = rng.integers(0, hosts, n_sess)
    sess_t = rng.random(n_sess) * span
    sess_d = np.minimum(rng.zipf(1.3, n_sess), dests) - 1
    sess_p = rng.integers(0, 4, n_sess)  # browsers, Teams, Outlook
    sid = rng.integers(0, n_sess, n_rest)
    br_ts = sess_t[sid] + rng.exponential(3.0, n_rest)
    br_d = np.where(rng.random(n_rest) < 0.8, sess_d[sid], np.minimum(rng.zipf(1.2, n_rest), dests) - 1)

    host = np.concatenate([sess_h[sid], tel_h, chat_h, bh])
    ts = np.concatenate([br_ts, tel_ts, chat_ts, bts])
    proc_i = np.concatenate([sess_p[sid], np.full(tel_h.size, 4), np.full(n_chat, 6),
                             len(PROCS) + bk])
    dest = np.concatenate([br_d, np.full(tel_h.size, dests), np.full(n_chat, dests + 1), dests + 2 + bk])
    n = ts.size
    names = dom_names + ["settings-win.data.microsoft.com", "chat.slack-edge.com"] + [b[1] for b in BEACONS]
    ips = dom_ips + ["20.42.65.92", "52.1.2.3"] + [f"198.51.100.{k + 1}" for k in range(len(BEACONS))]
    sni = np.where(rng.random(n) < 0.85, dest, len(names))  # 15% without a name: keyed by address:port
    sni[dest == dests + 2 + 4] = len(names)  # the last beacon is to a bare address
    port = np.where(dest < dests, PORTS[rng.integers(0, PORTS.size, n)], 443).astype(np.int32)
    state_i = np.where(rng.random(n) < 0.93, 0, rng.integers(1, 3, n))
    bytes_out = np.exp(rng.normal(7, 1.2, n)).astype(np.int64)
    ts_us = ((T0 + np.clip(ts, 0, span)) * 1e6).astype(np.int64)
    table = pa.table({
        "ts": pa.array(ts_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "src_ip": _dict(host, host_ips),
        "dst_ip": _dict(dest, ips),
        "src_port": pa.array(rng.integers(1024, 65535, n).astype(np.int32)),
        "dst_port": pa.array(port),
        "proto": _dict(np.zeros(n, np.int32), ["tcp"]),
        "direction": _dict(np.zeros(n, np.int32), ["outbound"]),
        "bytes_out": pa.array(bytes_out),
        "bytes_in": pa.array((bytes_out * rng.uniform(0.5, 20, n)).astype(np.int64)),
        "state": _dict(state_i, ["established", "rejected", "attempted"]),
        "host": _dict(host, host_names),
        "process": _dict(proc_i, list(PROCS) + [b[0] for b in BEACONS]),
        "server_name": _dict(sni, [*names, None]),
        "source": _dict(np.zeros(n, np.int32), ["bench"]),
    })
    return conform(table, "conn")


def write_workspace(table: pa.Table, root: Path) -> None:
    """Canonical rows into a workspace, one Parquet part per day (the layout ingest writes)."""
    from bothunt.workspace import Workspace

    ws = Workspace.create(root)
    day = (table["ts"].cast(pa.int64()).to_numpy() // (86_400 * 1_000_000)).astype(np.int64)
    order = np.argsort(day, kind="stable")
    table, day = table.take(pa.array(order)), day[order]
    cuts = np.flatnonzero(np.diff(day)) + 1
    for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [day.size]]), strict=True):
        name = time.strftime("%Y-%m-%d", time.gmtime(int(day[lo]) * 86_400))
        pq.write_table(table.slice(int(lo), int(hi - lo)), ws.part_path("conn", name, "bench"), compression="zstd")


def bare_group_by(root: Path) -> tuple[float, int]:
    import duckdb

    from bothunt.workspace import Workspace

    parts = [str(p) for p in Workspace.open(root).parts("conn")]
    con = duckdb.connect()
    t = time.perf_counter()
    out = con.sql(f"SELECT host, process, src_ip, server_name, dst_ip, dst_port, count(*) AS n, min(ts), max(ts), "
                  f"sum(bytes_out) FROM read_parquet({parts!r}) GROUP BY ALL").to_arrow_table()
    return time.perf_counter() - t, out.num_rows


def hunt(root: Path) -> tuple[float, list]:
    from bothunt.config import Settings
    from bothunt.detections import beacon
    from bothunt.engine import open_tables
    from bothunt.workspace import Workspace

    t = time.perf_counter()
    tables = open_tables(Workspace.open(root), "duckdb")
    findings = beacon.detect(tables, Settings())
    return time.perf_counter() - t, findings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", type=Path, help="write the workspace here and keep it; reused when it holds "
                                              "--events rows, whatever its --seed")
    ap.add_argument("--repeat", type=int, default=3, help="timings of each side; the best of each is compared")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="beaconbench-") as tmp:
        root = args.keep or Path(tmp) / "ws"
        if args.keep and _rows(root) == args.events:
            print(f"reusing the {args.events:,} events in {root}")
        else:
            t = time.perf_counter()
            table = generate(args.events, args.seed)
            write_workspace(table, root)
            print(f"generated {table.num_rows:,} events in {time.perf_counter() - t:.1f} s -> {root}")
            del table
        hunt(root)  # warm-up: file cache and imports, so neither run pays them
        base_times, det_times = [], []
        for i in range(max(args.repeat, 1)):
            for side in ("base", "det") if i % 2 == 0 else ("det", "base"):
                if side == "base":
                    base_s, groups = bare_group_by(root)
                    base_times.append(base_s)
                else:
                    det_s, findings = hunt(root)
                    det_times.append(det_s)
        base_s, det_s = min(base_times), min(det_times)
        print(f"bare DuckDB group-by: {base_s:.2f} s ({groups:,} groups) best of {_times(base_times)}")
        print(f"beacon detection:     {det_s:.2f} s ({len(findings)} findings) best of {_times(det_times)}")
        print(f"ratio detection / group-by: {det_s / base_s:.2f} (target <= 3)")
        for f in sorted(findings, key=lambda f: (-f.score, f.id))[:12]:
            print(f"  {f.severity:8s} {f.score:.2f} {f.title}")


def _rows(root: Path) -> int:
    """Rows of the conn table in a kept workspace (0 when there is none), from the Parquet footers."""
    from bothunt.errors import BothuntError
    from bothunt.workspace import Workspace

    try:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in Workspace.open(root).parts("conn"))
    except (BothuntError, OSError):
        return 0


def _times(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
