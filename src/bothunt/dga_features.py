"""Vectorised character features of domain labels for the DGA model (numpy only).

Names are encoded once into a flat code stream ``^label$^label$...`` (one uint8 code per byte), so
every feature is a handful of array operations over the total number of characters, never a Python
loop per name. Training (tools/train_dga.py) and scoring (bothunt.dga_model) call the same functions,
so the shipped weights always see exactly the features they were fitted on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_LABEL = 63  # DNS label limit: anything longer is not a registrable label, only its head is scored
START, END = 1, 2
LETTER0, DIGIT0 = 3, 29  # a..z -> 3..28, 0..9 -> 29..38
HYPHEN, UNDERSCORE, DOT, OTHER = 39, 40, 41, 42
N_CODES = 64  # codes fit in 6 bits, so an n-gram of up to 5 codes is an exact 30-bit id
WORD_MIN, WORD_MAX = 3, 12  # 26**12 * 16 < 2**64: a word of up to 12 letters is an exact uint64 key

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

_TABLE = np.full(256, OTHER, dtype=np.uint8)
_TABLE[np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)] = np.arange(LETTER0, LETTER0 + 26)
_TABLE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(DIGIT0, DIGIT0 + 10)
_TABLE[ord("-")], _TABLE[ord("_")], _TABLE[ord(".")] = HYPHEN, UNDERSCORE, DOT
_VOWELS = np.zeros(N_CODES, dtype=bool)
_VOWELS[[LETTER0 + ord(c) - ord("a") for c in "aeiou"]] = True

DENSE_NAMES = (
    "length", "digit_frac", "vowel_frac", "hyphens", "other_chars", "entropy", "unique_frac",
    "max_consonant_run", "max_digit_run", "letter_digit_switches", "bigram_logp", "trigram_logp",
    "trigram_unseen", "word_cover", "word_cover_long", "longest_word", "greedy_words",
    "greedy_uncovered", "mean_word_len",
)


@dataclass(frozen=True)
class Encoded:
    """Flat code stream of a batch: ``codes[starts[i]]`` is the ``^`` of name i."""

    codes: np.ndarray  # uint8, all names with their markers
    rows: np.ndarray  # int64, name index of every code
    starts: np.ndarray  # int64, position of each name's ``^``
    lengths: np.ndarray  # int64, bytes of each label (without markers, after truncation)

    @property
    def n(self) -> int:
        return len(self.lengths)


def encode(names: Sequence[str] | np.ndarray) -> Encoded:
    """Lower-case, UTF-8 encode and truncate each name, then lay all names out in one code stream.

    Non-ASCII bytes share one code (``OTHER``): the model is trained on ASCII labels, so an IDN label
    only counts as unusual characters. ``None`` scores as the empty label.
    """
    raw = [(s or "").lower().encode("utf-8", "replace")[:MAX_LABEL] for s in _as_list(names)]
    n = len(raw)
    lengths = np.fromiter(map(len, raw), dtype=np.int64, count=n)
    sizes = lengths + 2
    starts = np.zeros(n, dtype=np.int64)
    if n:
        np.cumsum(sizes[:-1], out=starts[1:])
    total = int(sizes.sum())
    codes = np.empty(total, dtype=np.uint8)
    codes[starts] = START
    codes[starts + lengths + 1] = END
    buf = np.frombuffer(b"".join(raw), dtype=np.uint8)
    if len(buf):
        shift = np.repeat(starts + 1 - (np.cumsum(lengths) - lengths), lengths)
        codes[np.arange(len(buf)) + shift] = _TABLE[buf]
    rows = np.repeat(np.arange(n, dtype=np.int64), sizes)
    return Encoded(codes, rows, starts, lengths)


def _as_list(names: Sequence[str] | np.ndarray) -> list:
    if isinstance(names, str):
        raise TypeError("score a sequence of names, not a single string")
    return names.tolist() if isinstance(names, np.ndarray) else list(names)


def _remaining(enc: Encoded) -> np.ndarray:
    """Codes left after each position up to and including its name's ``$``."""
    ends = np.repeat(enc.starts + enc.lengths + 1, enc.lengths + 2)
    return ends - np.arange(len(enc.codes))


def ngram_buckets(enc: Encoded, n_max: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, bucket) of every character n-gram, n = 1..n_max, markers included, hashed to 2**bits.

    The exact n-gram id (6 bits a code, plus n) is mixed with a multiplicative hash whose top bits are
    the bucket; ids never straddle two names because an n-gram must end at or before its own ``$``.
    """
    codes = enc.codes.astype(np.uint64)
    remaining = _remaining(enc)
    ids = codes.copy()
    rows_out, buckets_out = [], []
    for n in range(1, n_max + 1):
        if n > 1:
            ids = ids[:-1] * np.uint64(N_CODES) + codes[n - 1:]
        keep = np.flatnonzero(remaining[: len(ids)] >= n - 1)
        key = ids[keep] | np.uint64(n << 58)
        buckets_out.append(((key * _GOLDEN) >> np.uint64(64 - bits)).astype(np.int64))
        rows_out.append(enc.rows[keep])
    return np.concatenate(rows_out), np.concatenate(buckets_out)


def ngram_count(lengths: np.ndarray, n_max: int) -> np.ndarray:
    """How many n-grams ``ngram_buckets`` yields for a label of each length (with its 2 markers)."""
    m = lengths + 2
    return sum(np.maximum(m - n + 1, 0) for n in range(1, n_max + 1))


def word_key(word: str) -> int:
    """Exact key of a lower-case a..z word of WORD_MIN..WORD_MAX letters (same as the stream's keys)."""
    key = 0
    for ch in reversed(word):
        key = key * 26 + (ord(ch) - ord("a"))
    return key * 16 + len(word)


def word_bloom_index(keys: np.ndarray, bits: int) -> np.ndarray:
    return ((keys.astype(np.uint64) * _GOLDEN) >> np.uint64(64 - bits)).astype(np.int64)


def word_matches(enc: Encoded, words: np.ndarray, bloom: np.ndarray) -> np.ndarray:
    """Longest dictionary word starting at each position (0 if none), int64 over the code stream.

    ``words`` is the sorted uint64 array of word keys; ``bloom`` a packed bit filter over them (its
    size sets the hash width), so only the few positions the filter passes are searched exactly.
    """
    codes = enc.codes
    total = len(codes)
    letter = (codes >= LETTER0) & (codes < LETTER0 + 26)
    # letters in the run that starts at each position (0 on non-letters), from a reversed cumsum
    idx = np.arange(total)
    breaks = np.where(letter, total, idx)
    next_break = np.minimum.accumulate(breaks[::-1])[::-1]
    run = next_break - idx
    best = np.zeros(total, dtype=np.int64)
    vals = (codes.astype(np.int64) - LETTER0).clip(0).astype(np.uint64)
    key = np.zeros(total, dtype=np.uint64)
    mult = np.uint64(1)
    bloom_bits = int(len(bloom) * 8).bit_length() - 1
    for k in range(1, WORD_MAX + 1):
        # key over letters p..p+k-1, little-endian base 26 (matches word_key)
        key[: total - k + 1] += vals[k - 1:] * mult
        mult *= np.uint64(26)
        if k < WORD_MIN:
            continue
        cand = np.flatnonzero(run[: total - k + 1] >= k)
        if not len(cand):
            continue
        full = key[cand] * np.uint64(16) + np.uint64(k)
        h = word_bloom_index(full, bloom_bits)
        hit = (bloom[h >> 3] >> (h & 7).astype(np.uint8)) & 1
        cand, full = cand[hit == 1], full[hit == 1]
        pos = np.searchsorted(words, full).clip(max=len(words) - 1)
        best[cand[words[pos] == full]] = k
    return best


def _row_max(enc: Encoded, values: np.ndarray) -> np.ndarray:
    if not enc.n:
        return np.zeros(0, dtype=values.dtype)
    return np.maximum.reduceat(values, enc.starts)  # every name has its two markers: no empty segment


def _run_lengths(enc: Encoded, mask: np.ndarray) -> np.ndarray:
    """Length of the run of ``mask`` ending at each position (runs never cross a name's markers)."""
    idx = np.arange(len(mask))
    last_false = np.maximum.accumulate(np.where(mask, -1, idx))
    return np.where(mask, idx - last_false, 0)


def dense_features(enc: Encoded, tables: dict[str, np.ndarray]) -> np.ndarray:
    """(n, len(DENSE_NAMES)) float64 hand features; ``tables`` holds the benign LMs and word list."""
    n, codes, rows = enc.n, enc.codes, enc.rows
    length = enc.lengths.astype(np.float64)
    safe = np.maximum(length, 1.0)
    c = codes.astype(np.int64)
    is_letter = (c >= LETTER0) & (c < LETTER0 + 26)
    is_digit = (c >= DIGIT0) & (c < DIGIT0 + 10)
    is_vowel = _VOWELS[c]
    is_cons = is_letter & ~is_vowel
    letters = np.bincount(rows, is_letter, minlength=n)
    digits = np.bincount(rows, is_digit, minlength=n)
    out = np.zeros((n, len(DENSE_NAMES)))
    out[:, 0] = length
    out[:, 1] = digits / safe
    out[:, 2] = np.bincount(rows, is_vowel, minlength=n) / np.maximum(letters, 1)
    out[:, 3] = np.bincount(rows, c == HYPHEN, minlength=n)
    out[:, 4] = np.bincount(rows, (c == OTHER) | (c == UNDERSCORE) | (c == DOT), minlength=n)
    counts = np.bincount(rows * N_CODES + c, minlength=n * N_CODES).reshape(n, N_CODES)
    counts[:, START] = 0
    counts[:, END] = 0
    p = counts / safe[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, 5] = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    out[:, 6] = (counts > 0).sum(axis=1) / safe
    out[:, 7] = _row_max(enc, _run_lengths(enc, is_cons))
    out[:, 8] = _row_max(enc, _run_lengths(enc, is_digit))
    switch = np.zeros(len(c), dtype=bool)
    switch[1:] = (is_letter[1:] & is_digit[:-1]) | (is_digit[1:] & is_letter[:-1])
    out[:, 9] = np.bincount(rows, switch, minlength=n) / safe
    # benign character language models: mean log-probability of the name's bigrams / trigrams
    bi = c[:-1] * N_CODES + c[1:]
    bi_ok = _remaining(enc)[:-1] >= 1
    out[:, 10] = np.bincount(rows[:-1][bi_ok], tables["bigram_logp"][bi[bi_ok]], minlength=n) / (safe + 1)
    tri = bi[:-1] * N_CODES + c[2:]
    tri_ok = _remaining(enc)[:-2] >= 2
    tri_lp = tables["trigram_logp"][tri[tri_ok]].astype(np.float64)
    tri_rows = rows[:-2][tri_ok]
    out[:, 11] = np.bincount(tri_rows, tri_lp, minlength=n) / safe
    out[:, 12] = np.bincount(tri_rows, tables["trigram_unseen"][tri[tri_ok]], minlength=n) / safe
    _word_features(enc, tables, out, safe)
    return out


def _word_features(enc: Encoded, tables: dict[str, np.ndarray], out: np.ndarray, safe: np.ndarray) -> None:
    n, rows = enc.n, enc.rows
    best = word_matches(enc, tables["words"], tables["word_bloom"])
    pos = np.arange(len(best))
    for col, min_len in ((13, WORD_MIN), (14, 5)):
        reach = np.maximum.accumulate(np.where(best >= min_len, pos + best, 0))
        covered = reach > pos
        out[:, col] = np.bincount(rows, covered, minlength=n) / safe
    out[:, 15] = _row_max(enc, best)
    # greedy longest-match segmentation, advanced for all names at once: one step per word or gap
    cursor = enc.starts + 1
    stop = enc.starts + 1 + enc.lengths
    words = np.zeros(n)
    gaps = np.zeros(n)
    active = np.flatnonzero(cursor < stop)
    while len(active):
        step = best[cursor[active]]
        is_word = step > 0
        words[active[is_word]] += 1
        gaps[active[~is_word]] += 1
        cursor[active] += np.maximum(step, 1)
        active = active[cursor[active] < stop[active]]
    out[:, 16] = words
    out[:, 17] = gaps / safe
    out[:, 18] = (out[:, 0] - gaps) / np.maximum(words, 1)
