"""Record-shaped exports (CSV with a header row, JSON lines, JSON documents) read as tables of strings,
for the sources whose input is a table someone exported: Defender Advanced Hunting, Sentinel tables.

Every value is read as a string; the sources type them afterwards in DuckDB with the `bh_*` macros
(NULL where a value is unusable), so one bad value rejects one row and never a batch.

This module is what the sources call; the work is done in
- `tabular_sniff`: a file's layout and column names from its head;
- `tabular_csv` (with the record scan in `tabular_csv_scan`) and `tabular_json`: the readers;
- `tabular_mapping`: `Rows`, `Tally`, the DuckDB connection and macros, time parsing and
  `apply_mapping`.
Tests that swap a reader's chunking or limits patch the module that owns the name, not this one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from bothunt.sources.base import ReadContext, read_head
from bothunt.sources.tabular_csv import read_csv
from bothunt.sources.tabular_json import read_json_doc, read_jsonl
from bothunt.sources.tabular_mapping import Rows, Tally, apply_mapping, connect, file_time, parse_times
from bothunt.sources.tabular_sniff import head_columns, layout, strip_head

__all__ = [
    "Rows",
    "Tally",
    "apply_mapping",
    "connect",
    "file_time",
    "head_columns",
    "layout",
    "parse_times",
    "read_rows",
    "strip_head",
]


def read_rows(path: Path, ctx: ReadContext, fields: Mapping[str, Sequence[str]],
              required: Sequence[str] = ()) -> Iterator[Rows]:
    """Yield batches of the wanted fields. `fields` maps each output name to the input names it may
    have, first match wins (e.g. {"Timestamp": ("Timestamp", "TimeGenerated")}). A CSV header that
    lacks a `required` field raises InputError; JSON records are self-describing and are checked
    row by row by the caller's SQL."""
    kind = layout(read_head(path))
    if kind == "csv":
        yield from read_csv(path, ctx, fields, required)
    elif kind == "jsonl":
        yield from read_jsonl(path, ctx, fields)
    else:
        yield from read_json_doc(path, ctx, fields)
