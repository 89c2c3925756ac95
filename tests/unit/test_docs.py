"""Every registered detection, source and sink carries its own documentation (detection-rules style)."""

import dataclasses
from pathlib import Path

import pytest

from bothunt import detections
from bothunt.sinks import SINKS
from bothunt.sources import _SOURCES, get_source

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_registry_is_not_empty():
    assert detections.ids(), "no detection registered"


@pytest.mark.parametrize("det_id", detections.ids())
def test_detection_documents_attack_ids_false_positives_and_every_threshold(det_id):
    mod = detections.get(det_id)
    info = mod.INFO
    assert info.id == det_id
    assert info.techniques[0] == "T1583.005"
    assert info.summary and info.false_positives and info.triage
    fields = dataclasses.fields(mod.Params)
    assert fields, f"{det_id} has no tunable thresholds"
    undocumented = [f.name for f in fields if not f.metadata.get("doc")]
    assert not undocumented, f"{det_id}: thresholds without a doc: {undocumented}"
    assert (ROOT / "docs").glob("*.md"), "docs/ is empty"
    assert f"`{det_id}`" in README, f"README does not mention detection {det_id}"


@pytest.mark.parametrize("source_id", list(_SOURCES))
def test_source_has_description_and_readme_row(source_id):
    src = get_source(source_id)
    assert src.id == source_id and src.description
    assert src.tables and set(src.tables) <= {"conn", "dns"}


@pytest.mark.parametrize("sink_id", list(SINKS))
def test_sink_is_named_in_readme(sink_id):
    assert sink_id in README
