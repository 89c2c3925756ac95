"""Campaign findings: the campaign's sources from the engine, then score, evidence and explanation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from bothunt.config import Settings
from bothunt.detections.base import allowlisted, lower_severity, severity_from_score
from bothunt.detections.flood_campaigns import Campaign, iso_us
from bothunt.detections.flood_ports import AUTH_PORTS, CATEGORIES, capital, fast_category, slow_category
from bothunt.detections.flood_queries import campaign_sources
from bothunt.schema import Finding, finding_id

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from bothunt.detections.inbound_flood import Params
    from bothunt.engine import Tables

ID = "inbound_flood"
# Without history there is no per-source reference: a page view opens a handful of connections.
VISITOR_CONNECTIONS_PER_BIN = 5.0

BENIGN = {
    "http": "a planned launch or news event brought real visitors (attempts per source then stay near the "
            "baseline and nothing fails), or a load test you ordered",
    "auth": "many legitimate users moved onto this service at once, or an authorised penetration test",
    "mail": "a wave of replies to a newsletter or a partner's bulk delivery",
    "other": "a newly deployed application with many legitimate clients listens on this port",
}


def source_rows(tables: Tables, inb: ir.Table, campaigns: list[Campaign]) -> dict[int, dict[str, np.ndarray]]:
    """Per campaign: one entry per source with its attempts and outcomes inside the campaign."""
    if not campaigns:
        return {}
    cam = pa.table({"cid": [c.cid for c in campaigns], "dst_ip": [c.dst_ip for c in campaigns],
                    "dport": pa.array([c.dport for c in campaigns], pa.int32()),
                    "lo_us": [c.lo_us for c in campaigns], "hi_us": [c.hi_us for c in campaigns]})
    rows = tables.to_arrow(campaign_sources(inb, cam))
    cid = rows["cid"].to_numpy()
    cols = {k: (rows[k].to_numpy(zero_copy_only=False) if k == "src_ip" else rows[k].to_numpy().astype(np.int64))
            for k in rows.column_names if k != "cid"}
    return {int(c): {k: v[cid == c] for k, v in cols.items()} for c in np.unique(cid)}


def summarise(rows: dict[str, np.ndarray], top: int) -> dict[str, Any]:
    n = rows["n"]
    total = int(n.sum())
    order = np.lexsort((rows["src_ip"].astype(str), -n))
    est, rej, att = int(rows["est"].sum()), int(rows["rej"].sum()), int(rows["att"].sum())
    denied = int(rows["denied"].sum())
    return {
        "attempts": total,
        "distinct_sources": int(n.size),
        "attempts_per_source": {"median": float(np.median(n)), "max": int(n.max())},
        "outcomes": {"accepted": est, "refused": rej, "unanswered": att, "other_or_unknown": total - est - rej - att,
                     "service_answered": int(rows["answered"].sum()), "denied_by_firewall": denied,
                     "allowed_by_firewall": total - denied},
        "failed_share": round(int(rows["fail"].sum()) / total, 4),
        "suspect_share": (round(int(rows["suspect"].sum()) / int(rows["judged"].sum()), 4)
                          if int(rows["judged"].sum()) else None),
        # nothing answered and every row says so (an unknown outcome could have been a session)
        "unanswered": int(rows["answered"].sum()) == 0 and int(rows["known"].sum()) == total,
        "first_us": int(rows["first"].min()),
        "last_us": int(rows["last"].max()),
        "top_sources": [{"ip": str(rows["src_ip"][i]), "attempts": int(n[i]), "share": round(float(n[i]) / total, 4)}
                        for i in order[:top]],
    }


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def score_fast(c: Campaign, s: dict[str, Any], p: Params) -> tuple[float, dict[str, float]]:
    """Magnitude alone never reaches medium: a surge of ordinary visitors is big but behaves normally.
    Behaviour (attempts per source above the baseline, failures above the baseline, an authentication or
    mail port) is what raises a campaign."""
    history = c.judged_by == "history"
    ref = c.baseline.get("threshold_requests") if history else p.floor_requests
    mag = _clip(np.log10(c.peak["requests"] / max(float(ref or 1.0), 1.0)))
    during = c.during.get("requests_per_source_per_bin") or 0.0
    base = c.baseline.get("requests_per_source_per_bin") if history else None
    ratio = during / max(base if base else VISITOR_CONNECTIONS_PER_BIN, 1.0)
    intensity = _clip(np.log2(max(ratio, 1e-9)) / 3) * (1.0 if base else 0.7)
    failed = _clip(((c.during.get("failed_share") or 0.0) - (c.baseline.get("failed_share") or 0.0)) / 0.5)
    port = {"auth": 0.9, "mail": 0.5}.get(c.kind, 0.0)
    behaviour = max(intensity, failed, port)
    score = _clip(0.15 + 0.2 * mag + 0.55 * behaviour + 0.1 * mag * behaviour)
    return score, {"magnitude": round(mag, 3), "per_source_intensity": round(intensity, 3),
                   "failures": round(failed, 3), "service_kind": port}


def score_slow(c: Campaign, s: dict[str, Any], p: Params) -> tuple[float, dict[str, float]]:
    spread = _clip(np.log10(s["distinct_sources"] / max(p.slow_min_sources, 1)))
    suspect = s["suspect_share"] if s["suspect_share"] is not None else 0.5
    duration = _clip(c.flagged_bins * c.bin_seconds / 3600 / 12)
    history = 1.0 if c.judged_by == "history" else 0.5
    score = _clip(0.3 + 0.25 * spread + 0.2 * suspect + 0.1 * duration + 0.1 * history)
    return score, {"spread": round(spread, 3), "failed_or_short": round(suspect, 3),
                   "duration": round(duration, 3), "history": history}


def _service(c: Campaign) -> str:
    name = AUTH_PORTS.get(c.dport) or (c.words[0] if c.words else None)
    return f"{c.dst_ip}:{c.dport}" + (f" ({name})" if name else "")


def _baseline_text(c: Campaign, p: Params) -> str:
    b = c.baseline
    if c.judged_by != "history":
        if c.pattern == "fast":
            return (f"the service had less than {p.min_history_hours:g} h of history, so the published floors "
                    f"(> {p.floor_requests} connections and > {p.floor_sources} sources per bin) applied")
        return (f"the service had less than {p.slow_min_history_hours:g} h of history, so hours counted when "
                f"they had more sources than the service's level over the whole data "
                f"({b['level_sources_per_hour']:g} per hour) or, on a login port, at least "
                f"{p.slow_min_suspect_share:.0%} failed or short attempts")
    hours = b["history_bins"] * c.bin_seconds / 3600
    if c.pattern == "fast":
        return (f"over the previous {hours:g} h the service had a median of {b['median_requests']:g} connections per "
                f"bin (threshold {b['threshold_requests']:g})")
    return (f"over the previous {hours:g} h the service had a median of {b['median_sources']:g} sources and "
            f"{b['median_new_sources']:g} sources new to it per hour (thresholds {b['threshold_sources']:g} and "
            f"{b['threshold_new_sources']:g})")


def explain(c: Campaign, s: dict[str, Any], category: str, p: Params) -> str:
    label = CATEGORIES[category][0]
    o = s["outcomes"]
    width = f"{c.bin_seconds // 60}-minute" if c.bin_seconds < 3600 else f"{c.bin_seconds // 3600}-hour"
    first, last = iso_us(s["first_us"]), iso_us(s["last_us"])
    text = (f"{capital(label)}: {s['distinct_sources']} distinct sources made {s['attempts']} connections "
            f"to {_service(c)} between {first} and {last} ({c.flagged_bins} anomalous {width} bins). ")
    if c.pattern == "fast":
        base = c.baseline.get("requests_per_source_per_bin")
        text += (f"The busiest bin had {c.peak['requests']} connections; {_baseline_text(c, p)}. Sources made "
                 f"{c.during.get('requests_per_source_per_bin') or 0:g} connections each per bin"
                 + (f" (baseline {base:g})" if base and c.judged_by == "history" else "") + ". ")
    else:
        text += (f"Up to {c.peak['sources']} sources per hour with a median of "
                 f"{s['attempts_per_source']['median']:g} attempts each, so no 5-minute bin stood out; "
                 f"{_baseline_text(c, p)}. ")
    text += (f"Outcomes: {o['accepted']} accepted, {o['refused']} refused, {o['unanswered']} unanswered, "
             f"{o['denied_by_firewall']} denied by the firewall (counted: the published rule drops them). ")
    if s["top_sources"]:
        t = s["top_sources"][0]
        text += f"The busiest source, {t['ip']}, carried {t['share']:.0%} of the attempts. "
    if s["unanswered"] and c.kind in ("auth", "mail"):
        text += "No attempt was answered (closed, filtered or denied), so nothing could be guessed or delivered. "
    return text + f"Benign if {BENIGN[c.kind]}."


def _source_allowlist(rows: dict[str, np.ndarray], settings: Settings) -> list[str]:
    """Allow-listed sources carrying most of the attempts make the campaign theirs (a hired load test)."""
    if not settings.allowlist.cidrs:
        return []
    n = rows["n"]
    hit_n: dict[str, int] = {}
    for ip, k in zip(rows["src_ip"].tolist(), n.tolist(), strict=True):
        for h in settings.allowlist.matches(ip=ip):
            hit_n[h] = hit_n.get(h, 0) + int(k)
    covered = sum(hit_n.values())
    if covered * 2 < int(n.sum()):
        return []
    return [f"{h} (sources carrying {k / int(n.sum()):.0%} of attempts)" for h, k in sorted(hit_n.items())]


def findings(campaigns: list[Campaign], per: dict[int, dict[str, np.ndarray]], p: Params,
             settings: Settings) -> list[Finding]:
    out = []
    for c in campaigns:
        rows = per.get(c.cid)
        if rows is None:
            continue
        s = summarise(rows, p.top_sources)
        if c.pattern == "slow" and s["distinct_sources"] < p.slow_min_sources:
            continue
        category = fast_category(c.kind) if c.pattern == "fast" else slow_category(c.kind, c.dport)
        score, parts = (score_fast if c.pattern == "fast" else score_slow)(c, s, p)
        severity = severity_from_score(score)
        if s["unanswered"] and c.kind in ("auth", "mail"):
            severity = lower_severity(severity, 2)
        label = CATEGORIES[category][0]
        evidence = {
            "category": category, "pattern": "low_and_slow" if c.pattern == "slow" else "burst",
            "distributed": True, "service": {"dst_ip": c.dst_ip, "dst_port": c.dport, "kind": c.kind,
                                             "sensor_services": list(c.words)},
            "bin_seconds": c.bin_seconds, "judged_by": c.judged_by, "baseline": c.baseline,
            "campaign_rates": c.during, "peak": c.peak, "anomalous_bins": c.flagged_bins, "bins": c.bins,
            "bins_listed": len(c.bins), **{k: v for k, v in s.items() if k not in ("first_us", "last_us")},
            "score_parts": parts,
        }
        f = Finding(
            detection=ID, title=f"{capital(label)} against {_service(c)} from {s['distinct_sources']} sources",
            severity=severity, score=round(score, 4), first_seen=iso_us(s["first_us"]),
            last_seen=iso_us(s["last_us"]), explanation=explain(c, s, category, p),
            id=finding_id(ID, category, c.dst_ip, c.dport, c.lo_us),
            dst_ip=c.dst_ip, dst_port=c.dport, techniques=("T1583.005", *CATEGORIES[category][1]),
            evidence=evidence,
        )
        hits = settings.allowlist.matches(ip=c.dst_ip) + _source_allowlist(rows, settings)
        out.append(allowlisted(f, hits))
    return out
