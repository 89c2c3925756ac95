"""How fast the shipped DGA model scores 100k unique labels, features included.

Prints names per second and the ratio to a baseline measured in the same run: one bare numpy pass
over the same encoded names (a per-name sum of the character codes), i.e. the floor any vectorised
scorer pays after encoding. Timings are printed, never asserted: the machine is shared.

    .venv/bin/python bench/bench_dga_score.py [n_names]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from bothunt.dga_features import encode
from bothunt.dga_model import load_model, registered_label

SYLLABLES = ["ka", "lo", "mi", "net", "shop", "web", "tr", "qu", "zx", "bo", "an", "es", "on", "ly"]


def unique_names(n: int, seed: int = 7) -> list[str]:
    """A seeded mix of random strings, alphanumerics and syllable names, like a day of NXDOMAINs."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)
    out: set[str] = set()
    while len(out) < n:
        kind = len(out) % 3
        if kind == 0:
            out.add(bytes(rng.choice(letters[:26], int(rng.integers(5, 20)))).decode())
        elif kind == 1:
            out.add(bytes(rng.choice(letters, int(rng.integers(8, 32)))).decode())
        else:
            out.add("".join(rng.choice(SYLLABLES, int(rng.integers(2, 6)))) + str(int(rng.integers(0, 99))))
    return sorted(out)


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    names = unique_names(n)
    model = load_model()
    model.score(names[:100])  # load and warm up outside the timing

    def baseline() -> np.ndarray:
        enc = encode(names)
        return np.add.reduceat(enc.codes.astype(np.int64), enc.starts)

    t_model = best_of(lambda: model.score(names))
    t_base = best_of(baseline)
    t_encode = best_of(lambda: encode(names))
    domains = [f"www.{x}.co.uk" for x in names[:20_000]]
    t_psl = best_of(lambda: [registered_label(d) for d in domains], repeats=1)
    print(f"dga score: {n:,} unique names")
    print(f"  model (features + both stages): {n / t_model:12,.0f} names/s  ({t_model * 1e3:.0f} ms)")
    print(f"  baseline (encode + one numpy pass): {n / t_base:8,.0f} names/s  ({t_base * 1e3:.0f} ms)")
    print(f"  of which encoding alone: {n / t_encode:17,.0f} names/s")
    print(f"  model / baseline time ratio: {t_model / t_base:.1f}x")
    print(f"  registered_label (per distinct domain, Python): {len(domains) / t_psl:,.0f} domains/s")


if __name__ == "__main__":
    main()
