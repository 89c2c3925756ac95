"""Generate the threshold tables of docs/tuning.md from the detections' Params (detections.base.params_doc)
and the allow-list defaults in bothunt.config, so the guide stays true to the code.

    python tools/tuning_table.py                      # print the generated block
    python tools/tuning_table.py --write docs/tuning.md
    python tools/tuning_table.py --check docs/tuning.md   # exit 1 when the file is out of date
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

BEGIN = "<!-- BEGIN GENERATED: tools/tuning_table.py (do not edit by hand) -->"
END = "<!-- END GENERATED -->"
KNOWN = ("beacon", "inbound_flood", "relay", "dga", "dns_c2")
MAX_ITEMS = 6


def detection_modules() -> list[tuple[str, ModuleType]]:
    """The registered detections, else the known ones that import (the registry may still be empty)."""
    from bothunt import detections

    ids = detections.ids() or [d for d in KNOWN if _importable(f"bothunt.detections.{d}")]
    return [(d, detections.get(d) if d in detections.DETECTIONS else import_module(f"bothunt.detections.{d}"))
            for d in ids]


def _importable(name: str) -> bool:
    try:
        import_module(name)
    except ImportError:
        return False
    return True


def fmt_default(value: Any) -> str:
    if isinstance(value, (tuple, list, frozenset, set)):
        items = sorted(value, key=str) if isinstance(value, (frozenset, set)) else list(value)
        shown = ", ".join(str(v) for v in items[:MAX_ITEMS])
        more = len(items) - MAX_ITEMS
        text = "(" + shown + (f", … +{more} more" if more > 0 else "") + ")" if items else "()"
    else:
        text = repr(value)
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def params_table(mod: ModuleType) -> list[str]:
    from bothunt.detections.base import params_doc

    rows = ["| setting | default | what it is |", "|---|---|---|"]
    for name, default, doc in params_doc(mod.Params):
        rows.append(f"| `{name}` | {fmt_default(default)} | {cell(doc)} |")
    return rows


def allowlist_table() -> list[str]:
    from bothunt.config import Allowlist, Settings

    a, s = Allowlist(), Settings()
    rows = ["| setting | default | what it is |", "|---|---|---|",
            f"| `internal_networks` | {fmt_default(s.internal_networks)} | Networks counted as internal. |",
            f"| `allowlist.processes` | {fmt_default(a.processes)} | Process names (globs) whose findings drop to "
            "info, naming the entry. |",
            f"| `allowlist.domains` | {fmt_default(a.domains)} | Domains (`*.x` also matches x) whose findings drop "
            "to info. |",
            f"| `allowlist.cidrs` | {fmt_default(a.cidrs)} | Addresses / networks whose findings drop to info "
            "(scanners, partners, load tests). |",
            f"| `allowlist.known_services` | {fmt_default(a.known_services)} ({len(a.known_services)} entries) | "
            "Monitoring, telemetry, update and licence services; replacing the list drops the built-in one. |"]
    return rows


def generate() -> str:
    out = [BEGIN, "", "### Allow-lists and networks", "", *allowlist_table()]
    for det, mod in detection_modules():
        out += ["", f"### `{det}`", "", f"YAML: `detections: {{{det}: {{setting: value}}}}`.", "", *params_table(mod)]
    return "\n".join([*out, "", END])


def splice(text: str, block: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"markers not found; the file needs {BEGIN!r} and {END!r}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + block + tail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, help="replace the generated block in this file")
    ap.add_argument("--check", type=Path, help="exit 1 when this file's generated block is out of date")
    args = ap.parse_args(argv)
    block = generate()
    if args.write:
        args.write.write_text(splice(args.write.read_text(encoding="utf-8"), block), encoding="utf-8")
        return 0
    if args.check:
        current = args.check.read_text(encoding="utf-8")
        if splice(current, block) != current:
            print(f"{args.check} is out of date: run python tools/tuning_table.py --write {args.check}",
                  file=sys.stderr)
            return 1
        return 0
    print(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
