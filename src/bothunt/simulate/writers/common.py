"""What every writer shares: a time-slice `Chunk` whose formatted columns are computed once and reused by
all formats, vectorised text helpers, and the `Writer` base that counts what it wrote per scenario."""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.simulate import net
from bothunt.simulate.context import Sim
from bothunt.simulate.frames import Frame
from bothunt.simulate.rand import base62, mix64

INTERNAL, OUTBOUND, INBOUND, EXTERNAL = 0, 1, 2, 3
TS_TYPE = pa.timestamp("us", tz="UTC")


@lru_cache(maxsize=4)
def _digits(width: int) -> pa.Array:
    """"0".."9...9" zero-padded to `width`, for formatting by lookup instead of casting."""
    return pc.utf8_lpad(pa.array(np.arange(10**width)).cast(pa.string()), width, "0")


@lru_cache(maxsize=1)
def _small_ints() -> pa.Array:
    return pa.array(np.arange(65536)).cast(pa.string())


def ints(values: np.ndarray) -> pa.Array:
    """Decimal strings; small values (ports, counts) by table lookup, the rest per distinct value."""
    v = np.asarray(values, dtype=np.int64)
    if v.size and v.min() >= 0 and v.max() < 65536:
        return _small_ints().take(pa.array(v))
    uniq, inv = np.unique(v, return_inverse=True)
    if uniq.size * 2 > v.size:
        return pa.array(v).cast(pa.string())
    return pa.array(uniq).cast(pa.string()).take(pa.array(inv.astype(np.int64)))


def fixed(values: np.ndarray, decimals: int = 6) -> pa.Array:
    """Fixed-point decimal strings ("12.000300"), as Zeek prints times and intervals."""
    scale = 10 ** decimals
    v = np.round(np.asarray(values, dtype=np.float64) * scale).astype(np.int64)
    whole = ints(v // scale)
    frac = _digits(decimals).take(pa.array(v % scale))
    return pc.binary_join_element_wise(whole, frac, ".")


def lookup(table: list[str] | tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.array(list(table), pa.string()).take(pa.array(np.asarray(codes, dtype=np.int64)))


def or_dash(arr: pa.Array, mask: np.ndarray, dash: str = "-") -> pa.Array:
    """Replace values where mask is True (unset fields)."""
    return pc.if_else(pa.array(mask), pa.scalar(dash), arr)


def json_escape(arr: pa.Array) -> pa.Array:
    if pc.any(pc.match_substring(arr, "\\")).as_py():
        arr = pc.replace_substring(arr, "\\", "\\\\")
    if pc.any(pc.match_substring(arr, '"')).as_py():
        arr = pc.replace_substring(arr, '"', '\\"')
    return arr


@lru_cache(maxsize=1)
def _minute_second() -> pa.Array:
    """"00:00".."59:59" for the seconds of an hour."""
    m, sec = np.divmod(np.arange(3600), 60)
    two = _digits(2)
    return pc.binary_join_element_wise(two.take(pa.array(m)), two.take(pa.array(sec)), ":")


def clock(ts: np.ndarray, hour_fmt: str = "%Y-%m-%dT%H:", suffix: str = "Z", decimals: int = 6) -> pa.Array:
    """Formatted UTC times: strftime (`hour_fmt`, up to the hour) per distinct hour, minutes and seconds
    and the fixed decimals by table lookup, so a million times cost a few table lookups."""
    scale = 10**decimals
    v = np.round(np.asarray(ts, dtype=np.float64) * scale).astype(np.int64)
    sec = v // scale
    hours, inv = np.unique(sec // 3600, return_inverse=True)
    prefix = pc.strftime(pa.array(hours * 3600, pa.int64()).cast(pa.timestamp("s", tz="UTC")), format=hour_fmt)
    parts: list[pa.Array | pa.Scalar] = [prefix.take(pa.array(inv.astype(np.int64))),
                                         _minute_second().take(pa.array(sec % 3600))]
    if decimals:
        parts += [pa.scalar("."), _digits(decimals).take(pa.array(v % scale))]
    return pc.binary_join_element_wise(*parts, pa.scalar(suffix), "")


def timestamps(ts: np.ndarray) -> pa.Array:
    return pa.array(np.round(np.asarray(ts) * 1e6).astype(np.int64), pa.int64()).cast(TS_TYPE)


def write_lines(fh: IO[bytes], *pieces: pa.Array | pa.Scalar | str, sep: str = "") -> None:
    """Join pieces row-wise, end each row with a newline and write the whole column in one call: the
    string array's data buffer is exactly the concatenated rows."""
    parts = [pa.scalar(p) if isinstance(p, str) else p for p in pieces]
    if not any(isinstance(p, pa.Array) and len(p) for p in parts):
        return
    if sep:  # the newline goes on the last column, not after a separator
        last = parts[-1]
        parts[-1] = pc.binary_join_element_wise(last, pa.scalar("\n"), "") if isinstance(last, pa.Array) \
            else pa.scalar(last.as_py() + "\n")
    else:
        parts.append(pa.scalar("\n"))
    rows = pc.binary_join_element_wise(*parts, sep)
    if rows.null_count:
        raise ValueError("a formatted row is null: a writer left a field unfilled")
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1, offset=rows.offset * 4)
    fh.write(memoryview(rows.buffers()[2])[offsets[0]: offsets[-1]])


class Chunk:
    """One time slice of events, sorted by time, with connection uids already assigned."""

    def __init__(self, sim: Sim, t0: float, t1: float, conn: Frame, conn_ids: np.ndarray, dns: Frame,
                 dns_ids: np.ndarray) -> None:
        self.sim, self.t0, self.t1 = sim, t0, t1
        self.conn, self.dns = conn, dns
        self.conn_ids, self.dns_ids = conn_ids, dns_ids

    def _uid(self, ids: np.ndarray) -> pa.Array:
        h = mix64(np.asarray(ids, dtype=np.uint64) ^ np.uint64(self.sim.seed * 0x9E3779B1))
        parts = [pa.array(base62(x, w), pa.binary()).cast(pa.string()) for x, w in ((h, 10), (mix64(h), 7))]
        return pc.binary_join_element_wise(pa.scalar("C"), *parts, "")

    @cached_property
    def conn_uid(self) -> pa.Array:
        return self._uid(self.conn_ids)

    @cached_property
    def dns_uid(self) -> pa.Array:
        return self._uid(self.dns_ids)

    @cached_property
    def src_text(self) -> pa.Array:
        return net.to_text(self.conn["src"])

    @cached_property
    def dst_text(self) -> pa.Array:
        return net.to_text(self.conn["dst"])

    @cached_property
    def dns_src_text(self) -> pa.Array:
        return net.to_text(self.dns["src"])

    @cached_property
    def dns_dst_text(self) -> pa.Array:
        return net.to_text(self.dns["dst"])

    @cached_property
    def local(self) -> tuple[np.ndarray, np.ndarray]:
        return net.is_internal(self.conn["src"]), net.is_internal(self.conn["dst"])

    @cached_property
    def direction(self) -> np.ndarray:
        s, d = self.local
        return np.where(s & d, INTERNAL, np.where(s, OUTBOUND, np.where(d, INBOUND, EXTERNAL)))

    @cached_property
    def sni_text(self) -> pa.Array:
        """The name each connection was for ("" when none)."""
        names = pa.concat_arrays([self.sim.world.names_arr, pa.array([""])])
        idx = np.where(self.conn["sni"] >= 0, self.conn["sni"], len(names) - 1)
        return names.take(pa.array(idx.astype(np.int64)))


class Writer:
    """Base of the output formats: `write(chunk)` appends a slice, `close()` returns the files written."""

    id = ""

    def __init__(self, out: Path, sim: Sim, rotate: bool) -> None:
        self.root = out
        self.sim = sim
        self.rotate = rotate
        self.conn_counts: dict[int, int] = {}
        self.dns_counts: dict[int, int] = {}
        self.files: list[Path] = []

    def open_single(self, folder: str, name: str) -> None:
        """For formats written as one file: create `out/folder/name`, open it as `self.fh`."""
        d = self.root / folder
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / name
        self.fh = open(self.path, "wb")  # noqa: SIM115 - closed in the writer's close()
        self.files.append(self.path)

    def count(self, scen: np.ndarray, into: dict[int, int]) -> None:
        codes, counts = np.unique(np.asarray(scen), return_counts=True)
        for c, n in zip(codes.tolist(), counts.tolist(), strict=True):
            into[c] = into.get(c, 0) + n

    def write(self, chunk: Chunk) -> None:
        raise NotImplementedError

    def close(self) -> list[Path]:
        return self.files
