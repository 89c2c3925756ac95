"""HTML report: one self-contained file (inline CSS, JS and data; no network needed to open it).

The findings travel as JSON in a `<script type="application/json">` block with `<`, `>`, `&` and
U+2028/2029 escaped, and the page builds every element with textContent, so attacker-written text (a
domain, a command line) shows as text. A Content-Security-Policy allows only this file's own script and
style (by hash) and no connections at all, a second line of defence should an escape ever be missed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any, TextIO

from bothunt.schema import Finding
from bothunt.sinks.html_data import payload, script_json

ASSETS = ("report.html", "report.css", "plots.js", "report.js")
_SLOT = re.compile(r"\{\{(TITLE|CSP|STYLE|SCRIPT|DATA)\}\}")


@cache
def asset(name: str) -> str:
    return resources.files("bothunt.sinks").joinpath("assets", name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@cache
def _static() -> tuple[str, str, str]:
    """(template, style, script). The script must not contain anything that ends a script element."""
    script = "(function () {\n'use strict';\n" + asset("plots.js") + "\n" + asset("report.js") + "\n})();\n"
    style = asset("report.css")
    lowered = script.lower()
    if "</script" in lowered or "<!--" in lowered or "</style" in style.lower():
        raise RuntimeError("report assets contain a sequence that would end their element early")
    return asset("report.html"), style, script


def render_html(findings: Sequence[Finding], meta: Mapping[str, Any]) -> str:
    template, style, script = _static()
    data = payload(findings, meta)
    csp = (f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(style)}; "
           "base-uri 'none'; form-action 'none'")
    slots = {"TITLE": html.escape(data["meta"]["title"]), "CSP": csp, "STYLE": style, "SCRIPT": script,
             "DATA": script_json(data)}
    # One pass: text inserted into a slot is never scanned for further slots.
    return _SLOT.sub(lambda m: slots[m.group(1)], template)


class HtmlSink:
    id = "html"
    extension = ".html"

    def render(self, findings: Sequence[Finding], out: TextIO, meta: Mapping[str, Any]) -> None:
        out.write(render_html(findings, meta))
