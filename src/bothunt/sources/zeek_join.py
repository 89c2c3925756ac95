"""`conn.server_name` from the ssl.log and http.log beside a conn.log, joined by Zeek's `uid`.

Siblings are the logs in the same directory with the same name apart from the log kind: beside
`conn.log` that is `ssl.log`, `ssl.log.labeled`, `ssl.log.gz`, `http.log`...; beside
`conn.16:00:00-17:00:00.log.gz` it is `ssl.16:00:00-17:00:00.log.gz` (same rotation stamp), never
another hour's file.

Which name a connection gets when its uid appears in several records, best first:

1. the target of an HTTP `CONNECT` through a proxy (the request URI `host:port`, else the Host
   header): the host the proxy actually dialled;
2. the TLS SNI (`ssl.log` `server_name`);
3. the first Host header of a plain HTTP request on the connection.

Names are lower-cased, without port or trailing dot. Everything is vectorised: candidates from all
siblings are concatenated, ordered by rank and position, reduced to the first per uid with an Arrow
group-by, and looked up for each conn batch with `index_in` / `take`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.errors import BothuntError
from bothunt.sources.base import ReadContext
from bothunt.sources.zeek_parts import Part

FIELDS = {"ssl": ("uid", "server_name"), "http": ("uid", "method", "host", "uri")}
_KIND = re.compile(r"(?<![A-Za-z0-9_])(conn|ssl|http)(?![A-Za-z0-9_])")
_NOT_STAMP = re.compile(r"\.(?:log|gz|labeled|json)(?=\.|$)")
RANK_CONNECT, RANK_SNI, RANK_HOST = 0, 1, 2

ReadParts = Callable[[Path, ReadContext, Mapping[str, Sequence[str]]], Iterator[Part]]


def _name_key(name: str) -> tuple[str, str, str] | None:
    """(prefix, kind, rotation stamp) of a log file name, e.g. ("", "conn", ".16:00:00-17:00:00")."""
    m = _KIND.search(name)
    if not m:
        return None
    return name[: m.start()], m.group(1), _NOT_STAMP.sub("", name[m.end() :])


def siblings(conn_path: Path) -> dict[str, list[Path]]:
    """ssl and http logs beside `conn_path` with the same prefix and rotation stamp."""
    key = _name_key(conn_path.name)
    out: dict[str, list[Path]] = {"ssl": [], "http": []}
    if key is None or key[1] != "conn":
        return out
    try:
        entries = sorted(conn_path.parent.iterdir())
    except OSError:
        return out
    for entry in entries:
        k = _name_key(entry.name)
        if k and k[1] in out and (k[0], k[2]) == (key[0], key[2]) and entry.is_file():
            out[k[1]].append(entry)
    return out


def _host_only(names: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Lower-case host name without port, IPv6 brackets or trailing dot."""
    x = pc.utf8_lower(names)
    x = pc.replace_substring_regex(x, r"^\[([^\]]*)\](:\d+)?$", r"\1")
    x = pc.replace_substring_regex(x, r"^([^:]*):\d+$", r"\1")
    return pc.replace_substring_regex(x, r"\.$", "")


def _usable(names: pa.Array) -> pa.Array:
    return pc.and_(pc.is_valid(names), pc.invert(pc.is_in(names, pa.array(["", "-", "(empty)"]))))


def _candidates(kind: str, table: pa.Table, start: int) -> pa.Table:
    n = table.num_rows
    uid = table["uid"]
    if kind == "ssl":
        name = _host_only(table["server_name"])
        rank = pa.array(np.full(n, RANK_SNI, np.int8))
    else:
        connect = pc.fill_null(pc.equal(pc.utf8_upper(table["method"]), "CONNECT"), False)
        host = _host_only(table["host"])
        target = _host_only(table["uri"])
        target = pc.if_else(_usable(target), target, host)
        name = pc.if_else(connect, target, host)
        rank = pc.if_else(connect, pa.scalar(RANK_CONNECT, pa.int8()), pa.scalar(RANK_HOST, pa.int8()))
    cand = pa.table({"uid": uid, "server_name": name, "rank": rank,
                     "order": pa.array(np.arange(start, start + n, dtype=np.int64))})
    return cand.filter(pc.and_(_usable(cand["server_name"]), pc.is_valid(cand["uid"])))


class ServerNames:
    """Built on first use from the conn log's siblings; then names each conn batch by uid."""

    def __init__(self, conn_path: Path, read_parts: ReadParts) -> None:
        self.conn_path = conn_path
        self._read_parts = read_parts
        self._names: pa.Table | None = None
        self._index: _UidIndex | None = None
        self.sources: list[str] = []
        self.rows = 0
        self.named = 0

    def _build(self, ctx: ReadContext) -> pa.Table:
        cands = []
        start = 0
        for kind, paths in siblings(self.conn_path).items():
            for path in paths:
                sub = ReadContext(file=str(path))
                try:
                    for part in self._read_parts(path, sub, {kind: FIELDS[kind]}):
                        if part.kind == kind and part.table is not None and part.table.num_rows:
                            missing = [c for c in FIELDS[kind] if c not in part.table.column_names]
                            if missing:
                                ctx.note(f"{path.name}: no {', '.join(missing)} field; not used for names")
                                break
                            cands.append(_candidates(kind, part.table, start))
                            start += part.table.num_rows
                except (OSError, EOFError, zlib.error, pa.ArrowException, BothuntError) as exc:
                    ctx.note(f"{path.name}: cannot be read for server names ({exc}); rows stay unnamed")
                self.sources.append(path.name)
        schema = pa.schema([("uid", pa.string()), ("server_name", pa.string())])
        if not cands:
            return schema.empty_table()
        table = pa.concat_tables(cands).sort_by([("rank", "ascending"), ("order", "ascending")])
        best = table.group_by("uid", use_threads=False).aggregate([("server_name", "first")])
        return pa.table({"uid": best["uid"], "server_name": best["server_name_first"]}, schema=schema)

    def apply(self, conn: pa.Table, ctx: ReadContext) -> pa.Table:
        if self._names is None:
            self._names = self._build(ctx)
            self._index = _UidIndex(self._names["uid"])
        self.rows += conn.num_rows
        if not self._names.num_rows or "uid" not in conn.column_names:
            return conn
        assert self._index is not None
        names = pc.take(self._names["server_name"], self._index.find(conn["uid"]))
        self.named += len(names) - names.null_count
        if "server_name" in conn.column_names:
            names = pc.coalesce(conn["server_name"], names)
            return conn.set_column(conn.column_names.index("server_name"), "server_name", names)
        return conn.append_column("server_name", names)

    def report(self, ctx: ReadContext) -> None:
        if self.sources:
            ctx.note(f"server_name joined by uid from {', '.join(self.sources)}: "
                     f"{self.named} of {self.rows} conn rows named")


class _UidIndex:
    """uid -> row of the names table, built once per conn log.

    `pc.index_in` hashes its whole value set on every call: with the ssl/http uids of a large log as
    the set, naming each conn batch cost more than parsing it (2.6 s of 7 for a 1M-line JSON conn log).
    Here the uids are made fixed-width byte strings and sorted once; each batch is a binary search."""

    def __init__(self, uids: pa.ChunkedArray | pa.Array) -> None:
        uids = uids.combine_chunks() if isinstance(uids, pa.ChunkedArray) else uids
        self.width = max(1, int(pc.max(pc.binary_length(uids)).as_py() or 0))
        keys = self._fixed(uids)
        self.order = np.argsort(keys, kind="stable")
        self.sorted = keys[self.order]

    def _fixed(self, uids: pa.Array) -> np.ndarray:
        padded = pc.binary_join_element_wise(pc.fill_null(uids, ""), pa.scalar("\0" * self.width), "")
        cut = pc.binary_slice(padded.cast(pa.binary()), 0, self.width)
        buf = cut.cast(pa.binary(self.width)).buffers()[1]
        return np.frombuffer(buf, dtype=f"S{self.width}", count=len(uids), offset=cut.offset * self.width)

    def find(self, uids: pa.ChunkedArray | pa.Array) -> pa.Array:
        """Row in the names table of each uid (null where absent, null or longer than every known uid)."""
        uids = uids.combine_chunks() if isinstance(uids, pa.ChunkedArray) else uids
        keys = self._fixed(uids)
        pos = np.minimum(np.searchsorted(self.sorted, keys), len(self.sorted) - 1)
        hit = (self.sorted[pos] == keys) & np.asarray(pc.is_valid(uids)) & np.asarray(
            pc.less_equal(pc.binary_length(uids), self.width).fill_null(False))
        return pa.array(self.order[pos], pa.int64(), mask=~hit)
