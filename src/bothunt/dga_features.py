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

_HASH_A = np.uint64(0x9E3779B97F4A7C15)
_HASH_B = np.uint64(0xC2B2AE3D27D4EB4F)

_TABLE = np.full(256, OTHER, dtype=np.uint8)
_TABLE[np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)] = np.arange(LETTER0, LETTER0 + 26)
_TABLE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(DIGIT0, DIGIT0 + 10)
_TABLE[ord("-")], _TABLE[ord("_")], _TABLE[ord(".")] = HYPHEN, UNDERSCORE, DOT
_KIND = np.zeros(N_CODES, dtype=np.uint8)  # 1 vowel, 2 consonant, 3 digit, 4 hyphen, 5 other
_KIND[LETTER0 : LETTER0 + 26] = 2
_KIND[[LETTER0 + ord(ch) - ord("a") for ch in "aeiou"]] = 1
_KIND[DIGIT0 : DIGIT0 + 10] = 3
_KIND[HYPHEN] = 4
_KIND[[UNDERSCORE, DOT, OTHER]] = 5
_XLOGX = np.array([0.0] + [k * np.log2(k) for k in range(1, MAX_LABEL + 1)])

DENSE_NAMES = (
    "length",
    "digit_frac",
    "vowel_frac",
    "hyphens",
    "other_chars",
    "entropy",
    "unique_frac",
    "max_consonant_run",
    "max_digit_run",
    "letter_digit_switches",
    "bigram_logp",
    "trigram_logp",
    "trigram_unseen",
    "word_cover",
    "word_cover_long",
    "longest_word",
    "greedy_words",
    "greedy_uncovered",
    "mean_word_len",
    "bigram_min_logp",
    "trigram_min_logp",
)


@dataclass(frozen=True)
class Encoded:
    """Flat code stream of a batch: ``codes[starts[i]]`` is the ``^`` of name i, ``codes[ends[i]]`` its ``$``."""

    codes: np.ndarray  # uint8, all names with their markers
    rows: np.ndarray  # int64, name index of every code
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64, bytes of each label (without markers, after truncation)
    left: np.ndarray  # int64, codes after each position up to its name's ``$``

    @property
    def n(self) -> int:
        return len(self.lengths)

    @property
    def ends(self) -> np.ndarray:
        return self.starts + self.lengths + 1

    def per_name(self, values: np.ndarray) -> np.ndarray:
        """Sum over each name of 1-D per-position ``values`` (length <= len(codes), zero-padded).

        Boolean input is counted (as uint8: a name has at most 65 positions, so no overflow).
        """
        if values.dtype == bool:
            values = values.view(np.uint8)
        if not self.n:
            return np.zeros(0, dtype=values.dtype)
        if len(values) < len(self.codes):
            values = np.concatenate([values, np.zeros(len(self.codes) - len(values), dtype=values.dtype)])
        return np.add.reduceat(values, self.starts)


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
    left = np.repeat(starts + lengths + 1, sizes) - np.arange(total)
    return Encoded(codes, rows, starts, lengths, left)


def _as_list(names: Sequence[str] | np.ndarray) -> list:
    if isinstance(names, str):
        raise TypeError("score a sequence of names, not a single string")
    return names.tolist() if isinstance(names, np.ndarray) else list(names)


def _ngram_ids(enc: Encoded, n_max: int):
    """Yield (n, bucket hash input, valid mask) for n = 1..n_max, aligned to n-gram start positions."""
    codes = enc.codes.astype(np.uint64)
    ids = codes.copy()
    for n in range(1, n_max + 1):
        if n > 1:
            ids = ids[:-1] * np.uint64(N_CODES) + codes[n - 1 :]
        yield n, (ids | np.uint64(n << 58)) * _HASH_A, enc.left[: len(ids)] >= n - 1


def ngram_buckets(enc: Encoded, n_max: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, bucket) of every character n-gram, n = 1..n_max, markers included, hashed to 2**bits.

    The exact n-gram id (6 bits a code, plus n) is mixed with a multiplicative hash whose top bits are
    the bucket; an n-gram must end at or before its own ``$``, so none straddles two names.
    """
    rows, buckets = [], []
    for _, mixed, valid in _ngram_ids(enc, n_max):
        keep = np.flatnonzero(valid)
        buckets.append((mixed[keep] >> np.uint64(64 - bits)).astype(np.int64))
        rows.append(enc.rows[keep])
    return np.concatenate(rows), np.concatenate(buckets)


def ngram_sums(enc: Encoded, n_max: int, weights: np.ndarray) -> np.ndarray:
    """Sum of ``weights[bucket]`` over each name's n-grams: ``ngram_buckets`` + bincount, but faster."""
    bits = len(weights).bit_length() - 1
    total = np.zeros(len(enc.codes))
    for _, mixed, valid in _ngram_ids(enc, n_max):
        total[: len(valid)] += np.where(valid, weights[(mixed >> np.uint64(64 - bits)).astype(np.intp)], 0)
    return enc.per_name(total)


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


def word_bloom_index(keys: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The two bit positions of each key in a Bloom filter of 2**bits bits."""
    keys = keys.astype(np.uint64)
    shift = np.uint64(64 - bits)
    return (keys * _HASH_A) >> shift, (keys * _HASH_B) >> shift


def _bloom_has(bloom: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Indices of the ``keys`` the filter holds; the second hash is only computed for first-hash hits."""
    shift = np.uint64(64 - (int(len(bloom) * 8).bit_length() - 1))  # the filter holds 2**bits bits
    hit = np.arange(len(keys))
    for mult in (_HASH_A, _HASH_B):
        h = (keys[hit] * mult) >> shift
        hit = hit[((bloom[(h >> np.uint64(3)).astype(np.intp)] >> (h & np.uint64(7)).astype(np.uint8)) & 1) == 1]
    return hit


def word_matches(enc: Encoded, bloom: np.ndarray) -> np.ndarray:
    """Longest dictionary word starting at each position (0 if none), int64 over the code stream.

    ``bloom`` is a packed two-hash Bloom filter of the word keys; with ~10k words in 4 Mbit it
    passes a non-word about once in 10^5 look-ups, and training saw the same filter.
    """
    codes = enc.codes
    total = len(codes)
    kind = _KIND[codes]
    letter = (kind == 1) | (kind == 2)
    # letters in the run that starts at each position (0 on non-letters)
    idx = np.arange(total, dtype=np.int32)
    next_break = np.minimum.accumulate(np.where(letter, np.int32(total), idx)[::-1])[::-1]
    run = next_break - idx
    best = np.zeros(total, dtype=np.int64)
    vals = np.where(letter, codes.astype(np.int64) - LETTER0, 0).astype(np.uint64)
    # grow the key of every position whose letter run is still long enough; the set shrinks with k
    cand = np.flatnonzero(letter)
    key = vals[cand]
    mult = np.uint64(1)
    for k in range(1, WORD_MAX + 1):
        if k > 1:
            keep = run[cand] >= k
            cand, key = cand[keep], key[keep]
            mult *= np.uint64(26)
            key = key + vals[cand + (k - 1)] * mult  # little-endian base 26, as word_key
        if not len(cand):
            break
        if k >= WORD_MIN:
            best[cand[_bloom_has(bloom, key * np.uint64(16) + np.uint64(k))]] = k
    return best


def _run_max(enc: Encoded, mask: np.ndarray) -> np.ndarray:
    """Longest run of ``mask`` in each name (runs never cross a name's markers, which are never set)."""
    if not enc.n:
        return np.zeros(0, dtype=np.int32)
    idx = np.arange(len(mask), dtype=np.int32)
    last_false = np.maximum.accumulate(np.where(mask, np.int32(-1), idx))
    return np.maximum.reduceat(np.where(mask, idx - last_false, np.int32(0)), enc.starts)


def dense_features(enc: Encoded, tables: dict[str, np.ndarray]) -> np.ndarray:
    """(n, len(DENSE_NAMES)) float64 hand features; ``tables`` holds the benign LMs and word filter."""
    n, codes = enc.n, enc.codes
    out = np.zeros((n, len(DENSE_NAMES)))
    if not n:
        return out
    length = enc.lengths.astype(np.float64)
    safe = np.maximum(length, 1.0)
    c = codes.astype(np.intp)
    kind = _KIND[c]
    is_digit = kind == 3
    is_letter = (kind == 1) | (kind == 2)
    switch = np.zeros(len(c), dtype=bool)
    switch[1:] = (is_letter[1:] & is_digit[:-1]) | (is_digit[1:] & is_letter[:-1])
    bi = c[:-1] * N_CODES + c[1:]
    tri = bi[:-1] * N_CODES + c[2:]
    tri_ok = enc.left[:-2] >= 2
    unseen = (tables["trigram_unseen"][tri] & tri_ok).astype(bool)
    vowels, letters = enc.per_name(kind == 1), enc.per_name(is_letter)
    out[:, 0] = length
    out[:, 1] = enc.per_name(is_digit) / safe
    out[:, 2] = vowels / np.maximum(letters, 1)
    out[:, 3] = enc.per_name(kind == 4)
    out[:, 4] = enc.per_name(kind == 5)
    hist = np.bincount(enc.rows * N_CODES + c, minlength=n * N_CODES).reshape(n, N_CODES)[:, LETTER0:]
    out[:, 5] = np.log2(safe) - _XLOGX[hist].sum(axis=1) / safe
    out[:, 6] = (hist > 0).sum(axis=1) / safe
    out[:, 7] = _run_max(enc, kind == 2)
    out[:, 8] = _run_max(enc, is_digit)
    out[:, 9] = enc.per_name(switch) / safe
    # per position log-probabilities, 0 where no bigram / trigram starts (neutral for sum and min)
    bi_lp = np.zeros(len(c))
    bi_lp[:-1] = np.where(enc.left[:-1] >= 1, tables["bigram_logp"][bi], 0.0)
    tri_lp = np.zeros(len(c))
    tri_lp[:-2] = np.where(tri_ok, tables["trigram_logp"][tri], 0.0)
    out[:, 10] = enc.per_name(bi_lp) / (safe + 1)
    out[:, 11] = enc.per_name(tri_lp) / safe
    out[:, 12] = enc.per_name(unseen) / safe
    # one implausible transition is strong evidence in a short name, and a mean dilutes it
    out[:, 19] = np.minimum.reduceat(bi_lp, enc.starts)
    out[:, 20] = np.minimum.reduceat(tri_lp, enc.starts)
    _word_features(enc, tables, out, safe)
    out[length == 0, 5:] = 0.0
    return out


def _word_features(enc: Encoded, tables: dict[str, np.ndarray], out: np.ndarray, safe: np.ndarray) -> None:
    best = word_matches(enc, tables["word_bloom"])
    pos = np.arange(len(best))
    covered = []
    for min_len in (WORD_MIN, 5):
        reach = np.maximum.accumulate(np.where(best >= min_len, pos + best, 0))
        covered.append(reach > pos)
    out[:, 13] = enc.per_name(covered[0]) / safe
    out[:, 14] = enc.per_name(covered[1]) / safe
    out[:, 15] = np.maximum.reduceat(best, enc.starts)
    # greedy longest-match segmentation, advanced for all names at once: one step per word or gap
    cursor = enc.starts + 1
    stop = enc.ends
    words = np.zeros(enc.n)
    gaps = np.zeros(enc.n)
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


STACK_NAMES = ("ngram_logit", *DENSE_NAMES, "log_length", "ngram_logit_per_sqrt_len")


def stack_inputs(ngram_logit: np.ndarray, dense: np.ndarray) -> np.ndarray:
    """Inputs of the second stage: the n-gram model's logit beside the hand features.

    The logit divided by sqrt(length) lets the small network judge evidence per character, which is
    what separates a short random name from a short acronym.
    """
    length = dense[:, 0]
    return np.column_stack([ngram_logit, dense, np.log1p(length), ngram_logit / np.sqrt(length + 2)])
