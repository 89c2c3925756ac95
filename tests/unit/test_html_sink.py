"""HTML report: one self-contained file, attacker text only inside an escaped JSON block, and the
plot-data contract (which picture each finding gets, and that the numbers drawn are the evidence's)."""

import base64
import hashlib
import io
import json
import re
from dataclasses import replace

import pytest

from bothunt import guides, pivots
from bothunt.schema import Finding
from bothunt.sinks import html_plots
from bothunt.sinks.html import HtmlSink, render_html
from bothunt.sinks.html_data import payload, script_json
from bothunt.sinks.html_sample import EVIL_CMDLINE, EVIL_DOMAIN, EVIL_PROCESS, one_each

DATA_BLOCK = re.compile(r'<script type="application/json" id="bothunt-data">(.*?)</script>', re.S)


def _render(findings, **meta):
    buf = io.StringIO()
    HtmlSink().render(findings, buf, meta)
    return buf.getvalue()


def _data(text):
    blocks = DATA_BLOCK.findall(text)
    assert len(blocks) == 1
    return json.loads(blocks[0])


@pytest.fixture(scope="module")
def evil():
    return one_each(evil=True)


@pytest.fixture(scope="module")
def evil_html(evil):
    return _render(evil, title="<b>report</b> & co", workspace="/ws/it's")


def test_sink_shape():
    sink = HtmlSink()
    assert (sink.id, sink.extension) == ("html", ".html")


def test_attacker_text_never_reaches_markup(evil_html, evil):
    # Exactly the two script elements the template has: attacker text opened none and closed none.
    assert evil_html.count("<script") == 2
    assert evil_html.lower().count("</script") == 2
    assert "<img" not in evil_html and "<svg" not in evil_html
    assert "\u2028" not in evil_html and "\u2029" not in evil_html
    block = DATA_BLOCK.findall(evil_html)[0]
    assert not set("<>&") & set(block)
    # ... and the JSON gives every value back exactly.
    data = json.loads(block)
    beacon = next(r for r in data["findings"] if r["det"] == "beacon")
    assert beacon["dom"] == EVIL_DOMAIN and beacon["proc"] == EVIL_PROCESS
    assert beacon["ev"]["cmdline_sample"] == EVIL_CMDLINE
    assert "<title>&lt;b&gt;report&lt;/b&gt; &amp; co</title>" in evil_html
    assert len(data["findings"]) == len(evil)


def test_script_json_escapes_the_five_characters():
    text = script_json({"k": "</script><!-- & \u2028\u2029 >"})
    assert text == '{"k":"\\u003c/script\\u003e\\u003c!-- \\u0026 \\u2028\\u2029 \\u003e"}'
    assert json.loads(text) == {"k": "</script><!-- & \u2028\u2029 >"}


def test_self_contained_with_csp_hashes_of_its_own_script_and_style(evil_html):
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", evil_html)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', evil_html).group(1)
    assert "default-src 'none'" in csp and "connect-src" not in csp
    script = re.findall(r"<script>(.*?)</script>", evil_html, re.S)
    style = re.findall(r"<style>(.*?)</style>", evil_html, re.S)
    assert len(script) == 1 and len(style) == 1

    def sha(t):
        return "'sha256-" + base64.b64encode(hashlib.sha256(t.encode()).digest()).decode() + "'"

    assert f"script-src {sha(script[0])};" in csp
    assert f"style-src {sha(style[0])};" in csp


def test_every_finding_gets_its_picture(evil):
    kinds = [(f.detection, html_plots.plot(f)["kind"]) for f in evil]
    assert kinds == [("beacon", "rhythm"), ("inbound_flood", "flood"), ("relay", "relay_pairs"),
                     ("relay", "relay_summary"), ("dga", "dga"), ("dns_c2", "dns_lookups"), ("dns_c2", "rhythm")]


def test_rhythm_counts_every_connection_and_every_interval(evil):
    f = evil[0]
    n = len(f.evidence["timeline"])
    density, hist = html_plots.plot(f)["panels"]
    assert sum(density["counts"]) == n
    assert sum(hist["counts"]) == n - 1
    assert hist["log"] and hist["marks"][0]["x"] == 300.0
    assert hist["band"]["lo"] == pytest.approx(285.0) and hist["band"]["hi"] == pytest.approx(315.0)
    assert hist["lo"] <= min(hist["band"]["lo"], 300) and hist["hi"] >= 300


def test_flood_bars_are_the_evidence_bins_with_baseline_and_threshold(evil):
    f = evil[1]
    (panel,) = html_plots.plot(f)["panels"]
    assert [i["value"] for i in panel["items"]] == [b["requests"] for b in f.evidence["bins"]]
    assert [i["value2"] for i in panel["items"]] == [b["sources"] for b in f.evidence["bins"]]
    assert panel["items"][1]["t"] - panel["items"][0]["t"] == 300
    assert [(r["label"], r["value"]) for r in panel["refs"]] == [("baseline median", 40.0), ("threshold", 180.0)]


def test_relay_edges_account_for_every_pair(evil):
    f = evil[2]
    bip, lag, sc = html_plots.plot(f)["panels"]
    assert sum(e[2] for e in bip["edges"]) == len(f.evidence["pairs"])
    assert sorted(bip["left"]) == ["139.180.2.3", "45.77.1.10", "45.77.1.11"]
    assert len(bip["right"]) == 11 and bip["right"][-1] == "19 other target(s)"
    assert sum(lag["counts"]) == len(f.evidence["pairs"])
    assert len(sc["points"]) == len(f.evidence["pairs"])


def test_dga_bursts_and_names(evil):
    f = evil[4]
    bursts, names = html_plots.plot(f)["panels"]
    assert [i["value"] for i in bursts["items"]] == [b["failed_domains"] for b in f.evidence["burst_times"]]
    assert all(i["t_end"] - i["t"] == 50 for i in bursts["items"])
    assert names["items"][0]["label"] == EVIL_DOMAIN
    assert [i["cls"] for i in names["items"]].count("ok") == 1
    assert names["ref"]["value"] == 0.62


def test_dns_c2_fallback_pictures_from_existing_keys():
    base = Finding(detection="dns_c2", title="t", severity="low", score=0.3, first_seen=None, last_seen=None,
                   explanation="x", domain="ex.net")
    tunnel = replace(base, evidence={"kind": "tunnel", "sample_names": ["abcdef.ex.net", "a.b.ex.net"]})
    assert html_plots.plot(tunnel)["kind"] == "dns_names"
    assert [i["value"] for i in html_plots.plot(tunnel)["panels"][0]["items"]] == [6.0, 3.0]
    assert html_plots.missing_keys(replace(tunnel, evidence={"kind": "tunnel"})) == ["lookups"]
    flux = replace(base, evidence={"kind": "fast_flux", "addresses": 30,
                                   "sample_addresses": ["1.2.3.4", "1.2.9.9", "5.6.7.8"]})
    items = html_plots.plot(flux)["panels"][0]["items"]
    assert [(i["label"], i["value"]) for i in items] == [("1.2.0.0/16", 2.0), ("5.6.0.0/16", 1.0)]
    periodic = replace(base, evidence={"kind": "periodic_lookups", "names": [{"name": "a.ex.net", "period_s": 60,
                                                                              "min_ttl": 300.0}]})
    assert html_plots.plot(periodic)["kind"] == "dns_periods"
    assert html_plots.missing_keys(replace(periodic, evidence={"kind": "periodic_lookups"})) == [
        "timeline", "period_s", "jitter_pct"]


@pytest.mark.parametrize("evidence", [
    {},
    {"timeline": "not a list", "period_s": 300, "jitter_pct": 5},
    {"timeline": [1, 2], "period_s": 300, "jitter_pct": 5},
    {"timeline": ["x", None, {"a": 1}, 5.0], "period_s": "300", "jitter_pct": None},
    {"timeline": [1.0, 2.0, float("inf"), 4.0], "period_s": float("nan"), "jitter_pct": 5},
])
def test_beacon_without_usable_timeline_gets_the_table_only(evidence):
    f = Finding(detection="beacon", title="t", severity="low", score=0.3, first_seen=None, last_seen=None,
                explanation="x", evidence=evidence)
    assert html_plots.plot(f) is None
    row = payload([f], {})["findings"][0]
    assert row["plot"] is None
    assert row["miss"] == [k for k in ("timeline", "period_s", "jitter_pct") if evidence.get(k) is None]
    json.loads(script_json(payload([f], {})))


@pytest.mark.parametrize("detection, evidence", [
    ("inbound_flood", {"bins": [None, {"start": "not a time", "requests": 5}, {"t": 10}], "baseline": "x"}),
    ("inbound_flood", {"bins": [], "baseline": {}}),
    ("relay", {"pairs": 5}),
    ("relay", {"pairs": [{"inbound_src": None}], "operators": "x", "targets": None}),
    ("dga", {"burst_times": [{"start": None}], "sample_names": [{"score": "high"}]}),
    ("dns_c2", {"kind": "tunnel", "lookups": [{"t": "2026-01-01T00:00:00Z", "length": float("nan")}]}),
    ("unknown_detection", {"timeline": [1, 2, 3]}),
])
def test_odd_evidence_never_crashes_the_report(detection, evidence):
    f = Finding(detection=detection, title="t", severity="low", score=0.3, first_seen="2026-01-01T00:00:00Z",
                last_seen="bad time", explanation="x", evidence=evidence)
    text = _render([f])
    assert _data(text)["findings"][0]["plot"] is None


def test_nan_and_long_lists_in_evidence_are_json_safe_and_capped(evil):
    f = replace(evil[0], evidence={**evil[0].evidence, "odd": float("nan"), "inf": float("inf")})
    row = _data(_render([f]))["findings"][0]
    assert row["ev"]["odd"] is None and row["ev"]["inf"] is None
    tl = row["ev"]["timeline"]  # drawn by the picture: only its first items in the table
    assert len(tl) == 4 and tl[-1] == f"… {len(f.evidence['timeline']) - 3} more"
    assert row["plot"]["kind"] == "rhythm"  # the picture read the full list
    assert sum(row["plot"]["panels"][0]["counts"]) == len(f.evidence["timeline"])
    ips = row["ev"]["src_ips"]  # not drawn: up to ten items
    assert ips == f.evidence["src_ips"]
    long = replace(f, evidence={"names": [f"n{i}" for i in range(25)]})
    assert _data(_render([long]))["findings"][0]["ev"]["names"][-1] == "… 15 more"


def test_each_guide_ships_once_with_each_findings_values(evil):
    data = payload(evil, {})
    keys = {r["g"] for r in data["findings"]}
    assert set(data["guides"]) == keys
    for f, row in zip(sorted(evil, key=lambda f: f.id), sorted(data["findings"], key=lambda r: r["id"]), strict=True):
        g = guides.guide_for(f)
        assert set(row["gv"]) == g.placeholders()
        # filling the shipped template with the shipped values gives Python's rendering
        rendered = guides.render(f)
        assert guides.fill(data["guides"][row["g"]]["summary"], row["gv"]) == rendered.summary


def test_hosts_index_every_finding_once(evil):
    data = payload(evil, {})
    members = sorted(i for h in data["hosts"] for i in h["findings"])
    assert members == list(range(len(evil)))
    for h in data["hosts"]:
        assert all(data["findings"][i]["hk"] == h["i"] for i in h["findings"])


def test_pivots_use_the_workspace_path_escaped(evil):
    data = payload(evil[:1], {"workspace": "/data/o'brien ws"})
    sql = ["\n".join(data["lines"][i] for i in p[3]) for p in data["findings"][0]["pv"] if p[2] == "sql"]
    assert sql and all("read_parquet('/data/o''brien ws/conn/*/*.parquet'" in q for q in sql)


def test_pivot_lines_table_gives_back_every_query(evil):
    data = payload(evil, {"workspace": "/ws"})
    for f, row in zip(sorted(evil, key=lambda f: f.id), sorted(data["findings"], key=lambda r: r["id"]), strict=True):
        got = [(t, plat, lang, "\n".join(data["lines"][i] for i in idx)) for t, plat, lang, idx in row["pv"]]
        assert got == [(p.title, p.platform, p.language, p.query) for p in pivots.pivots(f, "/ws")]
    assert len(data["lines"]) == len(set(data["lines"]))


def test_empty_report_renders():
    text = render_html([], {})
    data = _data(text)
    assert data["findings"] == [] and data["hosts"] == []
