"""What a record export's head shows: its layout (CSV, JSON lines or a JSON document) and its column
names, with the header-name rules the CSV reader applies as well.

Separate from the readers: the sources' `sniff` and the near-miss hints look at a file's first bytes
only, and every reader starts from the same answers (which reader, which header names).
"""

from __future__ import annotations

import csv
import io
import json
import re

BOM = b"\xef\xbb\xbf"
_UNIT_SUFFIX = re.compile(r"\s*\[([^\]]*)\]\s*$")
_JSON_KEY = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]*)"\s*:')


def strip_head(head: bytes) -> bytes:
    """`head` without a UTF-8 byte order mark (spreadsheet exports start with one)."""
    return head[3:] if head.startswith(BOM) else head


def layout(head: bytes) -> str:
    """'csv', 'jsonl' (one JSON value per line) or 'json' (a document to stream with DuckDB)."""
    text = strip_head(head).lstrip()
    if text[:1] not in (b"{", b"["):
        return "csv"
    lines = text.split(b"\n")
    complete = lines[:-1] if len(lines) > 1 else []  # the last piece may be cut by the sniff window
    for line in complete:
        body = _json_line_body(line)
        if body is None:
            continue
        return "jsonl" if _valid_json(body) else "json"
    return "json"


def _json_line_body(line: bytes) -> bytes | None:
    """The JSON value on one line without array punctuation; None for punctuation-only lines.
    Mirrors the SQL in `tabular_json._jsonl_sql` so sniffing and reading agree."""
    s = line.strip().rstrip(b",").strip()
    if s in (b"", b"[", b"]"):
        return None
    if s.startswith(b"[") and not _valid_json(s):
        s = s[1:].strip()
    if s.endswith(b"]") and not _valid_json(s):
        s = s[:-1].rstrip().rstrip(b",")
    return s


def _valid_json(s: bytes) -> bool:
    """Whether `s` is one JSON value. A byte that is not UTF-8 is the reader's to replace (`utf8_safe`),
    not a sign of another layout: json.loads would reject the line for it."""
    try:
        json.loads(s.decode("utf-8", errors="replace"))
    except ValueError:
        return False
    return True


def head_columns(head: bytes) -> set[str]:
    """Column names a file's head shows: the CSV header, or every key seen in the JSON head."""
    text = strip_head(head)
    if layout(head) != "csv":
        return {k.decode() for k in _JSON_KEY.findall(text)}
    first = text.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    return {clean_name(n)[0] for n in header_fields(first)}


def header_fields(line: str, delim: str | None = None) -> list[str]:
    """The raw column names of a CSV header line (quotes handled), split on `delim` or the likeliest one."""
    delim = delim or header_delimiter(line)
    return next(csv.reader(io.StringIO(line.rstrip("\r\n")), delimiter=delim), [])


def header_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def clean_name(name: str) -> tuple[str, str | None]:
    """Column name without quotes, BOM and unit suffix; the suffix is returned too ('UTC')."""
    name = name.strip().strip('"').lstrip("\ufeff").strip()
    m = _UNIT_SUFFIX.search(name)
    if m:
        return name[: m.start()], m.group(1).strip()
    return name, None

