"""Benchmark: the simulator's throughput (conn events per second) and peak memory at a target volume.

Runs `bothunt.simulate.run` in a child process (so the peak RSS measured is the simulator's alone), with
the scale chosen to reach about `--events` conn events, and prints events, seconds, events/s, bytes
written and peak RSS. The design target is 100M events under 2 GB of peak RSS. Prints only: no asserts,
not a test.

    .venv/bin/python bench/bench_simulate.py                          # 100M events, Zeek TSV
    .venv/bin/python bench/bench_simulate.py --events 2000000 --formats zeek,defender,cef
    .venv/bin/python bench/bench_simulate.py --events 1000000 --keep /tmp/simbench
    # the slice density of a 100M-event day (1000 hosts), for one busy hour: same peak memory, 1/24 the time
    .venv/bin/python bench/bench_simulate.py --scale 83 --days 0.0417 --start 2024-03-04T10:00:00+00:00
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path


def child(args: argparse.Namespace) -> None:
    from bothunt.simulate import run, scale_for

    scale = args.scale or scale_for(args.events, args.hosts, args.days)
    start = datetime.fromisoformat(args.start) if args.start else None
    started = time.perf_counter()
    report = run(Path(args.out), seed=args.seed, hosts=args.hosts, days=args.days, scale=scale,
                 formats=tuple(args.formats.split(",")), start=start)
    elapsed = time.perf_counter() - started
    size = sum(p.stat().st_size for p in report.files if p.exists())
    print(json.dumps({"scale": scale, "seconds": elapsed, "bytes": size,
                      "events": {f: report.total(f) for f in report.formats},
                      "lookups": {f: report.total_dns(f) for f in report.formats}}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000_000, help="target conn events (default 100M)")
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--formats", default="zeek", help="comma-separated simulator formats")
    ap.add_argument("--scale", type=float, help="use this scale instead of deriving it from --events")
    ap.add_argument("--start", help="ISO start time, e.g. 2024-03-04T09:00:00+00:00 for a busy slice")
    ap.add_argument("--keep", type=Path, help="write here and keep the output (default: a temp dir, removed)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    out = args.keep or Path(tempfile.mkdtemp(prefix="bothunt-simbench-"))
    cmd = [sys.executable, __file__, "--child", "--out", str(out), "--events", str(args.events),
           "--hosts", str(args.hosts), "--days", str(args.days), "--seed", str(args.seed), "--formats", args.formats]
    cmd += ["--scale", str(args.scale)] if args.scale else []
    cmd += ["--start", args.start] if args.start else []
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb = usage.ru_maxrss / 1024  # Linux reports KiB
        cpu = usage.ru_utime + usage.ru_stime
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            raise SystemExit(proc.returncode)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    conn = result["events"][args.formats.split(",")[0]]
    secs = result["seconds"]
    print(f"target         {args.events:,} conn events ({args.hosts} hosts, {args.days} days, "
          f"scale {result['scale']:.2f}, formats {args.formats})")
    for fmt, n in result["events"].items():
        print(f"  {fmt:<12} {n:>14,} conn  {result['lookups'][fmt]:>12,} dns")
    print(f"time           {secs:,.1f} s")
    print(f"throughput     {conn / secs:,.0f} conn events/s (first format), "
          f"{sum(result['events'].values()) / secs:,.0f} events/s written over all formats")
    print(f"cpu time       {cpu:,.1f} s: {conn / cpu:,.0f} conn events per CPU second (wall time suffers on a "
          f"shared machine)")
    print(f"written        {result['bytes'] / 2**30:,.2f} GiB")
    print(f"peak RSS       {peak_mb:,.0f} MiB (target < 2048 MiB)")


if __name__ == "__main__":
    main()
