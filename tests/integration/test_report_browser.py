"""The HTML report in headless Chromium: every finding renders with its picture, guide and pivots (the
browser's text equals Python's), hostile strings stay text (no injected element, handler or script ran),
the host view draws one timeline per host, filters work from the URL, and a screenshot is not blank.

Hand-made findings (bothunt.sinks.html_sample), one per detection with realistic evidence. Skips when
/usr/bin/chromium is absent (CI installs the Debian package `chromium`)."""

import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bothunt import guides, hostview, pivots
from bothunt.schema import sort_findings
from bothunt.sinks.html import render_html
from bothunt.sinks.html_plots import plot
from bothunt.sinks.html_sample import EVIL_CMDLINE, EVIL_DOMAIN, EVIL_PROCESS, one_each

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]
TITLE = "bothunt <b>browser</b> test"
WORKSPACE = "/data/ws"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="headless Chromium not installed (apt-get install chromium)")


def chromium(url: str, *args: str) -> tuple[str, str]:
    with tempfile.TemporaryDirectory(prefix="bothunt-chromium-") as profile:
        r = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, url],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    return r.stdout, "\n".join(console)


class Dom(HTMLParser):
    """Every element (tag, attrs), all text, and per finding details: guide lines, pivot code, plot kind."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.details: dict[str, dict] = {}
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.title = None
        self._cur: dict | None = None
        self._buf: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a))
        if tag in ("meta", "input", "br", "link", "img"):
            return
        self.stack.append((tag, a))
        if tag == "tr" and "details" in a.get("class", ""):
            self._cur = self.details.setdefault(a["data-id"], {"guide": [], "pivots": [], "kinds": [], "panels": []})
        if self._cur is not None:
            if "data-kind" in a:
                self._cur["kinds"].append(a["data-kind"])
            if tag == "svg" and "data-type" in a:
                self._cur["panels"].append(a["data-type"])
            if (tag == "li" and self._inside("div", "guide")) or (tag == "code" and self._inside("div", "pivot")):
                self._buf = []
        if tag == "title" and self.title is None:
            self._buf = []

    def _inside(self, tag, cls):
        return any(t == tag and cls in a.get("class", "").split() for t, a in self.stack)

    def handle_endtag(self, tag):
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break
        if self._buf is not None and tag in ("li", "code", "title"):
            text = "".join(self._buf)
            if tag == "title" and self.title is None:
                self.title = text
            elif tag == "li" and self._cur is not None:
                self._cur["guide"].append(text)
            elif tag == "code" and self._cur is not None:
                self._cur["pivots"].append(text)
            self._buf = None
        if tag == "tr" and not any(t == "tr" for t, _ in self.stack):
            self._cur = None

    def handle_data(self, data):
        self.text.append(data)
        if self._buf is not None:
            self._buf.append(data)


@pytest.fixture(scope="module")
def findings():
    return one_each(evil=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory, findings) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(findings, {"title": TITLE, "workspace": WORKSPACE}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def expanded(report) -> tuple[Dom, str]:
    out, console = chromium(report.as_uri() + "#expand=all", "--dump-dom")
    dom = Dom()
    dom.feed(out)
    return dom, console


def test_page_ran_cleanly_and_nothing_injected_ran(expanded):
    dom, console = expanded
    assert "Uncaught" not in console and "Refused" not in console, console
    assert dom.title == TITLE  # the payloads set document.title = 'PWNED'; none ran
    body = next(a for t, a in dom.elements if t == "body")
    assert body.get("data-ready") == "1"
    tags = Counter(t for t, _ in dom.elements)
    assert tags["script"] == 2 and tags["img"] == 0 and tags["iframe"] == 0
    handlers = [(t, k) for t, a in dom.elements for k in a if k.startswith("on")]
    assert handlers == []
    svgs = [a for t, a in dom.elements if t == "svg"]
    assert svgs and all(a.get("class") in ("panel", "panel host-timeline") for a in svgs)


def test_hostile_strings_render_as_text(expanded):
    dom, _ = expanded
    text = "".join(dom.text)
    assert EVIL_DOMAIN in text and EVIL_PROCESS in text and EVIL_CMDLINE in text


def test_every_finding_renders_with_its_picture_guide_and_pivots(expanded, findings):
    dom, _ = expanded
    rows = [a["data-id"] for t, a in dom.elements if t == "tr" and "row" in a.get("class", "").split()]
    assert sorted(rows) == sorted(f.id for f in findings)
    assert rows == [f.id for f in sort_findings(findings)]
    for f in findings:
        d = dom.details[f.id]
        assert d["kinds"] == [plot(f)["kind"]], f.detection
        assert len(d["panels"]) == len(plot(f)["panels"])
        rendered = guides.render(f)
        assert d["guide"] == [line for _, lines in rendered.sections for line in lines], f.detection
        assert d["pivots"] == [p.query for p in pivots.pivots(f, WORKSPACE)], f.detection


def test_host_view_draws_one_timeline_per_host(report, findings):
    out, console = chromium(report.as_uri() + "#view=hosts&expand=all", "--dump-dom")
    assert "Uncaught" not in console, console
    dom = Dom()
    dom.feed(out)
    groups = hostview.group(findings)
    cards = [a for t, a in dom.elements if t == "section" and "host" in a.get("class", "").split()]
    assert len(cards) == len(groups)
    timelines = [a for t, a in dom.elements if t == "svg" and "host-timeline" in a.get("class", "")]
    assert len(timelines) == len(groups)
    lanes = [a for t, a in dom.elements if t == "rect" and "lane" in a.get("class", "")]
    assert len(lanes) == len(findings)


@pytest.mark.parametrize("fragment, shown", [("det=dga", 1), ("det=relay", 2), ("host=ws-017", 3),
                                             ("q=exfil-example", 1), ("q=no-such-thing", 0)])
def test_filters_from_the_url(report, fragment, shown, findings):
    out, _ = chromium(report.as_uri() + "#" + fragment, "--dump-dom")
    assert f"Showing {shown} of {len(findings)} findings" in out
    dom = Dom()
    dom.feed(out)
    assert sum(1 for t, a in dom.elements if t == "tr" and "row" in a.get("class", "").split()) == shown


def _png(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    return size[0], size[1], zlib.decompress(idat)


def test_screenshot_is_a_drawn_page(report, tmp_path):
    shot = tmp_path / "report.png"
    chromium(report.as_uri() + "#expand=all", f"--screenshot={shot}", "--window-size=1280,2400")
    w, h, raw = _png(shot)
    assert (w, h) == (1280, 2400)
    # a blank page decompresses to a handful of byte values; text, badges and plots give many
    assert len(set(raw)) > 100
    assert raw.count(0xFF) < 0.97 * len(raw)
