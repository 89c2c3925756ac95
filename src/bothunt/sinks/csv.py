"""CSV: one finding a row, evidence as a JSON cell. Cells an attacker can write are neutralised so a
spreadsheet does not execute them as formulas."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from bothunt.schema import FINDING_FIELDS, Finding

# A leading =, +, -, @ (or a tab / carriage return that a spreadsheet strips first) starts a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class CsvSink:
    id = "csv"
    extension = ".csv"

    def render(self, findings: Sequence[Finding], out: TextIO, meta: Mapping[str, Any]) -> None:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(FINDING_FIELDS)
        for f in findings:
            d = f.to_dict()
            d["techniques"] = ";".join(d["techniques"])
            d["evidence"] = json.dumps(d["evidence"], ensure_ascii=False, sort_keys=True)
            w.writerow([neutralise(d[k]) for k in FINDING_FIELDS])
