"""The columnar CEF splitter on what a per-line parser gets right by construction and a chunk-wide one
can get wrong: escapes at the edges of values, blanks, escaped header pipes, the line numbers of rejects
among good and blank lines, bad UTF-8, chunk boundaries, and the rules for repeated keys and labelled
custom fields. A small per-line reference parser written from the module's documented rules checks
`parse` on random lines."""

from __future__ import annotations

import functools
import os
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from bothunt.schema import conform
from bothunt.sources import base, cef
from bothunt.sources.base import ReadContext
from bothunt.sources.cef import BLANKS, CefError, CefSource, parse

HEAD = "CEF:0|V|P|1|1|n|1|"
CONN = "rt=1732708800000 src=10.0.0.5 dst=10.0.0.6"  # the least a line needs to become a conn row
NO_HEADER = "no CEF header (CEF:version|vendor|...)"
SHORT = "CEF header needs 7 '|'-terminated fields"


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    stamp = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def read(path: Path) -> tuple[list[dict], list[tuple]]:
    rejects: list[tuple] = []
    ctx = ReadContext(str(path), reject_fn=lambda line, reason, raw: rejects.append((line, reason, raw)))
    batches = [conform(b.data, b.table) for b in CefSource().read(path, ctx)]
    return (pa.concat_tables(batches).to_pylist() if batches else []), rejects


def one_row(tmp_path: Path, ext: str) -> dict:
    rows, rejects = read(write(tmp_path / "one.cef", (HEAD + ext + "\n").encode()))
    assert rejects == [] and len(rows) == 1
    return rows[0]


def test_escapes_at_the_edges_of_values():
    _, ext, _ = parse(HEAD + r"act=a\\ dst=10.0.0.6 msg=\\=x proc=\=start odd=x\ tail=ends with\\")
    assert ext == {"act": "a\\", "dst": "10.0.0.6", "msg": "\\=x", "proc": "=start", "odd": "x\\",
                   "tail": "ends with\\"}


def test_escaped_values_reach_the_columns(tmp_path):
    lines = [rf"{HEAD}{CONN} act=a\\ sproc=C:\\new\n.exe suser=x\=y", f"{HEAD}{CONN} act=allow sproc=plain suser=bob"]
    rows, rejects = read(write(tmp_path / "esc.cef", ("\n".join(lines) + "\n").encode()))
    assert rejects == []
    assert [(r["action"], r["process"], r["user"]) for r in rows] == [("a\\", "C:\\new\n.exe", "x=y"),
                                                                     ("allow", "plain", "bob")]


def test_an_escaped_backslash_before_n_is_not_a_newline():
    _, ext, _ = parse(HEAD + r"a=1\\n2 b=1\n2 c=\\\n d=\\\\r e=\r f=\t")
    assert ext == {"a": "1\\n2", "b": "1\n2", "c": "\\\n", "d": "\\\\r", "e": "\r", "f": "\\t"}


def test_equals_signs_inside_values():
    _, ext, _ = parse(HEAD + r"request=http://x/?a\=1&b=2 q=a=b cs1=x\= msg=pad QUJDRA= dst=10.0.0.6")
    # An unescaped ` word=` starts a pair, whatever the writer meant (base64 padding, here).
    assert ext == {"request": "http://x/?a=1&b=2", "q": "a=b", "cs1": "x=", "msg": "pad", "QUJDRA": "",
                   "dst": "10.0.0.6"}


def test_values_keep_inner_blanks_and_pairs_split_on_any_ascii_blank_run():
    _, ext, _ = parse(HEAD + "  msg=two  spaces\tand tab  act=allow\x0bdst=10.0.0.6\x1cdpt=443 \t\r")
    assert ext == {"msg": "two  spaces\tand tab", "act": "allow", "dst": "10.0.0.6", "dpt": "443"}


def test_padding_of_any_length(tmp_path):
    pad = " " * 40
    _, ext, _ = parse(f"{HEAD}{pad}act=allow{pad}msg=a{pad}b\t{pad}dpt=443{pad}\r")
    assert ext == {"act": "allow", "msg": f"a{pad}b", "dpt": "443"}
    assert parse(f"{HEAD}{pad}") == (["V", "P", "1", "1", "n", "1"], {}, "")
    rows, rejects = read(write(tmp_path / "pad.cef", f"{pad}\n{HEAD}{CONN}{pad}dpt=1{pad}\n{pad}x\n".encode()))
    assert [r["dst_port"] for r in rows] == [1]
    assert rejects == [(3, NO_HEADER, f"{pad}x")]


def test_non_ascii_characters_neither_separate_nor_start_keys(tmp_path):
    _, ext, _ = parse(HEAD + "msg=a\xa0b=c d=1 note=x straße=2 é=3")
    assert ext == {"msg": "a\xa0b=c", "d": "1", "note": "x straße=2 é=3"}
    # Nor do they end the syslog host (Computer, seen here in the uid).
    rows, _ = read(write(tmp_path / "h.cef", f"<134>Nov 27 12:00:00 fw01\xa0b {HEAD}{CONN} externalId=7\n".encode()))
    assert [r["uid"] for r in rows] == ["fw01\xa0b:7"]


def test_header_with_escaped_pipes_and_backslashes():
    header, ext, prefix = parse(r"<13>Nov  7 01:02:03 h CEF:0|Sec\|Corp|Fire\\Wall|1\\|a\|b\\|n|5|src=10.0.0.5")
    assert header == ["Sec|Corp", "Fire\\Wall", "1\\", "a|b\\", "n", "5"]
    assert ext == {"src": "10.0.0.5"}
    assert prefix == "<13>Nov  7 01:02:03 h "
    # An escaped pipe does not end a field: six of them leave the header short.
    with pytest.raises(CefError, match=re.escape(SHORT)):
        parse(r"CEF:0|a\|b\|c\|d\|e\|f\|g|x=1")
    # The version is checked the same way with or without escapes in the header.
    with pytest.raises(CefError, match=re.escape("bad CEF version 'x'")):
        parse(r"CEF: x |a\|b|P|1|1|n|1|src=10.0.0.5")


def test_rejects_keep_their_line_numbers_among_good_and_blank_lines(tmp_path, monkeypatch):
    lines = [
        f"{HEAD}{CONN} dpt=1",
        "",
        "not cef",
        "   \t",
        f"<134>Nov 27 12:00:00 fw01 {HEAD}{CONN} dpt=2",
        "CEF:0|V|P|1",
        "\u3000",  # a Unicode blank line is blank too
        f"CEF:1.0|V|P|1|1|n|1|{CONN}",
        f"{HEAD}{CONN} dpt=3\r",
        rf"CEF:x|a\|b|P|1|1|n|1|{CONN}",
        "\x0c",
    ]
    path = write(tmp_path / "mixed.cef", ("\n".join(lines) + "\n").encode())
    expected = [(3, NO_HEADER, "not cef"), (6, SHORT, "CEF:0|V|P|1"),
                (8, "bad CEF version '1.0'", lines[7]), (10, "bad CEF version 'x'", lines[9])]
    rows, rejects = read(path)
    assert rejects == expected
    assert [(r["dst_port"], r["src_ip"]) for r in rows] == [(1, "10.0.0.5"), (2, "10.0.0.5"), (3, "10.0.0.5")]
    # One line per chunk, and lines cut at every possible place: the same rows and rejects.
    for size in (1, 7, 64):
        monkeypatch.setattr(cef, "iter_chunks", functools.partial(base.iter_chunks, size=size))
        assert read(path) == (rows, expected)


def test_invalid_utf8_is_read_as_replacement_characters(tmp_path):
    data = (f"{HEAD}{CONN} sproc=caf".encode() + b"\xe9.exe\n" + b"\xff\xfe not cef\n"
            + f"{HEAD}{CONN} sproc=ok.exe\n".encode())
    rows, rejects = read(write(tmp_path / "bad.cef", data))
    assert [r["process"] for r in rows] == ["caf\ufffd.exe", "ok.exe"]
    assert rejects == [(2, NO_HEADER, "\ufffd\ufffd not cef")]


def test_a_chunk_of_only_bad_or_blank_lines(tmp_path):
    rows, rejects = read(write(tmp_path / "bad.cef", b"one\n\nCEF:0|a|b\r\n  \nCEF:\n"))
    assert rows == []
    assert rejects == [(1, NO_HEADER, "one"), (3, SHORT, "CEF:0|a|b\r"), (5, SHORT, "CEF:")]
    assert read(write(tmp_path / "blank.cef", b"\n \n\t\r\n")) == ([], [])


def test_repeated_keys_give_the_last_non_empty_value(tmp_path):
    row = one_row(tmp_path, "rt=1732708800000 sourceAddress=10.0.0.9 src=10.0.0.5 src= dst=10.0.0.6 "
                            "dpt=80 destinationPort=443 act=allow act= suser=a sourceUserName=b suser=c")
    assert (row["src_ip"], row["dst_port"], row["action"], row["user"]) == ("10.0.0.5", 443, "allow", "c")
    # parse() shows the pairs as written: the last one wins, empty or not.
    assert parse(HEAD + "a=1 a=")[1] == {"a": ""}


def test_custom_fields_by_label(tmp_path):
    sni = "cs1Label=TLS SNI cs1=first.example cs4Label=Server Name cs4=second.example cs5Label=sni cs5="
    assert one_row(tmp_path, f"{CONN} {sni}")["server_name"] == "second.example"
    assert one_row(tmp_path, f"{CONN} dhost=dh.example {sni}")["server_name"] == "dh.example"
    assert one_row(tmp_path, f"{CONN} cs2Label=Rule cs2=x.example")["server_name"] is None
    row = one_row(tmp_path, "rt=1732708800000 c6a2Label=Source IPv6 c6a2=2001:DB8::5 c6a3=2001:db8::6")
    assert (row["src_ip"], row["dst_ip"]) == ("2001:db8::5", "2001:db8::6")
    row = one_row(tmp_path, "rt=1732708800000 src=10.0.0.5 c6a2=2001:db8::5 dst=10.0.0.6 c6a3=2001:db8::6")
    assert (row["src_ip"], row["dst_ip"]) == ("10.0.0.5", "10.0.0.6")
    # A source address labelled as the destination is not the source: no source, not a connection.
    rejects: list[tuple] = []
    ctx = ReadContext("x", reject_fn=lambda *r: rejects.append(r))
    path = write(tmp_path / "dest.cef", f"{HEAD}rt=1732708800000 c6a2Label=Destination c6a2=2001:db8::5 "
                                        f"dst=10.0.0.6\n".encode())
    assert list(CefSource().read(path, ctx)) == [] and rejects == [] and ctx.skipped == 1


def test_blanks_are_what_python_calls_whitespace_in_ascii():
    assert "".join(c for c in map(chr, range(128)) if c.isspace()) == BLANKS


# A per-line reference for `parse`, written from the module docstring's rules with Python's re.
_BL = "[\t-\r\x1c ]"
_FIELD = r"((?:[^|\\]|\\.)*)\|"
_REF_HEADER = re.compile(_FIELD * 7 + "(.*)", re.S)
_REF_GAP = re.compile(_BL + r"+(?=[A-Za-z0-9_.\-\[\]]+=)")
_REF_ESC = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}


def reference_parse(line: str) -> tuple[list[str], dict[str, str], str]:
    at = line.find("CEF:")
    if at < 0:
        raise CefError(NO_HEADER)
    m = _REF_HEADER.match(line, at + 4)
    if not m:
        raise CefError(SHORT)
    version = m.group(1).strip(BLANKS)
    if not re.fullmatch("[0-9]+", version):
        raise CefError(f"bad CEF version {version[:20]!r}")
    header = [re.sub(r"\\([\\|])", r"\1", f) for f in m.groups()[1:7]]
    ext = {}
    for piece in _REF_GAP.split(m.group(8).strip(BLANKS)):
        key, eq, value = piece.partition("=")
        if eq:
            ext[key] = re.sub(r"\\([\\=nr])", lambda e: _REF_ESC[e.group(1)], value)
    return header, ext, line[:at]


ATOMS = [" ", "  ", "\t", "\x0b", "\x1c", "\r", "=", "|", "\\", "\\\\", "\\=", "\\n", "\\|", "n", "r", "a", "Z",
         "0", ".", "-", "[", "]", ":", "/", "_", "é", "\xa0", "CEF:", "src", "act=", "cs1Label="]


def test_parse_agrees_with_a_per_line_reference_on_random_lines():
    rng = random.Random(7)

    def text(n: int) -> str:
        return "".join(rng.choice(ATOMS) for _ in range(rng.randint(0, n)))

    for _ in range(600):
        fields = "|".join(text(3) for _ in range(rng.choice([3, 6, 6, 6, 6, 7])))
        pairs = " ".join(f"{rng.choice(['src', 'msg', 'a.b', 'x[1]', text(2)])}={text(6)}" for _ in range(4))
        version = rng.choice(["0", "0", "0", "1", " 1 ", "x", "", text(2)])
        line = f"{text(3)}CEF:{version}|{fields}|{text(2)}{pairs}{text(2)}"
        try:
            expected = reference_parse(line)
        except CefError as exc:
            with pytest.raises(CefError, match=re.escape(str(exc))):
                parse(line)
        else:
            assert parse(line) == expected, line
