"""Raw CEF lines (`CEF:0|vendor|product|version|id|name|severity|key=value ...`), alone or behind an
RFC 3164 (`<134>Nov 27 12:00:00 fw01 CEF:0|...`) or RFC 5424 (`<134>1 2024-11-27T12:00:00Z fw01 ...`)
syslog header, as a firewall, proxy or syslog collector writes them.

A chunk of lines is cut into header fields and extension pairs as columns, with numpy and Arrow
(`cef_split`: CEF is not a format a columnar parser knows). The values are then renamed to Sentinel's
CommonSecurityLog columns (Microsoft's CEF key mapping) and go through the same SQL as
`commonsecuritylog`, so both give identical rows for the same event. See that module for the mapping
decisions. CEF specifics:
- Header: the first seven `|` after `CEF:` that no backslash escapes end the version and the six
  fields; `\\|` and `\\\\` in header fields are unescaped. The version, blanks around it aside, must be
  ASCII digits ("bad CEF version" otherwise, escapes in the header or not).
- Extension: a value runs until the next ` key=`: blanks, then key characters, then `=`, so values may
  contain spaces and unescaped `=`. `\\=`, `\\\\`, `\\n`, `\\r` in values are unescaped left to right
  (`\\\\n` is a backslash and `n`); any other backslash is kept as written.
- Blanks, here and in the syslog header, are ASCII whitespace (space, tab, CR, LF, VT, FF, 0x1c-0x1f) and
  key characters ASCII letters, digits and `_.-[]`: a non-ASCII character neither separates pairs nor
  belongs to a key. (A line of Unicode blanks is still a blank line.)
- A column takes the last non-empty value among its keys in the line (`src=a src=` is `a`, and so is
  `sourceAddress=b src=a`); labels of custom fields likewise.
- Times: `start` (connection start), else `rt` (event time), else the syslog header's time; each as
  epoch milliseconds or `MMM dd [yyyy] HH:mm:ss[.SSS] [zone]`, naive ones in `dtz` when given. A
  date without a year takes the year that puts it at most a day after the file's modification time.
- Full key names (`sourceAddress`, `bytesIn`, ...) are read like the short ones. The syslog host is
  CommonSecurityLog's `Computer`; `dvchost` its DeviceName (neither is a conn `host`: they name the
  reporting device). `cs1`..`cs6` are read with their labels; one labelled as a TLS SNI / server
  name fills DestinationHostName when `dhost` is absent (the last such field in the line when there
  are several), and `c6a2` / `c6a3` (source / destination IPv6 by convention) stand in for a missing
  `src` / `dst`.

Rejected: lines without a `CEF:` header, with fewer than 7 header fields or a bad version, and rows the
SQL rejects. Blank lines are ignored. Invalid UTF-8 is read as U+FFFD.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.sources import tabular
from bothunt.sources.base import Batch, ReadContext, Source, iter_chunks
from bothunt.sources.cef_split import BLANKS, NO_HEADER, Split, split
from bothunt.sources.commonsecuritylog import FIELDS, map_rows

_S = r"[^\t-\r\x1c- ]"  # not a blank
# RFC 5424 (VERSION TIMESTAMP HOSTNAME), RFC 3164, or an RFC 3339 stamp without version: they start with
# 1-2 digits and a space, a capital, 4 digits and `-`, so exactly one (t, h) pair of groups can match.
_SYSLOG = (rf"^(?:<[0-9]{{1,3}}>)?(?:[0-9]{{1,2}} (?P<t1>{_S}+) (?P<h1>{_S}+)"
           rf"|(?P<t2>[A-Z][a-z]{{2}} +[0-9]{{1,2}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(?:\.[0-9]+)?) (?P<h2>{_S}+)"
           rf"|(?P<t3>[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T{_S}+) (?P<h3>{_S}+))")
_SNIFF = re.compile(rb"^(?:[^\n]{0,300}?[\s>:])?CEF:\s*\d+\|[^\n|]*\|", re.M)

# CEF header positions -> CommonSecurityLog columns.
HEADER_COLUMNS = ("DeviceVendor", "DeviceProduct", "DeviceVersion", "DeviceEventClassID", "Activity",
                  "LogSeverity")
# CEF extension keys (short and full names) -> CommonSecurityLog columns, from Microsoft's mapping.
KEYS: dict[str, str] = {}
for _col, _names in {
    "SourceIP": "src sourceAddress", "DestinationIP": "dst destinationAddress",
    "SourcePort": "spt sourcePort", "DestinationPort": "dpt destinationPort",
    "Protocol": "proto transportProtocol", "DeviceAction": "act deviceAction",
    "ApplicationProtocol": "app applicationProtocol", "ReceivedBytes": "in bytesIn",
    "SentBytes": "out bytesOut", "ReceiptTime": "rt receiptTime", "StartTime": "start startTime",
    "EndTime": "end endTime", "SourceUserName": "suser sourceUserName",
    "SourceNTDomain": "sntdom sourceNtDomain", "SourceHostName": "shost sourceHostName",
    "DestinationHostName": "dhost destinationHostName", "RequestURL": "request requestUrl",
    "EventOutcome": "outcome eventOutcome", "ExtID": "externalId", "DeviceName": "dvchost deviceHostName",
    "SourceProcessName": "sproc sourceProcessName", "SourceProcessId": "spid sourceProcessId",
    "DeviceTimeZone": "dtz deviceTimeZone",
}.items():
    for _name in _names.split():
        KEYS[_name] = _col
_LABELLED = (*(f"cs{n}" for n in range(1, 7)), "c6a2", "c6a3")
_SNI_LABELS = "sni|server ?name|tls ?host"
COLUMNS = (*dict.fromkeys([*HEADER_COLUMNS, *KEYS.values(), *FIELDS]),)

# Every key read, and the slot (column, custom field or label) its value goes to.
_SLOTS = (*dict.fromkeys(KEYS.values()), *_LABELLED, *(f"{k}Label" for k in _LABELLED))
_KEY_NAMES = pa.array([*KEYS, *_LABELLED, *(f"{k}Label" for k in _LABELLED)])
_SLOT_OF = np.array([_SLOTS.index(KEYS.get(k, k)) for k in _KEY_NAMES.to_pylist()], dtype=np.int64)
_COLUMN_SLOTS = frozenset(KEYS.values())
_NULL = pa.scalar(None, pa.string())


class CefError(ValueError):
    """A line that is not CEF; the message is the reject reason."""


def _syslog(s: Split) -> tuple[pa.Array, pa.Array]:
    """(timestamp text, host) of the syslog header before `CEF:`, per accepted line. Headers repeat
    (one per second and host), so each distinct one is matched once."""
    prefixes = s.prefix().dictionary_encode()
    m = pc.extract_regex(pc.utf8_trim(prefixes.dictionary, BLANKS), _SYSLOG)
    ts = pc.binary_join_element_wise(*(pc.struct_field(m, [k]) for k in (0, 2, 4)), "")
    host = pc.binary_join_element_wise(*(pc.struct_field(m, [k]) for k in (1, 3, 5)), "")
    ts = pc.if_else(pc.equal(ts, "-"), _NULL, ts)
    host = pc.if_else(pc.is_in(host, pa.array(["-", "CEF:"])), _NULL, host)
    return ts.take(prefixes.indices), host.take(prefixes.indices)


def _extension(s: Split) -> dict[str, pa.Array]:
    """CommonSecurityLog columns from the extension: per line, the last non-empty value among a
    column's keys, else a custom field whose label names the column."""
    n = len(s.ok)
    ix = pc.fill_null(pc.index_in(s.key_names, value_set=_KEY_NAMES), -1).to_numpy()
    slot = np.where(ix >= 0, _SLOT_OF[ix], -1)[s.key_code]
    known = np.flatnonzero((slot >= 0) & (s.value_end > s.eq + 1))
    slot = slot[known]
    present = np.flatnonzero(np.bincount(slot, minlength=len(_SLOTS)))
    column = np.zeros(len(_SLOTS), dtype=np.int64)
    column[present] = np.arange(len(present))
    # A line's pairs are numbered in line order, so its last value for a slot has the highest number.
    pick = np.full(n * len(present), -1, dtype=np.int64)
    np.maximum.at(pick, s.pair_row[known] * len(present) + column[slot], known)
    pick = pick.reshape(n, len(present))
    picked = {_SLOTS[slot]: pick[:, k] for k, slot in enumerate(present)}

    def says(key: str, check: Callable[[pa.Array], pa.Array]) -> np.ndarray:
        """The value index of custom field `key` where its label passes `check`, else -1."""
        label = s.values(picked.get(f"{key}Label", np.full(n, -1)))
        return np.where(pc.fill_null(check(label), False).to_numpy(zero_copy_only=False), picked[key], -1)

    fills: dict[str, list[np.ndarray]] = {"DestinationHostName": [], "SourceIP": [], "DestinationIP": []}
    for key in _LABELLED[:6]:
        if key in picked:
            fills["DestinationHostName"].append(
                says(key, lambda label: pc.match_substring_regex(label, _SNI_LABELS, ignore_case=True)))
    for key, name, word in (("c6a2", "SourceIP", "source"), ("c6a3", "DestinationIP", "dest")):
        if key in picked:
            fills[name].append(says(key, lambda label, word=word: pc.or_kleene(
                pc.is_null(label), pc.match_substring(pc.utf8_lower(label), word))))
    for name, candidates in fills.items():
        if candidates:
            own = picked.get(name, np.full(n, -1))
            picked[name] = np.where(own >= 0, own, np.maximum.reduce(candidates))
    return {name: s.values(index) for name, index in picked.items()
            if name in _COLUMN_SLOTS and (index >= 0).any()}


def _rows(first_line: int, chunk: bytes, ctx: ReadContext) -> tabular.Rows | None:
    s = split(chunk)
    for line, reason, text in s.rejects:
        ctx.reject(first_line + line, reason, text)
    n = len(s.ok)
    if n == 0:
        return None
    data: dict[str, pa.Array] = dict(zip(HEADER_COLUMNS, s.header(), strict=True))
    data["TimeGenerated"], data["Computer"] = _syslog(s)
    data.update(_extension(s))
    data = {c: data[c] if c in data else pa.nulls(n, pa.string()) for c in COLUMNS}
    data["_line"] = pa.array(first_line + s.ok)
    data["_time"] = data["_category"] = pa.nulls(n, pa.string())
    data["_i"] = pa.array(np.arange(n, dtype=np.int64))
    return tabular.Rows(pa.table(data), lambda i: s.text(int(s.ok[i])))


def parse(line: str) -> tuple[list[str], dict[str, str], str]:
    """One CEF line split as `CefSource` splits it: (header fields after the version, extension dict,
    syslog prefix). Header fields are vendor, product, version, signature id, name, severity; a key
    given twice keeps its last value. Raises CefError with the reject reason."""
    s = split(line.encode() + b"\n")
    if not len(s.ok):
        raise CefError(s.rejects[0][1] if s.rejects else NO_HEADER)
    header = [field[0].as_py() for field in s.header()]
    ext = dict(zip(s.keys().to_pylist(), s.values(np.arange(len(s.eq))).to_pylist(), strict=True))
    return header, ext, s.prefix()[0].as_py()


class CefSource(Source):
    id = "cef"
    description = "CEF lines (ArcSight Common Event Format), with or without a syslog header"
    tables = ("conn",)

    def sniff(self, head: bytes, path: Path) -> int:
        lines = [ln for ln in tabular.strip_head(head).split(b"\n")[:-1] or [head] if ln.strip()]
        if not lines:
            return 0
        hits = sum(1 for ln in lines if _SNIFF.match(ln))
        if hits == 0:
            return 0
        return 90 if hits * 2 >= len(lines) else 50

    def read(self, path: Path, ctx: ReadContext) -> Iterator[Batch]:
        con = tabular.connect()
        tally = tabular.Tally()
        try:
            for first_line, chunk in iter_chunks(path, ctx):
                rows = _rows(first_line, chunk, ctx)
                if rows is None:
                    continue
                table = map_rows(con, rows, self.id, path, ctx, tally)
                if table.num_rows:
                    yield Batch("conn", table)
        finally:
            tally.flush(ctx)
            con.close()
