"""The CSV record scan: where each record of a buffer starts and ends, its first line and its number
of fields, found with numpy before Arrow parses anything.

RFC 4180 doubles a quote inside a quoted field, so a newline ends a record exactly when the quotes
before it are even in number. That gives every record its exact first line (quoted command lines may
span lines) and its raw text, and a record with the wrong number of fields can be rejected on its own
instead of failing the block. Separate from the reader because it is pure byte arithmetic on bit
masks, tested against a byte-by-byte reference, and knows nothing of headers, rows or rejects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Records:
    starts: np.ndarray  # start offset of each non-empty record
    ends: np.ndarray  # end offset (exclusive, without newline / CR)
    lines: np.ndarray  # first line of each record
    nfields: np.ndarray
    cut: int  # bytes [0, cut) hold complete records
    next_line: int  # line number at offset `cut`
    cut_first: int = 0  # end of the first record's newline (for the header)
    lines_in_first: int = 0
    per_line: bool = False

    @property
    def count(self) -> int:
        return len(self.starts)


def find_records(buf: bytes, line0: int, delim: bytes, per_line: bool = False) -> Records:
    """Records of `buf` (complete ones up to `cut`) with their first line and field count. With
    `per_line`, every line is a record: the retry for a quote that is not RFC 4180 quoting.

    A delimiter or newline is inside quotes when an odd number of quotes precede it in its record.
    Exports quote every field, so quotes outnumber delimiters; the parity of every byte is therefore
    computed on bit masks, 64 bytes to a word, and only newlines are looked at one by one."""
    a = np.frombuffer(buf, dtype=np.uint8)
    nl, (quotes, delims) = _scan(a, (34, delim[0]))
    inside = _prefix_parity(quotes)
    # Indices into `nl` of the newlines that end records.
    at = np.arange(len(nl)) if per_line else np.flatnonzero(_bit_at(inside, nl) == 0)
    if len(at) == 0:  # no record is complete yet (a quoted field runs past the end of `buf`)
        none = np.zeros(0, np.int64)
        return Records(none, none, none, none, 0, line0, per_line=per_line)
    ends_nl = nl[at]
    cut = int(ends_nl[-1]) + 1
    starts = np.concatenate([[0], ends_nl[:-1] + 1])
    lines = line0 + np.concatenate([[0], at[:-1] + 1])
    cr = (ends_nl > starts) & (a[np.maximum(ends_nl - 1, 0)] == 13)
    ends = ends_nl - cr
    outside = _prefix_count(delims & ~inside)
    nfields = 1 + outside(ends) - outside(starts)
    # The per-line retry restarts the count at every line: where a line starts after an odd number
    # of quotes, its delimiters outside quotes are those the whole-buffer parity puts inside.
    odd = (_bit_at(inside, np.maximum(starts - 1, 0)) == 1) & (starts > 0)
    if odd.any():
        flipped = _prefix_count(delims & inside)
        nfields[odd] = 1 + flipped(ends[odd]) - flipped(starts[odd])
    keep = ends > starts
    return Records(starts[keep], ends[keep], lines[keep], nfields[keep], cut, line0 + int(at[-1]) + 1,
                    int(ends_nl[0]) + 1, int(at[0]) + 1, per_line)


# Bit masks: bit i of word k stands for byte 64k + i; a spare zero word lets a lookup at the end of
# the buffer (a record ending there) stay in bounds.
_WORD = np.dtype("<u8")
# Bytes compared at a time (a multiple of 8): masks of a whole chunk at once would be 16 MiB
# temporaries, whose fresh pages cost the kernel as much time as the comparisons cost numpy.
_BLOCK = 1 << 18


def _scan(a: np.ndarray, values: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Positions of the newlines in `a`, and one bit mask per value: where `a` holds it."""
    masks = [np.zeros(len(a) // 64 + 2, _WORD) for _ in values]
    hit = np.empty(min(len(a), _BLOCK), dtype=bool)
    newlines = []
    for lo in range(0, len(a), _BLOCK):
        block = a[lo: lo + _BLOCK]
        found = hit[: len(block)]
        np.equal(block, 10, out=found)
        newlines.append(np.flatnonzero(found) + lo)
        for mask, value in zip(masks, values, strict=True):
            np.equal(block, value, out=found)
            bits = np.packbits(found, bitorder="little")
            mask.view(np.uint8)[lo // 8: lo // 8 + len(bits)] = bits
    return (np.concatenate(newlines) if newlines else np.zeros(0, np.int64)), masks


def _prefix_parity(words: np.ndarray) -> np.ndarray:
    """Bit i set when an odd number of bits are set in positions 0..i (inclusive)."""
    x = words.copy()
    shifted = np.empty_like(x)
    for shift in (1, 2, 4, 8, 16, 32):
        np.left_shift(x, np.uint64(shift), out=shifted)
        x ^= shifted
    odd_word = x >> np.uint64(63)
    carry = np.bitwise_xor.accumulate(odd_word) ^ odd_word  # parity of all earlier words
    x ^= np.uint64(0) - carry  # all ones after an odd count: flip every bit
    return x


def _bit_at(words: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return ((words[pos >> 6] >> (pos & 63).astype(_WORD)) & np.uint64(1)).astype(np.int64)


def _prefix_count(words: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function giving, for each position p, how many bits are set before p."""
    before = np.concatenate([[0], np.cumsum(np.bitwise_count(words), dtype=np.int64)])

    def count(pos: np.ndarray) -> np.ndarray:
        below = (np.uint64(1) << (pos & 63).astype(_WORD)) - np.uint64(1)
        return before[pos >> 6] + np.bitwise_count(words[pos >> 6] & below).astype(np.int64)

    return count
