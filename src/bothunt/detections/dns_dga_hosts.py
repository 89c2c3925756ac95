"""The numpy half of the DGA detection: per host, the failed rare domains, their scores, their bursts, the
verdict and the score; then the finding with its evidence and explanation."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.config import Settings
from bothunt.detections.base import allowlisted, severity_from_score
from bothunt.detections.flood_campaigns import iso_us
from bothunt.periodicity import burst_starts
from bothunt.schema import Finding, finding_id

if TYPE_CHECKING:
    from bothunt.detections.dga import Params

ID = "dga"
US = 1_000_000
TECHNIQUES = ("T1583.005", "T1568.002")


@dataclass
class HostVerdict:
    src_ip: str
    host: str
    score: float
    parts: dict[str, float]
    failed: int
    high: int
    burst_names: int
    bursts: list[dict[str, Any]]
    nx_ratio: float
    mean_score: float
    rows: pa.Table  # this host's rare rows, with `score`
    # registered domains that resolved near a burst or look generated -> priority (higher first)
    c2_candidates: dict[str, int] = field(default_factory=dict)


def _col(t: pa.Table, name: str) -> np.ndarray:
    return t[name].to_numpy(zero_copy_only=False)


def judge(rows: pa.Table, scores: np.ndarray, p: Params, high: float) -> list[HostVerdict]:
    """Verdict per host, all hosts at once with segment operations; Python only per flagged host."""
    key = pc.binary_join_element_wise(rows["src_ip"], rows["hkey"], "\x1f")
    enc = pc.dictionary_encode(key).combine_chunks()
    g = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    ng = len(enc.dictionary)
    t = _col(rows, "first_us").astype(np.int64)
    n, nx, ok = (_col(rows, c).astype(np.float64) for c in ("n", "nx", "ok"))
    failed = (nx > 0) & (ok == 0)
    is_high = scores >= high
    order = np.lexsort((t, g))
    fi = order[failed[order]]  # failed rows by (host, time)
    gf, tf = g[fi], t[fi]
    start = burst_starts(gf, tf.astype(np.float64), p.burst_gap_seconds * US)
    bid = np.cumsum(start) - 1
    size = np.bincount(bid, minlength=int(start.sum())) if fi.size else np.zeros(0, np.int64)
    counted = size >= p.burst_min_names
    bounds = np.append(np.flatnonzero(start), fi.size)  # burst b is fi[bounds[b]:bounds[b + 1]]
    in_burst = counted[bid] if fi.size else np.zeros(0, bool)
    n_failed = np.bincount(gf, minlength=ng)
    n_high = np.bincount(gf, weights=is_high[fi], minlength=ng)
    burst_names = np.bincount(gf, weights=in_burst, minlength=ng)
    n_bursts = np.bincount(gf[start], weights=counted, minlength=ng) if fi.size else np.zeros(ng)
    cand = failed | is_high  # the host's generated-looking or failed rare domains
    nx_ratio = np.bincount(g, weights=nx * cand, minlength=ng) / np.maximum(np.bincount(g, weights=n * cand,
                                                                                        minlength=ng), 1)
    hi_ratio = np.bincount(g, weights=nx * is_high, minlength=ng) / np.maximum(
        np.bincount(g, weights=n * is_high, minlength=ng), 1)
    # mean score of the failed domains inside bursts, of all failed ones where there is no burst
    w = np.where(burst_names[gf] > 0, in_burst, True)
    mean_score = np.bincount(gf, weights=scores[fi] * w, minlength=ng) / np.maximum(
        np.bincount(gf, weights=w, minlength=ng), 1)
    flagged = ((n_high >= p.min_high_names) & (hi_ratio >= p.min_nxdomain_ratio)) | (burst_names >= p.min_burst_names)
    out = []
    scored = rows.append_column("score", pa.array(scores))
    for h in np.flatnonzero(flagged):
        parts = {
            "generated_names": min(n_high[h] / p.full_high_names, 1.0),
            "burst_names": min(burst_names[h] / p.full_burst_names, 1.0),
            "repeated_bursts": float(np.clip((n_bursts[h] - 1) / 2.0, 0.0, 1.0)),
            "mean_score": float(mean_score[h]),
            "nxdomain_ratio": float(nx_ratio[h]),
        }
        mine = np.flatnonzero(g == h)
        hb = np.flatnonzero(counted & (gf[start] == h)) if fi.size else np.zeros(0, np.int64)
        bursts = _bursts(hb, bounds, fi, t, scored)
        src, _, hk = str(enc.dictionary[h].as_py()).partition("\x1f")
        verdict = HostVerdict(
            src_ip=src, host=hk, score=0.0, parts=parts, failed=int(n_failed[h]), high=int(n_high[h]),
            burst_names=int(burst_names[h]), bursts=bursts, nx_ratio=float(nx_ratio[h]),
            mean_score=float(mean_score[h]), rows=scored.take(pa.array(mine)))
        _burst_neighbours(verdict, int(p.burst_gap_seconds * US))
        verdict.c2_candidates = _c2_candidates(verdict, bursts, high, p)
        verdict.score = base_score(parts)
        out.append(verdict)
    return out


def base_score(parts: dict[str, float], live_c2: bool = False) -> float:
    """0..1: how many generated-looking failed domains, how many in bursts and how often, how generated
    they look, how much of it failed; a resolved one the host then contacted adds the rest."""
    s = (0.35 * parts["generated_names"] + 0.30 * parts["burst_names"] + 0.10 * parts["repeated_bursts"]
         + 0.10 * parts["mean_score"] + 0.10 * parts["nxdomain_ratio"] + (0.15 if live_c2 else 0.0))
    return float(np.clip(s, 0.0, 1.0))


def _bursts(hb: np.ndarray, bounds: np.ndarray, fi: np.ndarray, t: np.ndarray, scored: pa.Table
            ) -> list[dict[str, Any]]:
    out = []
    regs = scored["reg"]
    score = _col(scored, "score")
    for b in hb.tolist():
        members = fi[bounds[b]: bounds[b + 1]]
        sample = members[np.argsort(-score[members], kind="stable")][:5]
        out.append({"start_us": int(t[members].min()), "end_us": int(t[members].max()), "failed": int(members.size),
                    "sample": [regs[int(i)].as_py() for i in sample]})
    return out


def _burst_neighbours(v: HostVerdict, gap_us: int, limit: int = 20) -> None:
    """Rare domains the host looked up during each burst (within the burst gap of it) that did not fail:
    resolved (sinkholed, parked or live) or unanswered, in time order. The same run of the algorithm."""
    r = v.rows
    t = _col(r, "first_us").astype(np.int64)
    ok, nx = _col(r, "ok"), _col(r, "nx")
    other = ~((nx > 0) & (ok == 0))
    for b in v.bursts:
        idx = np.flatnonzero(other & (t >= b["start_us"] - gap_us) & (t <= b["end_us"] + gap_us))
        idx = idx[np.argsort(t[idx], kind="stable")]
        b["resolved"] = int((ok[idx] > 0).sum())
        b["unanswered"] = int((ok[idx] == 0).sum())
        b["other"] = [{"domain": r["reg"][int(i)].as_py(), "outcome": "resolved" if ok[i] > 0 else "no answer"}
                      for i in idx[:limit]]


def _c2_candidates(v: HostVerdict, bursts: list[dict[str, Any]], high: float, p: Params) -> dict[str, int]:
    """Rare domains this host resolved near one of its bursts, or that score as generated, with a priority:
    resolved inside a burst (4), generated-looking (2), looked up by this device alone (1). A bot stops
    its burst when a name answers; browsing that happens to run alongside rarely sits inside it."""
    r = v.rows
    ok = _col(r, "ok") > 0
    t = _col(r, "first_us").astype(np.int64)
    score = _col(r, "score")
    near = np.zeros(r.num_rows, dtype=bool)
    inside = np.zeros(r.num_rows, dtype=bool)
    margin = int(p.c2_margin_seconds * US)
    for b in bursts:
        near |= (t >= b["start_us"] - margin) & (t <= b["end_us"] + margin)
        inside |= (t >= b["start_us"]) & (t <= b["end_us"])
    gen = score >= high
    prio = 4 * inside + 2 * gen + (_col(r, "reg_hosts") == 1)
    pick = np.flatnonzero(ok & (near | gen))
    pick = pick[np.lexsort((-score[pick], -prio[pick]))][:50]
    return {r["reg"][int(i)].as_py(): int(prio[i]) for i in pick}


def live_c2(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The contacted candidate that counts as the live C2: resolved inside a burst or generated-looking."""
    return candidates[0] if candidates and candidates[0]["priority"] >= 2 else None


def findings(verdicts: list[HostVerdict], totals: pa.Table, live: dict[tuple[str, str], list[dict[str, Any]]],
             p: Params, high: float, n_hosts: int, settings: Settings) -> list[Finding]:
    wanted = pa.array(sorted({f"{v.src_ip}\x1f{v.host}" for v in verdicts}), pa.string())
    keys = pc.binary_join_element_wise(totals["src_ip"], totals["hkey"], "\x1f")
    tot = {(r["src_ip"], r["hkey"]): r for r in totals.filter(pc.is_in(keys, value_set=wanted)).to_pylist()}
    out = []
    for v in verdicts:
        contacted = live.get((v.src_ip, v.host), [])
        top = live_c2(contacted)
        c2 = [top] if top else []
        score = base_score(v.parts, live_c2=bool(c2))
        domain = c2[0]["domain"] if c2 else _shared_domain(v)
        ev = _evidence(v, tot.get((v.src_ip, v.host), {}), c2, p, high, n_hosts)
        ev["resolved_and_contacted"] = contacted[: p.sample_names]
        r = v.rows
        failed = (_col(r, "nx") > 0) & (_col(r, "ok") == 0)  # the DGA activity, not the host's other lookups
        times = _col(r, "first_us").astype(np.int64)[failed]
        last = _col(r, "last_us").astype(np.int64)[failed]
        f = Finding(
            id=finding_id(ID, v.host or None, v.src_ip),
            detection=ID, title=_title(v, c2), severity=severity_from_score(score), score=round(score, 4),
            first_seen=iso_us(int(times.min())), last_seen=iso_us(int(last.max())),
            explanation=_explain(v, c2, high), host=v.host or None, src_ip=v.src_ip, domain=domain,
            dst_ip=c2[0]["connection"]["dst_ip"] if c2 else None,
            dst_port=c2[0]["connection"]["dst_port"] if c2 else None,
            # The lookups carry no process (DNS logs and Defender's DNS inspection have none); the live
            # C2 connection does when an EDR recorded it, and that is the process to look at.
            process=c2[0]["connection"]["process"] if c2 else None,
            techniques=TECHNIQUES, evidence=ev,
        )
        out.append(allowlisted(f, settings.allowlist.matches(domain=domain, ip=v.src_ip)))
    return out


def _shared_domain(v: HostVerdict) -> str | None:
    """The registered domain most of the host's failed names sit under, when one does (DGAs that
    generate subdomains of one domain); else None."""
    r = v.rows
    names = _col(r, "names").astype(np.int64)
    failed = (_col(r, "nx") > 0) & (_col(r, "ok") == 0)
    if not failed.any():
        return None
    i = int(np.argmax(np.where(failed, names, -1)))
    return r["reg"][i].as_py() if names[i] * 2 >= names[failed].sum() and names[i] > 1 else None


def _evidence(v: HostVerdict, tot: dict[str, Any], c2: list[dict[str, Any]], p: Params, high: float,
              n_hosts: int) -> dict[str, Any]:
    r = v.rows
    score = _col(r, "score")
    failed = (_col(r, "nx") > 0) & (_col(r, "ok") == 0)
    top = np.argsort(-np.where(failed, score, -1.0), kind="stable")[: p.sample_names]
    samples = [{"domain": r["reg"][int(i)].as_py(), "name": r["example"][int(i)].as_py(),
                "score": round(float(score[i]), 3), "lookups": int(r["n"][int(i)].as_py()),
                "nxdomain": int(r["nx"][int(i)].as_py()), "resolved": bool(r["ok"][int(i)].as_py() > 0),
                "first_seen": iso_us(int(r["first_us"][int(i)].as_py()))} for i in top]
    bursts = sorted(v.bursts, key=lambda b: -b["failed"])[: p.sample_names]
    return {
        "failed_rare_domains": v.failed,
        "generated_looking": v.high,
        "score_threshold": round(high, 4),
        "mean_score": round(v.mean_score, 3),
        "nxdomain_ratio": round(v.nx_ratio, 3),
        "domains_in_bursts": v.burst_names,
        "bursts": len(v.bursts),
        "burst_times": [{"start": iso_us(b["start_us"]), "end": iso_us(b["end_us"]), "failed_domains": b["failed"],
                         "sample": b["sample"], "also_resolved": b.get("resolved", 0),
                         "also_unanswered": b.get("unanswered", 0), "other_names": b.get("other", [])}
                        for b in sorted(bursts, key=lambda b: b["start_us"])],
        "sample_names": samples,
        "host_lookups": int(tot.get("lookups") or 0),
        "host_nxdomain": int(tot.get("nxdomain") or 0),
        "host_names": int(tot.get("names") or 0),
        "devices_in_data": n_hosts,
        "rare_domains": int(r.num_rows),
        "resolved_candidates": list(v.c2_candidates)[: p.sample_names],
        "live_c2": c2,
        "score_parts": {k: round(x, 3) for k, x in v.parts.items()},
    }


def _title(v: HostVerdict, c2: list[dict[str, Any]]) -> str:
    who = v.host or v.src_ip
    base = f"DGA bot: {who} failed to resolve {v.failed} rare domains"
    if c2:
        return base + f", then connected to generated domain {c2[0]['domain']}"
    return base + (f" in {len(v.bursts)} burst(s)" if v.bursts else "")


def _explain(v: HostVerdict, c2: list[dict[str, Any]], high: float) -> str:
    failed = (_col(v.rows, "nx") > 0) & (_col(v.rows, "ok") == 0)
    tlds = Counter(str(x).rsplit(".", 1)[-1] for x in v.rows["reg"].filter(pa.array(failed)).to_pylist())
    parts = [
        f"{v.src_ip}{f' ({v.host})' if v.host else ''} looked up {v.failed} registered domains that at most a "
        f"few hosts in the data looked up and that never resolved for it (NXDOMAIN share of the lookups "
        f"{v.nx_ratio:.0%});",
        f"{v.high} of them score as machine-generated (model score >= {high:.2f}, mean {v.mean_score:.2f})"
        + (f", and {v.burst_names} arrived in {len(v.bursts)} burst(s) of new names" if v.bursts else "") + ".",
        f"Most common top-level domains: {', '.join(f'.{k}' for k, _ in tlds.most_common(3))}.",
    ]
    if c2:
        c = c2[0]
        parts.append(f"{c['name']} resolved to {c['connection']['dst_ip']} and the host connected to it on port "
                     f"{c['connection']['dst_port']} {c['connection']['delay_s']:.0f} s later: the likely live C2.")
    parts.append("A domain-generation algorithm tries its day's names until one answers. Benign if the host "
                 "resolves lists of domains for a living (mail server checking senders, crawler, security "
                 "tool): allow-list it.")
    return " ".join(parts)
