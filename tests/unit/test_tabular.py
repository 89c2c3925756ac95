"""tabular: the CSV record scan, the SQL helpers the record sources share (JSON, times, addresses)."""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from bothunt.sources import tabular, tabular_csv_scan
from bothunt.sources.base import ReadContext


def reference_records(buf: bytes, line0: int, delim: bytes, per_line: bool = False) -> dict:
    """`find_records` written out byte by byte: a newline ends a record when the quotes since the record's
    start are even in number (any newline with `per_line`), and a delimiter there starts a field."""
    starts, ends, lines, nfields = [], [], [], []
    start, quotes, fields, line = 0, 0, 1, line0
    cut = cut_first = lines_in_first = 0
    next_line, first_end_seen, newlines = line0, False, 0
    for i, byte in enumerate(buf):
        if byte == 34:
            quotes ^= 1
        elif byte == delim[0] and quotes == 0:
            fields += 1
        elif byte == 10:
            newlines += 1
            if quotes == 0 or per_line:
                end = i - 1 if i > start and buf[i - 1] == 13 else i
                if end > start:
                    starts.append(start), ends.append(end), lines.append(line), nfields.append(fields)
                if not first_end_seen:
                    cut_first, lines_in_first, first_end_seen = i + 1, newlines, True
                start, quotes, fields, line = i + 1, 0, 1, line0 + newlines
                cut, next_line = i + 1, line0 + newlines
    return dict(starts=starts, ends=ends, lines=lines, nfields=nfields, cut=cut, next_line=next_line,
                cut_first=cut_first, lines_in_first=lines_in_first)


def scanned(buf: bytes, line0: int, delim: bytes, per_line: bool = False) -> dict:
    r = tabular_csv_scan.find_records(buf, line0, delim, per_line)
    return dict(starts=r.starts.tolist(), ends=r.ends.tolist(), lines=r.lines.tolist(), nfields=r.nfields.tolist(),
                cut=r.cut, next_line=r.next_line, cut_first=r.cut_first, lines_in_first=r.lines_in_first)


def test_record_scan_on_a_small_export():
    buf = (b'a,"b,c",d\r\n'  # a quoted delimiter, CRLF
           b'"x\ny",2,3\n'  # a quoted newline: one record over two lines
           b'\n'  # an empty line is no record
           b'"he said ""hi""",5,6\n'  # doubled quotes
           b'q"r,s,t\n'  # a quote that is not RFC 4180 quoting: the rest of the buffer is quoted
           b'u,v,w\n')
    assert scanned(buf, 7, b",") == dict(
        starts=[0, 11, 22], ends=[9, 20, 42], lines=[7, 8, 11], nfields=[3, 3, 3], cut=43, next_line=12,
        cut_first=11, lines_in_first=1)
    # Retried line by line, the stray quote's line counts its fields from its own start.
    tail = b'q"r,s,t\nu,v,w\n'
    assert scanned(tail, 12, b",", per_line=True) == dict(
        starts=[0, 8], ends=[7, 13], lines=[12, 13], nfields=[1, 3], cut=14, next_line=14, cut_first=8,
        lines_in_first=1)


@pytest.mark.parametrize("block", [64, 1 << 18])
def test_record_scan_matches_the_byte_by_byte_reference(monkeypatch, block):
    # A small block makes every buffer cross the boundaries of the bit masks' blocks and 64-byte words.
    monkeypatch.setattr(tabular_csv_scan, "_BLOCK", block)
    rng = random.Random(7)
    pieces = [b'"', b",", b"\n", b"\r", b"a", b";", b'""', b'","', b"\r\n", b"xyz"]
    for size in [0, 1, 5, 60, 200] * 300 + [3000] * 20:
        buf = b"".join(rng.choice(pieces) for _ in range(size))
        for delim in (b",", b";"):
            assert scanned(buf, 5, delim) == reference_records(buf, 5, delim), buf
            line_buf = buf + b"\n"
            assert scanned(line_buf, 5, delim, True) == reference_records(line_buf, 5, delim, True), line_buf


def test_json_values_one_parse_and_null_unless_the_right_kind():
    con = tabular.connect()
    texts = ['{"q": "a.example", "n": 1.5, "o": {"x": [1]}}', '  {"q": "b"} ', '{"q": "c",}', '{"q": "d"',
             '["not", "an", "object"]', '"text"', "", None]
    got = con.sql("SELECT bh_json_object(x, ['$.q', '$.n', '$.o', '$.missing']) AS o FROM "
                  "(SELECT unnest($1) AS x)", params=[texts]).fetchall()
    assert [r[0] for r in got] == [["a.example", "1.5", '{"x":[1]}', None], ["b", None, None, None],
                                   ["c", None, None, None], None, None, None, None, None]
    arrays = ['["1.2.3.4", "5.6.7.8"]', ' [60, 1.5]', '["x"', '{"a": 1}', "[]", None]
    got = con.sql("SELECT bh_json_array(x, '[\"VARCHAR\"]') AS v, bh_json_array(x, '[\"DOUBLE\"]') AS d FROM "
                  "(SELECT unnest($1) AS x)", params=[arrays]).fetchall()
    assert got == [(["1.2.3.4", "5.6.7.8"], [None, None]), (["60", "1.5"], [60.0, 1.5]), (None, None),
                   (None, None), ([], []), (None, None)]


T = functools.partial(datetime, tzinfo=UTC)


def test_times_in_every_layout_and_zone():
    cases = [
        ("1732708800000", None, T(2024, 11, 27, 12)),  # epoch milliseconds
        ("1732708800.25", None, T(2024, 11, 27, 12, 0, 0, 250000)),  # epoch seconds
        ("2024-11-27T12:00:00+02:00", "Europe/Berlin", T(2024, 11, 27, 10)),  # ISO: its own offset wins
        ("2024-11-27 12:00:00", None, T(2024, 11, 27, 12)),  # naive ISO is UTC
        ("11/27/2024, 1:00:00.1234567 PM", None, T(2024, 11, 27, 13, 0, 0, 123456)),  # digits past 6 dropped
        ("11/27/2024 13:00:00", "Europe/Berlin", T(2024, 11, 27, 12)),  # the device's zone
        ("11/27/2024, 01:00:00 PM", "+05:30", T(2024, 11, 27, 7, 30)),
        ("11/27/2024 13:00:00", "utc", T(2024, 11, 27, 13)),
        ("Nov 27 2024 13:00:09 CET", "America/New_York", T(2024, 11, 27, 12, 0, 9)),  # the text's zone wins
        ("Nov 27 2024 13:00:09 -0500", None, T(2024, 11, 27, 18, 0, 9)),
        ("Nov 27 2024 13:00:09.1234567", None, T(2024, 11, 27, 13, 0, 9, 123456)),
        ("Dec 31 23:59:59", None, T(2024, 12, 31, 23, 59, 59)),  # year-less: a year back from the file's time
        ("Jan 1 00:00:01", None, T(2025, 1, 1, 0, 0, 1)),
        ("Nov 27 2024 13:00:09 Mars/Olympus", None, None),  # not a zone name
        ("11/27/2024 13:00:00", "Mars/Olympus", None),
        ("yesterday at noon", None, None),
        ("", None, None),
    ]
    table = pa.table({"t": [c[0] for c in cases], "z": pa.array([c[1] for c in cases], pa.string())})
    ref = "make_timestamp(1735689600::BIGINT * 1000000)"  # the file's time: 2025-01-01 00:00 UTC
    out = tabular.parse_times(tabular.connect(), table, ["t"], "z", ref)
    assert out["t__ts"].type == pa.timestamp("us", "UTC")
    assert out["t__ts"].to_pylist() == [c[2] for c in cases]


def test_addresses_are_normalised_once_per_distinct_value():
    values = ["10.0.0.1", "::FFFF:10.0.0.1", "FE80::1%eth0", "10.0.0.1", None, "10.0.0.256", "::ffff:10.0.0.1",
              "not-an-ip", ""]
    n = len(values)
    rows = tabular.Rows(pa.table({"ip": pa.array(values, pa.string()), "_line": pa.array(range(1, n + 1)),
                                  "_i": pa.array(np.arange(n))}), lambda i: "")
    sql = "SELECT _i, _line, NULL AS _skip, NULL AS _reject, ip__ip AS ip, ip__ip_ok AS ok FROM r"
    out = tabular.apply_mapping(tabular.connect(), rows, sql, ReadContext("x"), tabular.Tally(), addresses=("ip",))
    assert out["ip"].to_pylist() == ["10.0.0.1", "10.0.0.1", "fe80::1%eth0", "10.0.0.1", None, "10.0.0.256",
                                     "10.0.0.1", "not-an-ip", None]
    assert out["ok"].to_pylist() == [True, True, True, True, None, False, True, False, None]
