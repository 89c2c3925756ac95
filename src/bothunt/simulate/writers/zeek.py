"""Zeek logs: TSV exactly as Zeek writes them (#separator / #fields / #types headers and #close footer)
and Zeek's JSON lines. One file per log, or hourly rotated files in per-day folders
(`2024-03-04/conn.10:00:00-11:00:00.log`) when the run spans more than a day."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.simulate.context import Sim
from bothunt.simulate.writers.common import Chunk, Writer, json_escape, write_lines
from bothunt.simulate.writers.zeek_fields import (
    Field,
    conn_fields,
    dns_fields,
    http_fields,
    http_rows,
    ssl_fields,
    ssl_rows,
)

LOGS = ("conn", "dns", "ssl", "http")


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d-%H-%M-%S")


def chunk_fields(ch: Chunk) -> dict[str, Callable[[], list[Field]]]:
    return {
        "conn": lambda: conn_fields(ch),
        "dns": lambda: dns_fields(ch),
        "ssl": lambda: ssl_fields(ch, ssl_rows(ch)),
        "http": lambda: http_fields(ch, http_rows(ch)),
    }


class _ZeekBase(Writer):
    folder = "zeek"

    def __init__(self, out: Path, sim: Sim, rotate: bool) -> None:
        super().__init__(out, sim, rotate)
        self.dir = out / self.folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.period: int | None = None
        self.handles: dict[str, IO[bytes]] = {}
        self.fields_written: dict[str, list[Field]] = {}

    def _path(self, log: str, period: int) -> Path:
        if not self.rotate:
            return self.dir / f"{log}.log"
        t = datetime.fromtimestamp(period * 3600, UTC)
        folder = self.dir / t.strftime("%Y-%m-%d")
        folder.mkdir(exist_ok=True)
        end = datetime.fromtimestamp(period * 3600 + 3600, UTC)
        return folder / f"{log}.{t:%H:%M:%S}-{end:%H:%M:%S}.log"

    def _open(self, period: int) -> None:
        self._close_all(self.sim.t_end if not self.rotate else min((self.period or 0) * 3600 + 3600, self.sim.t_end))
        self.period = period
        for log in LOGS:
            path = self._path(log, period)
            self.handles[log] = open(path, "wb")  # noqa: SIM115 - closed in _close_all
            self.files.append(path)

    def _close_all(self, t_close: float) -> None:
        for fh in self.handles.values():
            self.footer(fh, t_close)
            fh.close()
        self.handles = {}

    def write(self, chunk: Chunk) -> None:
        period = int(np.floor(chunk.t0 / 3600)) if self.rotate else 0
        if self.period != period or not self.handles:
            self._open(period)
        for log, build in chunk_fields(chunk).items():
            fields = build()
            fh = self.handles[log]
            if fh.tell() == 0:
                self.header(fh, log, fields, chunk.t0 if self.rotate else self.sim.t_start)
            self.render(fh, fields)
        self.count(chunk.conn["scen"], self.conn_counts)
        self.count(chunk.dns["scen"], self.dns_counts)

    def close(self) -> list[Path]:
        end = self.sim.t_end if not self.rotate else min(((self.period or 0) + 1) * 3600, self.sim.t_end)
        self._close_all(end)
        return self.files

    def header(self, fh: IO[bytes], log: str, fields: list[Field], t_open: float) -> None:
        pass

    def footer(self, fh: IO[bytes], t_close: float) -> None:
        pass

    def render(self, fh: IO[bytes], fields: list[Field]) -> None:
        raise NotImplementedError


class ZeekWriter(_ZeekBase):
    id = "zeek"

    def header(self, fh: IO[bytes], log: str, fields: list[Field], t_open: float) -> None:
        lines = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-",
                 f"#path\t{log}", f"#open\t{_stamp(t_open)}", "#fields\t" + "\t".join(f.name for f in fields),
                 "#types\t" + "\t".join(f.type for f in fields)]
        fh.write(("\n".join(lines) + "\n").encode())

    def footer(self, fh: IO[bytes], t_close: float) -> None:
        fh.write(f"#close\t{_stamp(t_close)}\n".encode())

    def render(self, fh: IO[bytes], fields: list[Field]) -> None:
        write_lines(fh, *[f.text for f in fields], sep="\t")


def _json_value(f: Field) -> pa.Array:
    if f.kind == "num":
        return f.text
    if f.kind == "bool":
        return pc.if_else(pc.equal(f.text, "T"), pa.scalar("true"), pa.scalar("false"))
    if f.kind == "list":
        return pc.binary_join_element_wise(pa.scalar('["'), pc.replace_substring(json_escape(f.text), ",", '","'),
                                           pa.scalar('"]'), "")
    if f.kind == "numlist":
        return pc.binary_join_element_wise(pa.scalar("["), f.text, pa.scalar("]"), "")
    return pc.binary_join_element_wise(pa.scalar('"'), json_escape(f.text), pa.scalar('"'), "")


class ZeekJsonWriter(_ZeekBase):
    """Zeek's JSON logs (LogAscii::use_json): one object per line, epoch timestamps, unset fields left out."""

    id = "zeek-json"
    folder = "zeek-json"

    def render(self, fh: IO[bytes], fields: list[Field]) -> None:
        if not len(fields[0].text):
            return
        pieces: list[pa.Array | str] = ["{"]
        for i, f in enumerate(fields):
            key = ("" if i == 0 else ",") + f'"{f.name}":'
            piece = pc.binary_join_element_wise(pa.scalar(key), _json_value(f), "")
            unset = pc.or_(pc.equal(f.text, "-"), pc.equal(f.text, "(empty)"))
            if pc.any(unset).as_py():
                piece = pc.if_else(unset, pa.scalar(""), piece)
            pieces.append(piece)
        pieces.append("}")
        write_lines(fh, *pieces)
