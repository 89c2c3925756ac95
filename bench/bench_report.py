"""HTML report at scale: build N findings (default 10,000; every detection and picture represented),
write the report, state its size, and measure in headless Chromium how long the page takes to load and
to filter, sort, expand a finding and open the host view (the page's own performance.now() marks,
written into #perf by its `#bench` mode and read back with --dump-dom). Prints; no asserts.

    .venv/bin/python bench/bench_report.py [--findings 10000] [--keep report.html]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bothunt.sinks.html import render_html
from bothunt.sinks.html_sample import many

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ]


def browser(url: str) -> tuple[str, float]:
    with tempfile.TemporaryDirectory(prefix="bothunt-bench-") as profile:
        t0 = time.perf_counter()
        r = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                           capture_output=True, text=True, timeout=600)
        return r.stdout, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--findings", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, help="also copy the report here")
    args = ap.parse_args()

    t0 = time.perf_counter()
    findings = many(args.findings)
    t1 = time.perf_counter()
    text = render_html(findings, {"title": f"bothunt bench ({args.findings} findings)"})
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bothunt-report-") as tmp:
        path = Path(tmp) / "report.html"
        path.write_text(text, encoding="utf-8")
        size = path.stat().st_size
        if args.keep:
            shutil.copy(path, args.keep)
        print(f"findings            {len(findings)}")
        print(f"build findings      {t1 - t0:.2f} s")
        print(f"render report       {t2 - t1:.2f} s")
        print(f"report size         {size / 1e6:.1f} MB ({size / max(len(findings), 1) / 1e3:.1f} kB per finding)")
        if not CHROMIUM.exists():
            print("chromium            not installed (/usr/bin/chromium): load and filter times not measured")
            return 0
        dom, wall = browser(path.as_uri() + "#bench")
        load = re.search(r'data-load-ms="([0-9.]+)"', dom)
        perf = re.search(r'<pre id="perf"[^>]*>(\{.*?\})</pre>', dom)
        print(f"chromium wall       {wall:.2f} s (process start to DOM dump, incl. browser start-up)")
        print(f"page ready          {load.group(1) if load else '?'} ms after navigation start (parse + first rows)")
        if perf:
            for k, v in json.loads(perf.group(1)).items():
                print(f"  {k:18} {v}")
        else:
            print("  (no #perf output: the page did not finish its bench)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
