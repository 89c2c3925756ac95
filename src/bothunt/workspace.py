"""Parquet workspace: canonical tables partitioned by table and day, a manifest of ingested files and
their rejects.

Layout::

    WS/manifest.json                         one entry per ingested input file
    WS/conn/day=2026-11-27/<filekey>.parquet
    WS/conn/day=2026-11-27/<filekey>.1.parquet  the same file's rows encoded by a second writer thread
    WS/dns/day=2026-11-27/<filekey>.parquet
    WS/rejects/<filekey>.jsonl               file, line, reason, raw (attacker-written text kept as data)

A part is named by its input file's content key, so ingesting the same content twice rewrites the same
part instead of adding rows, and a file that grew replaces its old parts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bothunt.errors import BothuntError
from bothunt.schema import TABLES

MANIFEST = "manifest.json"
KEY_SAMPLE = 1 << 20
# Parquet encoding is the largest share of ingest time, so it does only what pays off: no dictionary
# for columns that are (nearly) unique per row, where the encoder builds one and throws it away; min/max
# statistics only where a reader can skip row groups with them (time ranges, address and port pivots).
_NO_DICTIONARY = {"ts", "duration", "bytes_out", "bytes_in", "pkts_out", "pkts_in", "uid", "ttls"}
_STATISTICS = {"ts", "duration", "src_ip", "dst_ip", "src_port", "dst_port", "bytes_out", "bytes_in", "pkts_out",
               "pkts_in", "pid", "host", "query"}


def parquet_options(table: str) -> dict[str, Any]:
    names = TABLES[table].names
    return {"compression": "zstd", "use_dictionary": [c for c in names if c not in _NO_DICTIONARY],
            "write_statistics": [c for c in names if c in _STATISTICS]}


def file_key(path: Path) -> str:
    """A content key that costs two 1 MiB reads, not a full pass over a 10 GB file: size plus the
    first and last MiB. Logs that grow change both size and tail."""
    size = path.stat().st_size
    h = hashlib.blake2b(digest_size=12)
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(KEY_SAMPLE))
        if size > KEY_SAMPLE:
            fh.seek(max(KEY_SAMPLE, size - KEY_SAMPLE))
            h.update(fh.read(KEY_SAMPLE))
    return h.hexdigest()


@dataclass
class Workspace:
    root: Path

    @classmethod
    def create(cls, root: Path) -> Workspace:
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise BothuntError(f"workspace {root} exists and is not a directory")
        if root.is_dir() and any(root.iterdir()) and not (root / MANIFEST).exists():
            raise BothuntError(f"{root} is not empty and is not a bothunt workspace (no {MANIFEST})")
        root.mkdir(parents=True, exist_ok=True)
        ws = cls(root)
        if not (root / MANIFEST).exists():
            ws._save({"version": 1, "files": {}})
        return ws

    @classmethod
    def open(cls, root: Path) -> Workspace:
        root = Path(root)
        if not (root / MANIFEST).is_file():
            raise BothuntError(f"{root} is not a bothunt workspace (no {MANIFEST}); run `bothunt ingest` first")
        return cls(root)

    @staticmethod
    def is_workspace(path: Path) -> bool:
        return (Path(path) / MANIFEST).is_file()

    # -- manifest ---------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.root / MANIFEST).read_text())

    def _save(self, manifest: dict[str, Any]) -> None:
        tmp = self.root / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(tmp, self.root / MANIFEST)

    def known(self, path: Path, key: str) -> bool:
        entry = self.manifest()["files"].get(str(path.resolve()))
        return entry is not None and entry.get("key") == key

    def record(self, path: Path, entry: dict[str, Any]) -> None:
        manifest = self.manifest()
        manifest["files"][str(path.resolve())] = entry
        self._save(manifest)

    def forget(self, path: Path) -> None:
        """Remove a file's previous parts and rejects (its content changed since it was ingested)."""
        manifest = self.manifest()
        entry = manifest["files"].pop(str(path.resolve()), None)
        if entry is None:
            return
        for part in entry.get("parts", []):
            (self.root / part).unlink(missing_ok=True)
        if entry.get("rejects"):
            (self.root / entry["rejects"]).unlink(missing_ok=True)
        self._save(manifest)

    # -- parts ------------------------------------------------------------------------------------
    def part_path(self, table: str, day: str, key: str) -> Path:
        d = self.root / table / f"day={day}"
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{key}.parquet"

    def rejects_path(self, key: str) -> Path:
        d = self.root / "rejects"
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{key}.jsonl"

    def parts(self, table: str) -> list[Path]:
        return sorted((self.root / table).glob("day=*/*.parquet"))

    def read(self, table: str) -> pa.Table:
        """The whole table in memory: for tests and small workspaces, not for hunting."""
        parts = self.parts(table)
        if not parts:
            return TABLES[table].empty_table()
        return pa.concat_tables([pq.read_table(p, schema=TABLES[table]) for p in parts])

    def clear(self) -> None:
        for table in TABLES:
            shutil.rmtree(self.root / table, ignore_errors=True)
        shutil.rmtree(self.root / "rejects", ignore_errors=True)
        self._save({"version": 1, "files": {}})


class PartWriter:
    """Writes one input file's canonical rows, split by day, into its parts.

    Parquet encoding is the slowest stage of ingest and a single file cannot be encoded by two
    threads, so a writer has `slots`: each slot owns its own part per table and day (`<key>.parquet`,
    `<key>.1.parquet`, ...) and one thread at a time may write to a slot. The parts of all slots
    together hold the file's rows, each row once."""

    def __init__(self, ws: Workspace, key: str, slots: int = 1) -> None:
        self.ws = ws
        self.key = key
        self.slots = slots
        self._writers: dict[tuple[str, str, int], pq.ParquetWriter] = {}
        self._lock = threading.Lock()
        self.rows: dict[str, int] = {}

    def _name(self, slot: int) -> str:
        return self.key if slot == 0 else f"{self.key}.{slot}"

    def write(self, table: str, data: pa.Table, slot: int = 0) -> None:
        if data.num_rows == 0:
            return
        # date32 of a UTC timestamp is its UTC day; far cheaper than formatting every row as text
        days = pc.cast(data["ts"], pa.date32())
        distinct = pc.unique(days)
        for value in distinct:
            day = value.as_py().isoformat()
            part = data if len(distinct) == 1 else data.filter(pc.equal(days, value))
            with self._lock:
                w = self._writers.get((table, day, slot))
                if w is None:
                    w = pq.ParquetWriter(self.ws.part_path(table, day, self._name(slot)), TABLES[table],
                                         **parquet_options(table))
                    self._writers[(table, day, slot)] = w
            w.write_table(part)
            with self._lock:
                self.rows[table] = self.rows.get(table, 0) + part.num_rows

    def close(self) -> list[str]:
        for w in self._writers.values():
            w.close()
        return sorted(
            str(self.ws.part_path(t, d, self._name(s)).relative_to(self.ws.root)) for t, d, s in self._writers
        )

    def abort(self) -> None:
        for part in self.close():
            (self.ws.root / part).unlink(missing_ok=True)
