"""OCSF: one Detection Finding (class 2004, schema 1.3.0) per finding, as JSON Lines.

Mapping (docs/report.md lists it in full): activity Create (type_uid 200401); severity info..critical ->
severity_id 1..5; `time` is when the record was written and `start_time` / `end_time` (and
finding_info.first_seen_time / last_seen_time) are the finding's first and last event, all epoch
milliseconds; finding_info carries id, title, explanation, detection and category as `types`, the
detection as `analytic` (type Statistical) and the ATT&CK techniques as `attacks`; the internal host and
the remote side are `resources`, `evidences` (src / dst endpoint, process, query) and `observables`; the
bothunt record's score and evidence stay under `unmapped.bothunt`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from bothunt import __version__
from bothunt.guides.attack import ATTACK_VERSION, technique
from bothunt.hostview import entity, parse_time
from bothunt.schema import Finding
from bothunt.sinks.jsonl import one_line

OCSF_VERSION = "1.3.0"
CLASS_UID, CATEGORY_UID, ACTIVITY_CREATE = 2004, 2, 1
SEVERITY_ID = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
SEVERITY_CAPTION = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
ANALYTIC_STATISTICAL = 3
# Observable type ids (OCSF 1.3 observable.type_id).
OBS_HOSTNAME, OBS_IP, OBS_USER, OBS_PROCESS = 1, 2, 4, 9


def _ms(ts: str | None) -> int | None:
    t = parse_time(ts)
    return None if t is None else int(t.timestamp() * 1000)


def attacks(techniques: Sequence[str]) -> list[dict[str, Any]]:
    """One ATT&CK object per technique: sub-techniques name their parent as `technique`."""
    out = []
    for uid in techniques:
        t = technique(uid)
        obj: dict[str, Any] = {"version": ATTACK_VERSION}
        if t.is_sub:
            parent = technique(t.parent)
            obj["technique"] = {"uid": parent.uid, "name": parent.name, "src_url": parent.url}
            obj["sub_technique"] = {"uid": t.uid, "name": t.name, "src_url": t.url}
        else:
            obj["technique"] = {"uid": t.uid, "name": t.name, "src_url": t.url}
        if t.tactic_uid:
            obj["tactic"] = {"uid": t.tactic_uid, "name": t.tactic}
        out.append(obj)
    return out


def _endpoints(f: Finding) -> tuple[dict[str, Any], dict[str, Any]]:
    role, _, _ = entity(f)
    internal: dict[str, Any] = {}
    remote: dict[str, Any] = {}
    if role == "target":  # inbound: the remote side is the source, the internal side the destination
        if f.src_ip:
            remote["ip"] = f.src_ip
        if f.dst_ip:
            internal["ip"] = f.dst_ip
        if f.dst_port is not None:
            internal["port"] = int(f.dst_port)
        return remote, internal
    if f.host:
        internal["hostname"] = f.host
    if f.src_ip:
        internal["ip"] = f.src_ip
    if f.dst_ip:
        remote["ip"] = f.dst_ip
    if f.dst_port is not None:
        remote["port"] = int(f.dst_port)
    if f.domain:
        remote["domain"] = f.domain
    return internal, remote


def _observables(f: Finding) -> list[dict[str, Any]]:
    role, _, _ = entity(f)
    src, dst = ("src", "dst") if role == "actor" else ("dst", "src")
    obs = []
    for name, type_id, value in (
        (f"evidences.{src}_endpoint.hostname", OBS_HOSTNAME, f.host),
        (f"evidences.{src}_endpoint.ip", OBS_IP, f.src_ip if role == "actor" else f.dst_ip),
        (f"evidences.{dst}_endpoint.ip", OBS_IP, f.dst_ip if role == "actor" else f.src_ip),
        (f"evidences.{dst}_endpoint.domain", OBS_HOSTNAME, f.domain),
        ("evidences.process.name", OBS_PROCESS, f.process),
        ("evidences.actor.user.name", OBS_USER, f.user),
    ):
        if value:
            obs.append({"name": name, "type_id": type_id, "value": str(value)})
    return obs


def _resources(f: Finding) -> list[dict[str, Any]]:
    role, name, ip = entity(f)
    if not (name or ip):
        return []
    res: dict[str, Any] = {"type": "Device", "labels": ["attacked" if role == "target" else "suspected"]}
    if name:
        res["name"] = name
    if ip:
        res["uid"] = ip
    return [res]


def record(f: Finding, now_ms: int) -> dict[str, Any]:
    d = f.to_dict()
    sev = SEVERITY_ID[f.severity]
    first, last = _ms(f.first_seen), _ms(f.last_seen)
    category = d["evidence"].get("category") or d["evidence"].get("kind")
    info: dict[str, Any] = {
        "uid": f.id, "title": f.title, "desc": f.explanation,
        "types": [f.detection] + ([str(category)] if category else []),
        "analytic": {"uid": f.detection, "name": f.detection, "type_id": ANALYTIC_STATISTICAL,
                     "type": "Statistical"},
        "attacks": attacks(f.techniques), "created_time": now_ms,
    }
    if first is not None:
        info["first_seen_time"] = first
    if last is not None:
        info["last_seen_time"] = last
    sources = d["evidence"].get("sources")
    if isinstance(sources, list) and sources:
        info["data_sources"] = [str(s) for s in sources]
    src, dst = _endpoints(f)
    evidence: dict[str, Any] = {}
    if src:
        evidence["src_endpoint"] = src
    if dst:
        evidence["dst_endpoint"] = dst
    if f.process:
        proc: dict[str, Any] = {"name": f.process}
        cmd = d["evidence"].get("cmdline_sample") or d["evidence"].get("cmdline")
        if isinstance(cmd, str) and cmd:
            proc["cmd_line"] = cmd
        evidence["process"] = proc
    if f.user:
        evidence["actor"] = {"user": {"name": f.user}}
    if f.detection in ("dga", "dns_c2") and f.domain:
        evidence["query"] = {"hostname": f.domain}
    out: dict[str, Any] = {
        "class_uid": CLASS_UID, "class_name": "Detection Finding", "category_uid": CATEGORY_UID,
        "category_name": "Findings", "activity_id": ACTIVITY_CREATE, "activity_name": "Create",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE, "type_name": "Detection Finding: Create",
        "time": now_ms, "severity_id": sev, "severity": SEVERITY_CAPTION[sev],
        "status_id": 1, "status": "New", "message": f.title, "risk_score": round(float(f.score) * 100),
        "metadata": {"version": OCSF_VERSION, "uid": f.id, "log_name": "bothunt findings",
                     "product": {"name": "bothunt", "vendor_name": "bothunt", "version": __version__,
                                 "uid": "bothunt"}},
        "finding_info": info,
        "unmapped": {"bothunt": {"detection": f.detection, "score": d["score"], "severity": f.severity,
                                 "evidence": d["evidence"]}},
    }
    if first is not None:
        out["start_time"] = first
    if last is not None:
        out["end_time"] = last
    if evidence:
        out["evidences"] = [evidence]
    resources = _resources(f)
    if resources:
        out["resources"] = resources
    observables = _observables(f)
    if observables:
        out["observables"] = observables
    return out


class OcsfSink:
    id = "ocsf"
    extension = ".ocsf.jsonl"

    def render(self, findings: Sequence[Finding], out: TextIO, meta: Mapping[str, Any]) -> None:
        now_ms = int(meta.get("time_ms") or time.time() * 1000)
        for f in findings:
            out.write(one_line(json.dumps(record(f, now_ms), ensure_ascii=False)) + "\n")
