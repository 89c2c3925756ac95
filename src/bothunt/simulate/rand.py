"""Deterministic randomness: every stream is derived from the run seed and a tuple of integer keys, so the
same seed gives the same telemetry whatever order the generators run in (no Python `hash()`)."""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
ALNUM_LOWER = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)
LOWER = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for (seed, *keys)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *[int(k) for k in keys]]))


def mix64(x: np.ndarray | int) -> np.ndarray:
    """splitmix64 finaliser: a cheap, well-spread, vectorised integer hash."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def base62(values: np.ndarray, width: int) -> np.ndarray:
    """Fixed-width base62 digits of uint64 values, as an (n,) bytes array of dtype S{width}."""
    v = np.asarray(values, dtype=np.uint64).copy()
    out = np.empty((v.size, width), dtype=np.uint8)
    for i in range(width):  # loop over digit positions, not events
        out[:, i] = B62[(v % np.uint64(62)).astype(np.intp)]
        v //= np.uint64(62)
    return out.reshape(-1).view(f"S{width}")


def random_strings(rng: np.random.Generator, n: int, length: int, alphabet: np.ndarray = ALNUM_LOWER) -> np.ndarray:
    """n random strings of one length as dtype S{length}."""
    if n == 0:
        return np.empty(0, dtype=f"S{max(length, 1)}")
    idx = rng.integers(0, alphabet.size, size=(n, length))
    return alphabet[idx].reshape(-1).view(f"S{length}")


def ragged_arange(counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(c) for every c in counts."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - starts
