"""Raw CEF lines (`CEF:0|vendor|product|version|id|name|severity|key=value ...`), alone or behind an
RFC 3164 (`<134>Nov 27 12:00:00 fw01 CEF:0|...`) or RFC 5424 (`<134>1 2024-11-27T12:00:00Z fw01 ...`)
syslog header, as a firewall, proxy or syslog collector writes them.

Each line is split in Python (CEF is not a format a columnar parser knows); the values are then
renamed to Sentinel's CommonSecurityLog columns (Microsoft's CEF key mapping) and go through the same
SQL as `commonsecuritylog`, so both give identical rows for the same event. See that module for the
mapping decisions. CEF specifics:
- Escapes: `\\|` and `\\\\` in header fields; `\\=`, `\\\\`, `\\n`, `\\r` in extension values (any other
  backslash is kept as written). A value runs until the next ` key=`, so it may contain spaces.
- Times: `start` (connection start), else `rt` (event time), else the syslog header's time; each as
  epoch milliseconds or `MMM dd [yyyy] HH:mm:ss[.SSS] [zone]`, naive ones in `dtz` when given. A
  date without a year takes the year that puts it at most a day after the file's modification time.
- Full key names (`sourceAddress`, `bytesIn`, ...) are read like the short ones. The syslog host is
  CommonSecurityLog's `Computer`; `dvchost` its DeviceName (neither is a conn `host`: they name the
  reporting device). `cs1`..`cs6` are read with their labels; one labelled as a TLS SNI / server
  name fills DestinationHostName when `dhost` is absent, and `c6a2` / `c6a3` (source / destination
  IPv6 by convention) stand in for a missing `src` / `dst`.

Rejected: lines without a `CEF:` header or with fewer than 7 header fields, and rows the SQL rejects.
Blank lines are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from bothunt.sources import tabular
from bothunt.sources.base import Batch, ReadContext, Source, iter_chunks
from bothunt.sources.commonsecuritylog import FIELDS, map_rows

_FIELD = r"((?:[^|\\]|\\.)*)\|"
_HEADER = re.compile(r"CEF:\s*(\d+)\|" + _FIELD * 6 + r"(.*)$", re.S)
_PAIR_GAP = re.compile(r"\s+(?=[\w.\-\[\]]+=)")  # the blanks before each `key=`
_HEADER_ESC = re.compile(r"\\([\\|])")
_EXT_ESC = re.compile(r"\\([\\=nr])")
_EXT_UNESC = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}
_SYSLOG = (
    re.compile(r"^(?:<\d{1,3}>)?\d{1,2} (\S+) (\S+)"),  # RFC 5424: VERSION TIMESTAMP HOSTNAME
    re.compile(r"^(?:<\d{1,3}>)?([A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) (\S+)"),  # RFC 3164
    re.compile(r"^(?:<\d{1,3}>)?(\d{4}-\d{2}-\d{2}T\S+) (\S+)"),  # RFC 3339 stamp, no version
)
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
_LABELLED = {f"cs{n}" for n in range(1, 7)} | {"c6a2", "c6a3"}
_SNI_LABELS = re.compile(r"sni|server ?name|tls ?host", re.I)
COLUMNS = (*dict.fromkeys([*HEADER_COLUMNS, *KEYS.values(), *FIELDS]),)


class CefError(ValueError):
    """A line that is not CEF; the message is the reject reason."""


def parse(line: str) -> tuple[list[str], dict[str, str], str]:
    """Split one CEF line into (header fields after the version, extension dict, syslog prefix).
    Header fields are vendor, product, version, signature id, name, severity."""
    at = line.find("CEF:")
    if at < 0:
        raise CefError("no CEF header (CEF:version|vendor|...)")
    parts = line[at + 4:].split("|", 7)
    if len(parts) == 8 and not any("\\" in h for h in parts[:7]):
        version, header, ext = parts[0].strip(), parts[1:7], parts[7]
    else:  # escaped pipes or backslashes in the header: split properly
        m = _HEADER.match(line, at)
        if not m:
            raise CefError("CEF header needs 7 '|'-terminated fields")
        version, ext = m.group(1), m.group(8)
        header = [_HEADER_ESC.sub(r"\1", h) for h in m.groups()[1:7]]
    if not version.isdigit():
        raise CefError(f"bad CEF version {version[:20]!r}")
    return header, extension(ext), line[:at]


def extension(text: str) -> dict[str, str]:
    """CEF extension `k1=v1 k2=v two` -> {"k1": "v1", "k2": "v two"}, unescaped."""
    out: dict[str, str] = {}
    for pair in _PAIR_GAP.split(text.strip()):
        key, eq, value = pair.partition("=")
        if eq:
            out[key] = _EXT_ESC.sub(_unescape, value) if "\\" in value else value
    return out


def _unescape(m: re.Match[str]) -> str:
    return _EXT_UNESC[m.group(1)]


def _syslog(prefix: str) -> tuple[str | None, str | None]:
    """(timestamp text, host) of a syslog header in front of the CEF part."""
    prefix = prefix.strip()
    for rx in _SYSLOG:
        m = rx.match(prefix)
        if m:
            ts, host = m.group(1), m.group(2)
            return (None if ts == "-" else ts), (None if host in ("-", "CEF:") else host)
    return None, None


def _labelled(ext: dict[str, str]) -> dict[str, str]:
    """Values that only the label of a custom field identifies."""
    out: dict[str, str] = {}
    for key in _LABELLED & ext.keys():
        label = ext.get(f"{key}Label", "")
        if key.startswith("cs") and _SNI_LABELS.search(label):
            out["DestinationHostName"] = ext[key]
        elif key == "c6a2" and (not label or "source" in label.lower()):
            out["SourceIP"] = ext[key]
        elif key == "c6a3" and (not label or "dest" in label.lower()):
            out["DestinationIP"] = ext[key]
    return out


def _rows(first_line: int, chunk: bytes, ctx: ReadContext) -> tabular.Rows | None:
    lines = chunk.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    n = len(lines)
    cols: dict[str, list[str | None]] = {c: [None] * n for c in COLUMNS}
    head_cols = [cols[c] for c in HEADER_COLUMNS]
    keys_get, seen = KEYS.get, set()
    gen, computer = cols["TimeGenerated"], cols["Computer"]
    line_nos = np.empty(n, np.int64)
    raws: list[str] = []
    j = 0
    for k, text in enumerate(lines):
        try:
            header, ext, prefix = parse(text)
        except CefError as exc:
            if text.strip():
                ctx.reject(first_line + k, str(exc), text)
            continue
        for col, value in zip(head_cols, header, strict=True):
            col[j] = value
        if not _LABELLED.isdisjoint(ext):
            for name, value in _labelled(ext).items():
                cols[name][j] = value
        for key, value in ext.items():
            name = keys_get(key)
            if name is not None and value:
                cols[name][j] = value
        seen.update(ext)
        if prefix:
            gen[j], computer[j] = _syslog(prefix)
        line_nos[j] = first_line + k
        raws.append(text)
        j += 1
    if j == 0:
        return None
    used = {KEYS[k] for k in seen if k in KEYS} | set(HEADER_COLUMNS) | {"TimeGenerated", "Computer",
                                                                        "DestinationHostName", "SourceIP",
                                                                        "DestinationIP"}
    data = {c: pa.array(v[:j], pa.string()) if c in used else pa.nulls(j, pa.string()) for c, v in cols.items()}
    data["_line"] = pa.array(line_nos[:j])
    data["_time"] = data["_category"] = pa.nulls(j, pa.string())
    data["_i"] = pa.array(np.arange(j, dtype=np.int64))
    return tabular.Rows(pa.table(data), raws.__getitem__)


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
