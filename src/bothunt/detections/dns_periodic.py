"""Periodic lookups of one name by one host: a beacon that resolves its C2 (or talks through DNS) on a
timer. The engine keeps (host, name) pairs with enough lookups over enough time that few hosts share;
their lookup times come back to numpy and go through the beacon statistics (bothunt.periodicity).
Regular lookups alone are what caches do for any name in use, so they stay at info; DNS-specific oddities
(a generated-looking domain, TXT/NULL queries, NXDOMAIN answers, a tiny TTL) raise the score."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt import dga_model, periodicity
from bothunt.config import Settings
from bothunt.detections.base import allowlisted, severity_from_score
from bothunt.detections.dns_names import as_us
from bothunt.detections.flood_campaigns import iso_us
from bothunt.engine import Tables
from bothunt.schema import Finding, finding_id

if TYPE_CHECKING:
    from bothunt.detections.dns_c2 import Params

ID = "dns_c2"
TECHNIQUES = ("T1583.005", "T1071.004")
US = 1_000_000


def events(tables: Tables, q: ibis.Table, pairs: ibis.Table, p: Params) -> pa.Table:
    """Lookup times (and per-lookup facts) of the candidate (host, name) pairs."""
    prev = pairs.group_by("query").agg(name_hosts=pairs.count())
    cand = pairs.join(prev, "query").filter(
        (ibis._.n >= p.periodic_min_lookups) & (ibis._.name_hosts <= p.periodic_max_hosts)
        & (ibis._.last_ts >= ibis._.first_ts + ibis.interval(seconds=int(p.periodic_min_span_seconds))))
    keys = ["src_ip", "hkey", "query"]
    e = q.join(cand.select(*keys), keys)
    ttl = e.ttls.maxs()
    e = e.select(*keys, "ts", "nx", "txt", "ok", ttl=ttl)
    return as_us(tables.to_arrow(e.order_by([*keys, "ts"]).limit(p.periodic_max_events)), t_us="ts")


def analyse(ev: pa.Table, p: Params) -> list[dict[str, Any]]:
    """Per (host, name): rhythm statistics; returns the periodic ones."""
    if ev.num_rows == 0:
        return []
    key = pc.binary_join_element_wise(ev["src_ip"], ev["hkey"], ev["query"], "\x1f")
    enc = pc.dictionary_encode(key).combine_chunks()
    g = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    ng = len(enc.dictionary)
    t = ev["t_us"].to_numpy().astype(np.float64) / US
    order = periodicity.sort_events(g, t)
    g, t = g[order], t[order]
    cols = {c: ev[c].fill_null(0).to_numpy(zero_copy_only=False)[order].astype(np.float64) for c in ("nx", "txt", "ok")}
    ttl = ev["ttl"].fill_null(np.nan).to_numpy(zero_copy_only=False)[order].astype(np.float64)
    start = periodicity.burst_starts(g, t, p.periodic_dedup_seconds)  # A + AAAA of one lookup count once
    gs, ts = g[start], t[start]
    n = periodicity.group_counts(gs, ng)
    stats = periodicity.interval_stats(gs, ts, ng)
    phase = periodicity.phase_search(gs, ts, ng, stats.period, np.full(ng, 0.1))
    pv = periodicity.combine(stats.p_value, phase.fap)
    rows = np.bincount(g, minlength=ng)
    share = {c: np.bincount(g, weights=v, minlength=ng) / np.maximum(rows, 1) for c, v in cols.items()}
    # answers from a cache count down, so the largest TTL seen is the name's own
    ttl_max = np.full(ng, -np.inf)
    fin = np.isfinite(ttl)
    np.maximum.at(ttl_max, g[fin], ttl[fin])
    ttl_max[np.isinf(ttl_max)] = np.nan
    ttl_min = np.full(ng, np.inf)
    np.minimum.at(ttl_min, g[fin], ttl[fin])
    ttl_min[np.isinf(ttl_min)] = np.nan
    keep = np.flatnonzero((n >= p.periodic_min_lookups) & (pv <= p.periodic_max_p_value)
                          & (stats.period >= p.periodic_min_period_seconds))
    first = np.full(ng, np.inf)
    last = np.full(ng, -np.inf)
    np.minimum.at(first, g, t)
    np.maximum.at(last, g, t)
    out = []
    for i in keep.tolist():
        src, hkey, query = str(enc.dictionary[i].as_py()).split("\x1f")
        out.append({
            "src_ip": src, "hkey": hkey, "query": query, "lookups": int(n[i]), "p_value": float(pv[i]),
            "period_s": float(stats.period[i]), "jitter": float(stats.jitter[i]),
            "regularity": float(stats.regularity[i]), "phase_resultant": float(phase.resultant[i]),
            "nx_share": float(share["nx"][i]), "txt_share": float(share["txt"][i]), "ok_share": float(share["ok"][i]),
            "ttl": None if np.isnan(ttl_max[i]) else float(ttl_max[i]),
            "min_ttl": None if np.isnan(ttl_min[i]) else float(ttl_min[i]),
            "first_us": int(first[i] * US), "last_us": int(last[i] * US),
        })
    return out


def score(r: dict[str, Any], label_score: float, high: float) -> tuple[float, dict[str, float]]:
    """Regular lookups alone stay at info (0.12-0.18); each DNS-specific oddity adds to it."""
    parts = {
        "regularity": round(r["regularity"], 3),
        "generated_domain": 1.0 if label_score >= high else 0.0,
        "txt_null_share": round(r["txt_share"], 3),
        "nxdomain_share": round(r["nx_share"], 3),
        "tiny_ttl": 1.0 if r["ttl"] is not None and r["ttl"] <= 10 else 0.0,
    }
    s = (0.12 + 0.06 * parts["regularity"] + 0.25 * parts["generated_domain"] + 0.25 * parts["txt_null_share"]
         + 0.15 * parts["nxdomain_share"] + 0.12 * parts["tiny_ttl"])
    return float(np.clip(s, 0, 1)), parts


def findings(periodic: list[dict[str, Any]], p: Params, high: float, settings: Settings) -> list[Finding]:
    from bothunt.dga_model import registered_domain

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in periodic:
        groups[(r["src_ip"], r["hkey"], registered_domain(r["query"]) or r["query"])].append(r)
    labels = sorted({reg.partition(".")[0] for _, _, reg in groups})
    label_scores = dict(zip(labels, np.asarray(dga_model.score_names(labels), dtype=float).tolist(), strict=True)) \
        if labels else {}
    out = []
    for (src, hkey, reg), rows in sorted(groups.items()):
        rows = sorted(rows, key=lambda r: (r["p_value"], r["query"]))
        best = rows[0]
        ls = label_scores.get(reg.partition(".")[0], 0.0)
        s, parts = score(best, ls, high)
        host = hkey or None
        ev = {
            "kind": "periodic_lookups", "names": [{
                "name": r["query"], "lookups": r["lookups"], "period_s": round(r["period_s"], 2),
                "jitter": round(r["jitter"], 3), "p_value": float(f"{r['p_value']:.3g}"),
                "nxdomain_share": round(r["nx_share"], 3), "txt_null_share": round(r["txt_share"], 3),
                "ttl": r["ttl"], "min_ttl": r["min_ttl"]} for r in rows[: p.sample_names]],
            "label_score": round(ls, 3), "score_threshold": round(high, 4), "score_parts": parts,
        }
        f = Finding(
            id=finding_id(ID, "periodic", host, src, reg), detection=ID,
            title=f"Periodic DNS lookups: {host or src} resolves {best['query']} every {best['period_s']:.0f} s",
            severity=severity_from_score(s), score=round(s, 4), first_seen=iso_us(min(r["first_us"] for r in rows)),
            last_seen=iso_us(max(r["last_us"] for r in rows)), host=host, src_ip=src, domain=reg,
            techniques=TECHNIQUES, evidence=ev, explanation=_explain(src, best, ls, high),
        )
        hits = settings.allowlist.matches(domain=best["query"], ip=src)
        hits += [h for h in settings.allowlist.matches(domain=reg) if h not in hits]
        out.append(allowlisted(f, hits))
    return out


def _explain(src: str, r: dict[str, Any], ls: float, high: float) -> str:
    odd = []
    if ls >= high:
        odd.append(f"the domain looks machine-generated (model score {ls:.2f})")
    if r["txt_share"] > 0:
        odd.append(f"{r['txt_share']:.0%} of the lookups ask for TXT/NULL records")
    if r["nx_share"] > 0:
        odd.append(f"{r['nx_share']:.0%} are answered NXDOMAIN")
    if r["ttl"] is not None and r["ttl"] <= 10:
        odd.append(f"answers carry a TTL of {r['ttl']:.0f} s")
    return (
        f"{src} looked up {r['query']} {r['lookups']} times about every {r['period_s']:.0f} s (jitter "
        f"{r['jitter']:.0%}, chance of such regularity from random lookups {r['p_value']:.2g}); few other hosts "
        f"look it up. " + (("Also: " + "; ".join(odd) + ". ") if odd else "Nothing else about the lookups is odd, "
                           "so this alone is weak: caches re-resolve names in use at every TTL. ")
        + "A bot resolving its C2 on a timer looks like this; benign for an agent or updater of a product you "
        "run (allow-list its domain)."
    )
