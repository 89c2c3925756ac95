"""Lookup tables the DGA features need, derived from benign *training* labels only.

Benign labels used to pick thresholds or to test never enter these tables: a word list built from
the test labels would cover them perfectly and make the false-positive rate look better than it is.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from bothunt.dga_features import N_CODES, WORD_MAX, WORD_MIN, encode, word_bloom_index, word_key

BLOOM_BITS = 22  # 4 Mbit = 512 KiB packed (mostly zeros, so it compresses); two hashes
_LETTERS = re.compile(r"[a-z]+")


def char_models(benign: list[str]) -> dict[str, np.ndarray]:
    """Benign character bigram / trigram log-probabilities (add-alpha smoothed) over the code alphabet."""
    enc = encode(benign)
    c = enc.codes.astype(np.int64)
    ok2 = np.ones(len(c) - 1, dtype=bool)
    ok2[(enc.starts + enc.lengths + 1)[:-1]] = False  # no bigram from one name's $ to the next ^
    bi = (c[:-1] * N_CODES + c[1:])[ok2]
    bi_counts = np.bincount(bi, minlength=N_CODES**2).reshape(N_CODES, N_CODES).astype(np.float64)
    alpha, vocab = 0.5, 43
    bigram = np.log((bi_counts + alpha) / (bi_counts.sum(axis=1, keepdims=True) + alpha * vocab))
    ok3 = ok2[:-1] & ok2[1:]
    tri = (c[:-2] * N_CODES * N_CODES + c[1:-1] * N_CODES + c[2:])[ok3]
    tri_counts = np.bincount(tri, minlength=N_CODES**3).reshape(N_CODES**2, N_CODES).astype(np.float64)
    alpha3 = 0.1
    trigram = np.log((tri_counts + alpha3) / (tri_counts.sum(axis=1, keepdims=True) + alpha3 * vocab))
    return {
        "bigram_logp": bigram.ravel().astype(np.float32),
        "trigram_logp": trigram.ravel().astype(np.float16),
        "trigram_unseen": (tri_counts.ravel() == 0).astype(np.uint8),
    }


def derive_words(benign: list[str], min_df: int = 3, min_uses: int = 3, rounds: int = 3) -> list[str]:
    """A word list learned from benign labels by unigram segmentation (a small Morfessor-like loop).

    Start from every letter substring of WORD_MIN..WORD_MAX characters that occurs in at least
    ``min_df`` distinct labels, then repeatedly segment every label with the current word
    probabilities (Viterbi; a letter outside any word is expensive) and keep the words the
    segmentations actually use. What survives are the pieces benign names are built from
    (``online``, ``shop``, ``news``, ``book``), not arbitrary frequent trigrams.
    """
    chunks = [m for lab in benign for m in _LETTERS.findall(lab)]
    df: Counter[str] = Counter()
    for chunk in set(chunks):
        df.update(
            {
                chunk[i : i + k]
                for k in range(WORD_MIN, min(WORD_MAX, len(chunk)) + 1)
                for i in range(len(chunk) - k + 1)
            }
        )
    logp = {w: 0.0 for w, c in df.items() if c >= min_df}
    for _ in range(rounds):
        uses: Counter[str] = Counter()
        for chunk in chunks:
            uses.update(_segment(chunk, logp))
        total = sum(uses.values())
        logp = {w: math.log(c / total) for w, c in uses.items() if c >= min_uses}
    return sorted(logp)


def _segment(chunk: str, logp: dict[str, float], char_cost: float = 12.0) -> list[str]:
    n = len(chunk)
    cost = [0.0] + [math.inf] * n
    back = [0] * (n + 1)
    for end in range(1, n + 1):
        best, arg = cost[end - 1] + char_cost, end - 1
        for k in range(WORD_MIN, min(WORD_MAX, end) + 1):
            lp = logp.get(chunk[end - k : end])
            if lp is not None and cost[end - k] - lp < best:
                best, arg = cost[end - k] - lp, end - k
        cost[end], back[end] = best, arg
    words, end = [], n
    while end > 0:
        start = back[end]
        if end - start >= WORD_MIN:
            words.append(chunk[start:end])
        end = start
    return words


def word_tables(words: list[str]) -> dict[str, np.ndarray]:
    keys = np.array(sorted(word_key(w) for w in words), dtype=np.uint64)
    bits = np.zeros(1 << BLOOM_BITS, dtype=np.uint8)
    for h in word_bloom_index(keys, BLOOM_BITS):
        bits[h.astype(np.intp)] = 1
    return {"word_bloom": np.packbits(bits, bitorder="little")}
