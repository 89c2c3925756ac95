"""Investigation guides and response playbooks: every detection has one with every section, every
placeholder has a value or a readable fallback, values are inserted as text only; and the tuning guide
matches the detections' Params."""

import importlib.util
import re
from dataclasses import replace
from importlib import import_module
from pathlib import Path

import pytest

from bothunt import guides
from bothunt.guides import GUIDES, PLACEHOLDER, SECTIONS, Guide
from bothunt.guides.common import FALLBACK
from bothunt.schema import Finding
from bothunt.sinks.html_sample import EVIL_DOMAIN, one_each

ROOT = Path(__file__).resolve().parents[2]
DETECTIONS = ("beacon", "inbound_flood", "relay", "dga", "dns_c2")


def all_guides() -> list[Guide]:
    out = []
    for path in [*GUIDES.values(), guides.GENERIC]:
        mod = import_module(path)
        out += [v for v in vars(mod).values() if isinstance(v, Guide)]
    return out


def test_every_detection_has_a_guide_module():
    assert set(DETECTIONS) <= set(GUIDES)
    for det in DETECTIONS:
        mod = import_module(GUIDES[det])
        assert callable(mod.guide) and callable(mod.values)


@pytest.mark.parametrize("g", all_guides(), ids=lambda g: g.key)
def test_guide_has_every_section_and_only_known_placeholders(g):
    assert g.summary
    for name, _ in SECTIONS:
        lines = getattr(g, name)
        assert lines and all(line.strip() for line in lines), (g.key, name)
    unknown = g.placeholders() - set(FALLBACK) - {"id", "detection", "severity", "score", "techniques"}
    assert not unknown, f"{g.key}: placeholders without a fallback: {sorted(unknown)}"
    assert len({g.key for g in all_guides()}) == len(all_guides())


def test_contain_sections_cover_isolation_blocking_and_credentials():
    for det in ("beacon", "relay", "dga"):
        text = " ".join(import_module(GUIDES[det]).guide(one_each()[0]).contain).lower()
        assert "isolate" in text, det
        assert "block" in text or "sinkhole" in text, det
        assert "reset" in text, det


@pytest.mark.parametrize("f", one_each(evil=True), ids=lambda f: f.detection + "-" + f.id[:6])
def test_rendered_guide_is_filled_with_the_findings_own_entities(f):
    r = guides.render(f)
    text = r.text()
    assert not PLACEHOLDER.search(r.summary + " ".join(line for _, lines in r.sections for line in lines))
    assert [title for title, _ in r.sections] == [title for _, title in SECTIONS]
    who = f.host or f.dst_ip or f.src_ip
    assert who in text
    if f.detection == "beacon":
        assert EVIL_DOMAIN in text and "every 5 min with 10% jitter" in text
    if f.detection == "inbound_flood":
        assert "2300 sources made 12000 login attempts against 10.9.0.5:22 (ssh)" in text
        assert "198.51.100.1, 198.51.100.2" in text


def test_values_are_inserted_as_text_never_expanded_again():
    f = one_each()[0]
    f = replace(f, host="{domain}", domain="{host}{cmdline}\n- injected line", process="{0}{__class__}")
    r = guides.render(f)
    text = r.text()
    assert "{domain} ({0}{__class__}) called {host}{cmdline} - injected line about every" in r.summary
    assert "\n- injected" not in r.summary and "\n- injected line" not in text


def test_missing_entities_read_as_words():
    bare = Finding(detection="beacon", title="t", severity="low", score=0.3, first_seen=None, last_seen=None,
                   explanation="x")
    r = guides.render(bare)
    assert r.summary.startswith("the host (the process (this telemetry does not name it)) called the destination")
    unknown = Finding(detection="new_detection", title="Something odd", severity="low", score=0.3,
                      first_seen=None, last_seen=None, explanation="x", host="h1")
    assert guides.render(unknown).key == "generic"
    assert "Isolate h1" in guides.render(unknown).text()


@pytest.mark.parametrize("category, key", [
    ("credential_stuffing", "inbound_flood/stuffing"), ("low_and_slow_stuffing", "inbound_flood/stuffing"),
    ("http_flood", "inbound_flood/flood"), ("volumetric_flood", "inbound_flood/flood"),
    ("spam", "inbound_flood/spam"), ("brute_force", "inbound_flood/single"), ("hammering", "inbound_flood/single"),
    ("sweep", "inbound_flood/scan"), ("port_scan", "inbound_flood/scan"),
])
def test_flood_variant_follows_the_category(category, key):
    f = replace(one_each()[1], evidence={"category": category})
    assert guides.guide_for(f).key == key


def test_dns_c2_and_beacon_variants():
    base = one_each()[5]
    assert guides.guide_for(replace(base, evidence={"kind": "tunnel"})).key == "dns_c2/tunnel"
    assert guides.guide_for(replace(base, evidence={"kind": "fast_flux"})).key == "dns_c2/fast_flux"
    assert guides.guide_for(replace(base, evidence={"kind": "periodic_lookups"})).key == "dns_c2/periodic"
    assert guides.guide_for(replace(one_each()[0], evidence={"fleet": True})).key == "beacon/fleet"


# -- docs/tuning.md -----------------------------------------------------------------------------------

def test_tuning_doc_matches_the_detections_params():
    spec = importlib.util.spec_from_file_location("tuning_table", ROOT / "tools" / "tuning_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    current = (ROOT / "docs" / "tuning.md").read_text(encoding="utf-8")
    assert tool.splice(current, tool.generate()) == current, (
        "docs/tuning.md is out of date: run python tools/tuning_table.py --write docs/tuning.md")


def test_hand_written_tuning_advice_names_only_real_settings():
    from bothunt.detections.base import params_doc

    text = (ROOT / "docs" / "tuning.md").read_text(encoding="utf-8").split("## Every setting")[0]
    for det in DETECTIONS:
        section = re.search(rf"### {det}\n(.*?)(?=\n### |\n## )", text, re.S)
        if section is None:
            continue
        names = set(re.findall(r"`([a-z_]+(?:_\*)?)`", section.group(1)))
        params = {n for n, _, _ in params_doc(import_module(f"bothunt.detections.{det}").Params)}
        for name in names:
            if name.endswith("_*"):
                assert any(p.startswith(name[:-1]) for p in params), (det, name)
            else:
                assert name in params, (det, name)
