"""Output formats of the simulator, by id. Each writer appends one time slice at a time."""

from __future__ import annotations

from pathlib import Path

from bothunt.simulate.context import Sim
from bothunt.simulate.writers.cef import CefWriter
from bothunt.simulate.writers.common import Chunk, Writer
from bothunt.simulate.writers.defender import DefenderWriter
from bothunt.simulate.writers.suricata import SuricataWriter
from bothunt.simulate.writers.zeek import ZeekJsonWriter, ZeekWriter

WRITERS: dict[str, type[Writer]] = {
    "zeek": ZeekWriter,
    "zeek-json": ZeekJsonWriter,
    "defender": DefenderWriter,
    "cef": CefWriter,
    "suricata": SuricataWriter,
}
FORMATS = tuple(WRITERS)


def make_writer(fmt: str, out: Path, sim: Sim, rotate: bool) -> Writer:
    return WRITERS[fmt](out, sim, rotate)


__all__ = ["FORMATS", "WRITERS", "Chunk", "Writer", "make_writer"]
