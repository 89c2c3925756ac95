import csv
import io
import json

from bothunt.schema import Finding
from bothunt.sinks import get_sink
from bothunt.sinks.jsonl import read_findings

EVIL = Finding(detection="beacon", title="=HYPERLINK(\"http://x\")", severity="high", score=0.9,
               first_seen="2026-01-01T00:00:00Z", last_seen="2026-01-01T01:00:00Z",
               explanation="-2+3", host="@host", process="+cmd.exe", domain="[bold red]x[/]<script>.com",
               evidence={"cmdline": "=1+1", "n": 3})


def _render(fmt, findings, **meta):
    buf = io.StringIO()
    get_sink(fmt).render(findings, buf, meta)
    return buf.getvalue()


def test_csv_neutralises_formula_prefixes_in_every_text_cell():
    rows = list(csv.DictReader(io.StringIO(_render("csv", [EVIL]))))
    r = rows[0]
    assert r["title"].startswith("'=") and r["explanation"] == "'-2+3"
    assert r["host"] == "'@host" and r["process"] == "'+cmd.exe"
    assert json.loads(r["evidence"]) == {"cmdline": "=1+1", "n": 3}  # JSON cell starts with '{'
    assert r["score"] == "0.9"


def test_jsonl_round_trips(tmp_path):
    p = tmp_path / "f.jsonl"
    p.write_text(_render("jsonl", [EVIL, EVIL]))
    back = read_findings(p)
    assert [f.id for f in back] == [EVIL.id, EVIL.id]
    assert back[0].domain == EVIL.domain


def test_table_prints_attacker_text_literally_not_as_markup():
    out = _render("table", [EVIL], width=300)
    assert "[bold red]x[/]<script>.com" in out


def test_jsonl_keeps_one_finding_a_line_even_with_unicode_line_separators(tmp_path):
    import dataclasses

    f = dataclasses.replace(EVIL, domain="a\u2028b\u2029c\u0085d.example")
    text = _render("jsonl", [f])
    assert len(text.splitlines()) == 1
    p = tmp_path / "f.jsonl"
    p.write_text(text)
    assert read_findings(p)[0].domain == "a\u2028b\u2029c\u0085d.example"
