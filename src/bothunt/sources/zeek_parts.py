"""Pieces shared by the Zeek TSV and JSON readers.

A reader turns a stretch of a log into a `Part`: an Arrow table under Zeek's own column names, plus a
`Lines` index that can say, for any row, which line of the decompressed file it came from and what
that line said. The index is built lazily (numpy over the bytes) and only when a row is rejected, so
the fast path never pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.sources.base import ReadContext

# Standard Zeek log names, used to tell which log a file is from its name (`conn.log`,
# `labeled-conn.log`, `conn.16:00:00-17:00:00.log.gz`, `ssl.log.labeled`, ...).
ZEEK_LOGS = frozenset((
    "conn", "dns", "http", "ssl", "x509", "files", "notice", "weird", "dhcp", "ssh", "smtp", "ftp", "dpd",
    "known_hosts", "known_services", "known_certs", "software", "syslog", "tunnel", "pe", "ntp", "snmp",
    "sip", "rdp", "smb_files", "smb_mapping", "dce_rpc", "kerberos", "ntlm", "radius", "irc", "mysql",
    "modbus", "dnp3", "socks", "capture_loss", "stats", "loaded_scripts", "packet_filter", "reporter",
    "intel", "signatures", "conn_long", "ocsp", "analyzer", "quic", "traceroute", "notice_alarm",
    "netcontrol", "openflow", "unified2", "vpn",
))
_NAME_TOKENS = re.compile(r"[^a-z0-9_]+")

ARROW_OF_ZEEK = {"time": pa.float64(), "interval": pa.float64(), "double": pa.float64(),
                 "count": pa.int64(), "int": pa.int64(), "port": pa.int64()}
# Zeek types of the numeric fields bothunt reads, for headers without a usable `#types` line.
FIELD_TYPES = {"ts": "time", "duration": "interval", "rtt": "interval", "id.orig_p": "port",
               "id.resp_p": "port", "orig_bytes": "count", "resp_bytes": "count", "orig_pkts": "count",
               "resp_pkts": "count", "trans_depth": "count", "qtype": "count", "rcode": "count"}


def arrow_type(name: str, zeek_type: str | None = None) -> pa.DataType:
    """Arrow type to parse a field as: numbers by their Zeek type, everything else as strings."""
    return ARROW_OF_ZEEK.get(zeek_type or FIELD_TYPES.get(name, "string"), pa.string())


def kind_from_name(name: str) -> str | None:
    for token in _NAME_TOKENS.split(name.lower()):
        if token in ZEEK_LOGS:
            return token
    return None


def kind_from_fields(fields: Sequence[str]) -> str | None:
    """Which log a header (TSV `#fields`) or a record (JSON keys) belongs to, by its telling fields."""
    f = {x.replace("_", ".") if x.startswith("id_") else x for x in fields}
    if "conn_state" in f or {"orig_bytes", "resp_bytes", "duration"} <= f:
        return "conn"
    if "query" in f and ({"qtype_name", "rcode_name", "qtype"} & f):
        return "dns"
    if "server_name" in f and ({"cipher", "version", "established"} & f):
        return "ssl"
    if {"method", "uri"} <= f:
        return "http"
    if {"note", "msg"} <= f:
        return "notice"
    if {"name", "peer"} <= f and "uid" in f:
        return "weird"
    if "fuid" in f and ({"mime_type", "source"} & f):
        return "files"
    if "certificate.subject" in f:
        return "x509"
    return None


class Lines:
    """Maps the rows of a parsed table back to lines of the input (1-based, decompressed file).

    `rows` holds, per table row, the index of its line within `data`; it is None until someone asks,
    and then defaults to "every non-blank line, in order", which is what the parsers keep when no line
    was rejected. Readers that drop or add lines set it explicitly.
    """

    def __init__(self, data: bytes, first_line: int, blank: Callable[[bytes, np.ndarray, np.ndarray],
                                                                      np.ndarray] | None = None) -> None:
        self.data = data
        self.first_line = first_line
        self._blank = blank or _empty_lines
        self._nl: np.ndarray | None = None
        self._starts = np.empty(0, np.int64)
        self.rows: np.ndarray | None = None

    @property
    def ends(self) -> np.ndarray:
        """Offset of the newline that ends each line (`data` always ends with one)."""
        if self._nl is None:
            self._nl = np.flatnonzero(np.frombuffer(self.data, np.uint8) == 10)
            self._starts = np.empty_like(self._nl)
            if len(self._nl):
                self._starts[0] = 0
                self._starts[1:] = self._nl[:-1] + 1
        return self._nl

    @property
    def starts(self) -> np.ndarray:
        self.ends  # noqa: B018 - builds both indexes
        return self._starts

    def nonblank(self) -> np.ndarray:
        starts, ends = self.starts, self.ends
        return np.flatnonzero(~self._blank(self.data, starts, ends))

    def row_lines(self) -> np.ndarray:
        if self.rows is None:
            self.rows = self.nonblank()
        return self.rows

    def keep(self, mask: np.ndarray) -> None:
        self.rows = self.row_lines()[mask]

    def text(self, line_index: int) -> bytes:
        return self.data[int(self.starts[line_index]) : int(self.ends[line_index])].rstrip(b"\r")

    def locate(self, rows: np.ndarray) -> list[tuple[int, bytes]]:
        idx = self.row_lines()
        return [(self.first_line + int(idx[r]), self.text(int(idx[r]))) for r in rows]


def _empty_lines(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    return ends == starts


@dataclass
class Part:
    """One parsed stretch of a Zeek log: its kind (`#path`), rows under Zeek's names, and provenance."""

    kind: str | None
    table: pa.Table | None
    rows: int
    lines: Lines | None = None
    set_separator: str = ","
    empty_field: str = "(empty)"
    dropped: int = field(default=0)

    def drop(self, ctx: ReadContext, mask: pa.Array | pa.ChunkedArray | np.ndarray, reason: str,
             values: pa.Array | pa.ChunkedArray | None = None) -> None:
        """Reject the rows where `mask` is true (null counts as false), with `reason` and the
        offending value, and remove them from the table."""
        self.drop_rules(ctx, [(mask, reason, values)])

    def drop_rules(self, ctx: ReadContext, rules: Sequence[tuple[pa.Array | pa.ChunkedArray | np.ndarray, str,
                                                                 pa.Array | pa.ChunkedArray | None]]) -> None:
        """Like `drop` for several (mask, reason, values) rules at once; a row takes the reason of the
        first rule that matches it. Rejects are reported in line order."""
        assert self.table is not None and self.lines is not None
        gone = np.zeros(self.table.num_rows, bool)
        found: list[tuple[int, str]] = []
        for mask, reason, values in rules:
            m = mask if isinstance(mask, np.ndarray) else pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
            rows = np.flatnonzero(m & ~gone)
            if not len(rows):
                continue
            gone |= m
            shown = values.take(pa.array(rows)).to_pylist() if values is not None else None
            found += [(int(r), reason if shown is None else f"{reason}: {shown[i]!r}") for i, r in enumerate(rows)]
        if not found:
            return
        found.sort()
        for (line, raw), (_, why) in zip(self.lines.locate(np.array([r for r, _ in found])), found, strict=True):
            ctx.reject(line, why, raw)
        self.table = self.table.filter(pa.array(~gone))
        self.lines.keep(~gone)
        self.rows -= len(found)
        self.dropped += len(found)

    def coerce(self, ctx: ReadContext, name: str, target: pa.DataType) -> None:
        """Make column `name` (if present) of type `target`, rejecting rows whose text is no number."""
        assert self.table is not None
        if name not in self.table.column_names or self.table.schema.field(name).type == target:
            return
        col = self.table[name]
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            out, bad = convert_strings(col, target)
        else:
            out, bad = col.cast(target, safe=False).combine_chunks(), np.zeros(len(col), bool)
        self.table = self.table.set_column(self.table.column_names.index(name), name, out)
        self.drop(ctx, bad, f"bad {name} value", values=col.combine_chunks())


# ---------------------------------------------------------------------------------------------------
# Values that failed Arrow's vectorised conversion are converted per distinct value in Python; the
# rows whose value cannot be converted are reported back so the caller can reject them.


def _as_float(text: str) -> float | None:
    # nan and inf pass, as they do in Arrow's own parser: whether a row is kept must not depend on
    # which path converted it. Callers that need finite values (ts) check for themselves.
    try:
        return float(text)
    except ValueError:
        return None


def _as_int(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if -(2**63) <= value < 2**63 else None


def convert_strings(col: pa.ChunkedArray | pa.Array, target: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Cast a string column to `target`; returns the cast column and a mask of rows whose value could
    not be converted (those rows hold null). Vectorised first; per distinct value only if that fails."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    try:
        return col.cast(target), np.zeros(len(col), bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    parse = _as_float if pa.types.is_floating(target) else _as_int
    uniq = pc.unique(col)
    parsed = pa.array([None if v is None else parse(v.strip()) for v in uniq.to_pylist()], target)
    out = pc.take(parsed, pc.index_in(col, value_set=uniq))
    bad = pc.and_(pc.is_valid(col), pc.is_null(out))
    return out, bad.to_numpy(zero_copy_only=False)

