"""OCSF Detection Finding output, checked record by record against the class's required attributes.

Required attributes and types, from the OCSF 1.3.0 schema (schema.ocsf.io/1.3.0, classes/detection_finding,
which extends finding, which extends base_event; and the objects it requires):

* base_event: activity_id (integer_t), category_uid (integer_t), class_uid (integer_t), metadata (object),
  severity_id (integer_t), time (timestamp_t: epoch milliseconds, long), type_uid (long_t)
* finding: finding_info (object)
* finding_info: uid (string_t), title (string_t; required up to 1.4, recommended since 1.5: required here)
* metadata: product (object), version (string_t)
* product: vendor_name (string_t; required in 1.1-1.3), and at least one of name / uid
* analytic (when present): type_id (integer_t)
* attack (each): at least one of tactic / technique / sub_technique; their uid and name are string_t
Enums: category_uid 2 (Findings), class_uid 2004, activity_id 1 Create, type_uid = class_uid * 100 +
activity_id, severity_id 0-6 or 99, observable.type_id an integer.
"""

import io
import json
from dataclasses import replace
from datetime import datetime

import pytest

from bothunt.guides.attack import known
from bothunt.schema import SEVERITIES, Finding
from bothunt.sinks.html_sample import EVIL_CMDLINE, EVIL_DOMAIN, one_each
from bothunt.sinks.ocsf import OcsfSink, record

REQUIRED = {"activity_id": int, "category_uid": int, "class_uid": int, "metadata": dict, "severity_id": int,
            "time": int, "type_uid": int, "finding_info": dict}
FINDING_INFO_REQUIRED = {"uid": str, "title": str}
METADATA_REQUIRED = {"product": dict, "version": str}
PRODUCT_REQUIRED = {"vendor_name": str}
TIMESTAMPS = ("time", "start_time", "end_time")
INFO_TIMESTAMPS = ("first_seen_time", "last_seen_time", "created_time")
NOW_MS = 1_780_000_000_000


def _typed(obj: dict, spec: dict, where: str) -> None:
    for key, typ in spec.items():
        assert key in obj, f"{where}.{key} missing"
        value = obj[key]
        assert isinstance(value, typ) and not (typ is int and isinstance(value, bool)), f"{where}.{key}: {value!r}"
        if typ is str:
            assert value, f"{where}.{key} is empty"


def validate(rec: dict) -> None:
    _typed(rec, REQUIRED, "event")
    assert rec["class_uid"] == 2004 and rec["category_uid"] == 2 and rec["activity_id"] == 1
    assert rec["type_uid"] == rec["class_uid"] * 100 + rec["activity_id"] == 200401
    assert rec["severity_id"] in (0, 1, 2, 3, 4, 5, 6, 99)
    for key in TIMESTAMPS:
        if key in rec:
            assert isinstance(rec[key], int) and 10**12 <= rec[key] < 10**13, key  # milliseconds
    _typed(rec["metadata"], METADATA_REQUIRED, "metadata")
    assert rec["metadata"]["version"].count(".") == 2
    product = rec["metadata"]["product"]
    _typed(product, PRODUCT_REQUIRED, "metadata.product")
    assert product.get("name") or product.get("uid")
    info = rec["finding_info"]
    _typed(info, FINDING_INFO_REQUIRED, "finding_info")
    for key in INFO_TIMESTAMPS:
        if key in info:
            assert isinstance(info[key], int) and 10**12 <= info[key] < 10**13, key
    if "types" in info:
        assert all(isinstance(t, str) for t in info["types"])
    if "analytic" in info:
        assert isinstance(info["analytic"]["type_id"], int)
    for a in info.get("attacks", []):
        present = [k for k in ("tactic", "technique", "sub_technique") if k in a]
        assert present, a
        for k in present:
            assert isinstance(a[k]["uid"], str) and isinstance(a[k]["name"], str)
    for o in rec.get("observables", []):
        assert isinstance(o["type_id"], int) and isinstance(o["name"], str) and isinstance(o["value"], str)
    for r in rec.get("resources", []):
        assert isinstance(r, dict) and (r.get("uid") or r.get("name"))
    assert isinstance(rec.get("evidences", []), list)


def _lines(findings):
    buf = io.StringIO()
    OcsfSink().render(findings, buf, {"time_ms": NOW_MS})
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def _ms(ts):
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


BARE = Finding(detection="beacon", title="bare", severity="info", score=0.0, first_seen=None, last_seen=None,
               explanation="nothing else known")


def test_every_record_has_the_required_attributes():
    findings = [*one_each(evil=True), BARE]
    recs = _lines(findings)
    assert len(recs) == len(findings)
    for rec in recs:
        validate(rec)


def test_bare_finding_has_no_optional_times_or_entities():
    rec = record(BARE, NOW_MS)
    validate(rec)
    assert "start_time" not in rec and "first_seen_time" not in rec["finding_info"]
    assert "resources" not in rec and "observables" not in rec and "evidences" not in rec


@pytest.mark.parametrize("severity, sid, caption", list(zip(SEVERITIES, [1, 2, 3, 4, 5], [
    "Informational", "Low", "Medium", "High", "Critical"], strict=True)))
def test_severity_mapping(severity, sid, caption):
    rec = record(replace(BARE, severity=severity), NOW_MS)
    assert (rec["severity_id"], rec["severity"]) == (sid, caption)


def test_times_ids_and_text_are_the_findings():
    for f in one_each(evil=True):
        rec = record(f, NOW_MS)
        info = rec["finding_info"]
        assert rec["time"] == NOW_MS == info["created_time"]
        assert rec["start_time"] == info["first_seen_time"] == _ms(f.first_seen)
        assert rec["end_time"] == info["last_seen_time"] == _ms(f.last_seen)
        assert info["uid"] == f.id and info["title"] == f.title and info["desc"] == f.explanation
        assert info["types"][0] == f.detection and info["analytic"]["uid"] == f.detection
        assert rec["risk_score"] == round(f.score * 100)
        assert rec["unmapped"]["bothunt"]["evidence"] == f.to_dict()["evidence"]


def test_attacks_cover_every_technique_with_parent_for_sub_techniques():
    f = one_each()[0]
    attacks = record(f, NOW_MS)["finding_info"]["attacks"]
    uids = [a.get("sub_technique", a["technique"])["uid"] for a in attacks]
    assert uids == list(f.techniques)
    botnet = attacks[0]
    assert botnet["technique"] == {"uid": "T1583", "name": "Acquire Infrastructure",
                                   "src_url": "https://attack.mitre.org/techniques/T1583/"}
    assert botnet["sub_technique"]["name"] == "Acquire Infrastructure: Botnet"
    assert botnet["tactic"] == {"uid": "TA0042", "name": "Resource Development"}


def test_internal_and_remote_sides():
    beacon, flood = one_each(evil=True)[:2]
    b = record(beacon, NOW_MS)
    assert b["evidences"][0]["src_endpoint"] == {"hostname": "ws-017", "ip": "10.1.2.17"}
    assert b["evidences"][0]["dst_endpoint"]["domain"] == EVIL_DOMAIN
    assert b["evidences"][0]["process"]["cmd_line"] == EVIL_CMDLINE
    assert {o["value"] for o in b["observables"]} >= {"ws-017", "10.1.2.17", EVIL_DOMAIN}
    fl = record(flood, NOW_MS)  # inbound: the attacked host is the destination, the resource
    assert fl["evidences"][0]["dst_endpoint"] == {"ip": "10.9.0.5", "port": 22}
    assert fl["resources"] == [{"type": "Device", "labels": ["attacked"], "uid": "10.9.0.5"}]


def test_every_technique_the_detections_declare_has_a_name():
    from importlib import import_module

    for det in ("beacon", "inbound_flood", "relay", "dga", "dns_c2"):
        try:
            mod = import_module(f"bothunt.detections.{det}")
        except ImportError:
            continue
        unknown = [t for t in mod.INFO.techniques if not known(t)]
        assert not unknown, (det, unknown)


def test_unicode_line_breaks_in_attacker_text_keep_one_record_per_line():
    f = replace(BARE, title="a\u2028b\u2029c\x85d", domain="x\u2028.example")
    buf = io.StringIO()
    OcsfSink().render([f, f], buf, {"time_ms": NOW_MS})
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["finding_info"]["title"] == "a\u2028b\u2029c\x85d"
