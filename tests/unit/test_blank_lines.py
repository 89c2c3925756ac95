"""blank_lines: which lines of a chunk hold only whitespace (the JSON readers skip those)."""

import numpy as np

from bothunt.sources.base import blank_lines


def _lines(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    return np.concatenate(([0], ends[:-1] + 1)), ends


def test_matches_strip_on_every_kind_of_line():
    rng = np.random.default_rng(5)
    kinds = [b"", b" ", b"\t \r", b'{"a": 1}', b'  {"a": 2}', b"\r", b' \t x', b'{"b": " "}  ', b"   \t"]
    picked = [kinds[i] for i in rng.integers(0, len(kinds), 5000)]
    data = b"\n".join(picked) + b"\n"
    starts, ends = _lines(data)
    expected = [not line.strip(b" \t\r") for line in picked]
    assert blank_lines(data, starts, ends).tolist() == expected


def test_lines_that_start_with_content_never_scan_bytes():
    data = b'{"x": 1}\n{"x": 2}\n\n{"x": 3}\n'
    starts, ends = _lines(data)
    assert blank_lines(data, starts, ends).tolist() == [False, False, True, False]
    # the last line blank and indented content before it
    data = b'  {"x": 1}\n \t \n'
    starts, ends = _lines(data)
    assert blank_lines(data, starts, ends).tolist() == [False, True]
