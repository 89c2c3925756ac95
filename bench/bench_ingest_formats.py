"""Benchmark: ingest of every simulated format against a bare DuckDB read of the same file -> Parquet.

The Zeek TSV bench (`bench_ingest_zeek.py`) holds the 1M lines/s bar; this one shows the other sources
keep up: it simulates a day at about `--events` conn events in Zeek JSON, Defender, CEF and Suricata EVE
(`bothunt.simulate`), then for each file the simulator wrote times, each in a fresh process,

  (a) DuckDB reading the file as it would without bothunt (CSV: `read_csv` with auto-detection; JSON
      lines: `read_json` newline-delimited; syslog/CEF text: one VARCHAR column per line) -> zstd Parquet
  (b) bothunt's ingest of the same file into a fresh workspace

and prints lines/s, the ratio (b)/(a) and peak RSS. A baseline that only splits lines does less work
than parsing CEF extensions or Defender's columns, so ratios above 1 are expected there; the point is
the order of magnitude. Prints only: no asserts, not a test.

    .venv/bin/python bench/bench_ingest_formats.py                      # ~1M conn events
    .venv/bin/python bench/bench_ingest_formats.py --events 300000 --keep /tmp/fmtbench
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FORMATS = "zeek-json,defender,cef,suricata"

DUCK_SCRIPT = """
import duckdb, sys
src, out, kind = sys.argv[1], sys.argv[2], sys.argv[3]
read = {
    "csv": f"read_csv('{src}', auto_detect=true, sample_size=-1)",
    "json": f"read_json('{src}', format='newline_delimited', maximum_object_size=16777216)",
    "text": f"read_csv('{src}', columns={{'line': 'VARCHAR'}}, delim=chr(1), quote='', escape='', header=false)",
}[kind]
duckdb.connect().execute(f"COPY (SELECT * FROM {read}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
"""

BOTHUNT_SCRIPT = """
import sys
from pathlib import Path
from bothunt.ingest import ingest_paths
rep = ingest_paths([Path(sys.argv[1])], Path(sys.argv[2]))
f = rep.files[0]
print(f.status, f.source, f.rows, "rejected", f.rejected, "skipped", f.skipped, file=sys.stderr)
"""


def _run(script: str, *args: str) -> tuple[float, float, str]:
    """Seconds, peak RSS (MiB) and stderr of a fresh interpreter running `script`."""
    code = ("import resource, subprocess, sys, time\n"
            "t = time.perf_counter()\n"
            f"p = subprocess.run([sys.executable, '-c', {script!r}, *sys.argv[1:]], check=True, "
            "stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
            "dt = time.perf_counter() - t\n"
            "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
            "print(dt, rss)\n"
            "print(p.stderr.strip(), file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    dt, rss = out.stdout.split()
    return float(dt), float(rss), out.stderr.strip()


def _kind(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith((b"{", b"[")):
        return "json"
    first = head.split(b"\n", 1)[0]
    return "csv" if first.count(b",") >= 5 and b"CEF:" not in first else "text"


def _lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 24), b""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="target conn events per format")
    ap.add_argument("--formats", default=FORMATS)
    ap.add_argument("--keep", type=Path, help="use (and keep) this directory instead of a temporary one")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-formats-"))
    try:
        sim = root / "sim"
        if not sim.exists():
            from bothunt.simulate import run, scale_for

            print(f"simulating ~{args.events:,} conn events as {args.formats} ...", flush=True)
            run(sim, seed=7, hosts=200, days=1.0, scale=scale_for(args.events, 200, 1.0),
                formats=tuple(args.formats.split(",")))
        files = sorted(p for p in sim.rglob("*") if p.is_file() and p.parent.name in args.formats.split(","))
        print(f"{'file':44s} {'lines':>10s} {'duckdb':>8s} {'bothunt':>8s} {'lines/s':>9s} {'ratio':>6s} {'peak':>9s}")
        for path in files:
            if path.stat().st_size < 1 << 20:  # small side files (e.g. the simulator's dns-only logs)
                continue
            n = _lines(path)
            da, _, _ = _run(DUCK_SCRIPT, str(path), str(root / "duck.parquet"), _kind(path))
            ws = root / "ws"
            shutil.rmtree(ws, ignore_errors=True)
            db, rb, note = _run(BOTHUNT_SCRIPT, str(path), str(ws))
            name = str(path.relative_to(sim))[-44:]
            print(f"{name:44s} {n:10,d} {da:7.2f}s {db:7.2f}s {n / db / 1e6:7.2f}M {db / da:6.2f} {rb:6.0f} MiB")
            print(f"    {note}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
