"""Findings for periodic pairs: evidence from their connections, severity modifiers (fleet prevalence,
service ports, allow-lists) and an explanation in plain words."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from bothunt.config import Settings
from bothunt.detections.base import allowlisted, lower_severity, severity_from_score
from bothunt.detections.beacon_query import EPOCH
from bothunt.detections.beacon_refine import Scored, byte_regularity, host_keys, mad, phase_locked
from bothunt.netclass import parse_ip
from bothunt.schema import SEVERITIES, Finding, finding_id, iso

if TYPE_CHECKING:
    from bothunt.detections.beacon import Params

ID = "beacon"
TIMELINE_POINTS = 2000  # connection times kept in evidence for the report plot
SORT = ("pair", "t_us", "dst_ip", "dst_port", "src_ip", "bytes_out", "bytes_in")


@dataclass(frozen=True)
class Context:
    scored: Scored
    described: dict[int, dict[str, Any]]
    prevalence: np.ndarray  # hosts with a periodic pair to the same destination, per pair
    contact: dict[str, int]  # hosts with repeated contact of any shape, per destination
    total_hosts: int
    params: Params
    settings: Settings


def _top(values: list[Any], k: int) -> list[tuple[Any, int]]:
    counts = Counter(v for v in values if v is not None and v != "")
    return sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:k]


def _first(values: list[Any]) -> Any:
    top = _top(values, 1)
    return top[0][0] if top else None


def describe(rows: pa.Table, top: int) -> dict[int, dict[str, Any]]:
    """What each pair's connections show (a Python pass per reported pair, not per event)."""
    if rows.num_rows == 0:
        return {}
    rows = rows.sort_by([(c, "ascending") for c in SORT])
    pair = rows.column("pair").to_numpy()
    cuts = np.flatnonzero(np.diff(pair)) + 1
    bounds = zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [pair.size]]), strict=True)
    out: dict[int, dict[str, Any]] = {}
    for lo, hi in bounds:
        part = rows.slice(int(lo), int(hi - lo)).to_pydict()
        failed = np.asarray(part["failed"], dtype=bool)
        sizes = np.asarray([np.nan if b is None else b for b in part["bytes_out"]], dtype=np.float64)
        back = np.asarray([np.nan if b is None else b for b in part["bytes_in"]], dtype=np.float64)
        ok_sizes = sizes[~failed]
        internal = [f"{ip}:{port}" for ip, port, d in zip(part["dst_ip"], part["dst_port"], part["direction"],
                                                          strict=True) if d == "internal"]
        out[int(pair[lo])] = {
            "t_us": np.asarray(part["t_us"], dtype=np.int64),
            "connections": int(hi - lo),
            "failed": int(failed.sum()),
            "bytes_out_median": float(np.nanmedian(ok_sizes)) if np.isfinite(ok_sizes).any() else None,
            "bytes_in_median": float(np.nanmedian(back[~failed])) if np.isfinite(back[~failed]).any() else None,
            "bytes_regularity": byte_regularity(ok_sizes),
            "dst_ips": _top(part["dst_ip"], top),
            "dst_addresses": len({x for x in part["dst_ip"] if x}),
            "dst_ports": _top(part["dst_port"], top),
            "src_ips": _top(part["src_ip"], top),
            "process": _first(part["process"]),
            "cmdline": _first(part["cmdline"]),
            "user": _first(part["user"]),
            "proto": _first(part["proto"]),
            "service": _first(part["service"]),
            "sources": sorted({s for s in part["source"] if s}),
            "labels": dict(_top(part["label"], top)),
            "proxy": _first(internal),
        }
    return out


def _dur(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.3g} s"
    if seconds < 5400:
        return f"{seconds / 60:.3g} min"
    if seconds < 172800:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"


def _p(p: float) -> str:
    return "< 1e-300" if p <= 1e-300 else f"{p:.1e}"


def _techniques(port: int | None, service: str | None) -> tuple[str, ...]:
    svc = (service or "").lower()
    web = port in (80, 443, 8080, 8443) or any(s in svc for s in ("http", "ssl", "tls"))
    tls = port in (443, 8443, 993, 995) or any(s in svc for s in ("ssl", "tls"))
    return ("T1583.005", "T1071") + (("T1071.001",) if web else ()) + (("T1573",) if tls else ())


def _allow_hits(ctx: Context, d: dict[str, Any], process: str | None, domain: str | None) -> list[str]:
    al = ctx.settings.allowlist
    hits = al.matches(process=process, domain=domain)
    for ip, _ in d["dst_ips"] + d["src_ips"]:
        hits += al.matches(ip=ip)
    proto = (d["proto"] or "").lower()
    hits += [f"service_port:{s}" for s in ctx.params.service_ports
             if any(s.lower() == f"{proto}/{port}" for port, _ in d["dst_ports"])]
    return list(dict.fromkeys(hits))


def _interval_mad(t_us: np.ndarray, burst_s: float) -> float:
    t = np.sort(t_us).astype(np.float64) / 1e6
    beats = t[np.concatenate([[True], np.diff(t) > burst_s])] if t.size else t
    return mad(np.diff(beats))


def _num(x: float, nd: int = 4) -> float | None:
    return round(float(x), nd) if np.isfinite(x) else None


def pair_finding(ctx: Context, i: int) -> Finding:
    s, p = ctx.scored, ctx.params
    d = ctx.described.get(i) or describe_empty()
    row = {k: s.pairs.column(k)[i].as_py() for k in ("hk", "pk", "sk", "dk", "n", "t_first", "t_last")}
    name_keyed = ":" not in row["dk"]  # an address key is ip:port; names never hold a colon
    domain = row["dk"] if name_keyed and parse_ip(row["dk"]) is None else None  # Host: 1.2.3.4 is no domain
    dst_ip = d["dst_ips"][0][0] if d["dst_ips"] else (None if name_keyed else row["dk"].rsplit(":", 1)[0])
    dst_port = d["dst_ports"][0][0] if d["dst_ports"] else None
    process = d["process"] or (row["pk"] or None)
    st = s.stats
    breg = d["bytes_regularity"]
    score = float(np.clip(s.score[i] + p.bytes_weight * (breg or 0.0) * s.confidence[i], 0.0, 1.0))
    severity = severity_from_score(score)
    hosts = int(ctx.prevalence[i])
    span_s = (row["t_last"] - row["t_first"]) / 1e6
    phase = None
    if s.phase_tested[i]:
        phase = {"period_s": _num(s.phase_period[i], 3), "resultant": _num(s.phase_resultant[i]),
                 "false_alarm_p": float(s.phase_fap[i]), "periods_tried": _num(s.phase_trials[i], 1)}
    evidence = {
        "connections": row["n"], "check_ins": int(s.beats[i]), "span_hours": round(span_s / 3600, 3),
        "median_interval_s": _num(st.median[i], 3), "period_s": _num(st.period[i], 3),
        "jitter_pct": _num(100 * st.jitter[i], 1), "mad_interval_s": _num(_interval_mad(d["t_us"], p.burst_seconds), 3),
        "bowley_skew": _num(st.bowley[i]), "interval_p_value": float(st.p_value[i]), "phase": phase,
        "p_value": float(s.p_value[i]), "regularity": _num(s.regularity[i]), "confidence": _num(s.confidence[i]),
        "bytes": {"out_median": d["bytes_out_median"], "in_median": d["bytes_in_median"],
                  "regularity": None if breg is None else round(breg, 4)},
        "failed": d["failed"], "failed_share": round(d["failed"] / max(d["connections"], 1), 4),
        "prevalence": {"hosts": hosts, "contacting_hosts": ctx.contact.get(row["dk"], hosts),
                       "total_hosts": ctx.total_hosts, "share": round(hosts / max(ctx.total_hosts, 1), 4)},
        "process_sample": process, "cmdline_sample": d["cmdline"], "user": d["user"],
        "src_ips": [ip for ip, _ in d["src_ips"]], "destination": row["dk"],
        "dst_ips": [ip for ip, _ in d["dst_ips"]], "dst_addresses": d["dst_addresses"],
        "dst_ports": [port for port, _ in d["dst_ports"]], "proxy": d["proxy"], "sources": d["sources"],
        # The report's timeline and interval histogram (docs/report.md plot contract).
        "timeline": [round(t / 1e6, 3) for t in np.sort(d["t_us"])[:TIMELINE_POINTS].tolist()],
    }
    if d["labels"]:
        evidence["labels"] = d["labels"]
    who = " ".join(x for x in (row["hk"] or None, process) if x) or (d["src_ips"][0][0] if d["src_ips"] else "?")
    f = Finding(
        detection=ID,
        title=f"Beacon: {who} -> {row['dk']} every ~{_dur(st.period[i])} (jitter {100 * st.jitter[i]:.0f}%)",
        severity=severity, score=score, first_seen=iso_us(row["t_first"]), last_seen=iso_us(row["t_last"]),
        explanation=_explain(ctx, i, d, who, row, span_s, hosts),
        id=finding_id(ID, row["hk"], row["pk"], row["sk"], row["dk"]),
        host=row["hk"] or None, src_ip=d["src_ips"][0][0] if d["src_ips"] else (row["sk"] or None),
        user=d["user"], process=process, dst_ip=dst_ip, dst_port=dst_port, domain=domain,
        techniques=_techniques(dst_port, d["service"]), evidence=evidence,
    )
    return allowlisted(f, _allow_hits(ctx, d, process, domain))


def describe_empty() -> dict[str, Any]:
    return {"t_us": np.zeros(0, np.int64), "connections": 0, "failed": 0, "bytes_out_median": None,
            "bytes_in_median": None, "bytes_regularity": None, "dst_ips": [], "dst_addresses": 0,
            "dst_ports": [], "src_ips": [], "process": None, "cmdline": None, "user": None, "proto": None,
            "service": None, "sources": [], "labels": {}, "proxy": None}


def iso_us(us: int | None) -> str | None:
    return None if us is None else iso(EPOCH + timedelta(microseconds=int(us)))


def _explain(ctx: Context, i: int, d: dict[str, Any], who: str, row: dict[str, Any], span_s: float,
             hosts: int) -> str:
    s, st = ctx.scored, ctx.scored.stats
    parts = [
        f"{who} connected to {row['dk']} {row['n']} times over {_dur(span_s)} ({int(s.beats[i])} check-ins "
        f"after merging bursts) at a steady rhythm: typically every {_dur(st.period[i])}, with the middle half "
        f"of the intervals within {100 * st.jitter[i]:.0f}% of each other (median interval "
        f"{_dur(st.median[i])}).",
        f"Random connections with the same count and span would look this regular with probability "
        f"{_p(float(s.p_value[i]))}.",
    ]
    if phase_locked(s.phase_tested[i:i + 1], s.phase_fap[i:i + 1], s.phase_resultant[i:i + 1],
                    ctx.params.max_p_value)[0]:
        parts.append(f"The check-ins keep a fixed clock (phase-locked at {_dur(s.phase_period[i])}), as a "
                     f"scheduler or fixed-schedule implant does.")
    if d["failed"]:
        parts.append(f"{d['failed']} of {d['connections']} attempts failed (refused or unanswered): an implant "
                     f"retrying an unreachable server looks like this.")
    if d["bytes_regularity"] is not None and d["bytes_regularity"] >= 0.8:
        parts.append("The requests are nearly the same size every time, as automated check-ins are.")
    if d["proxy"]:
        parts.append(f"The connections went through the proxy {d['proxy']}; {row['dk']} is the real target.")
    if d["dst_addresses"] > 1 and ":" not in row["dk"]:
        parts.append(f"The name resolved to {d['dst_addresses']} addresses over time (CDN or fast flux).")
    parts.append(f"{hosts} host(s) of {ctx.total_hosts} contact this destination at a rhythm. It is benign if "
                 f"{row['dk']} is a service this software is meant to poll (an update, sync, licence or "
                 f"monitoring agent): allow-list the domain or process; a rhythm shared by many hosts points "
                 f"to such a service.")
    return " ".join(parts)


def fleet_finding(ctx: Context, dest: str, members: np.ndarray) -> Finding:
    """One finding for a destination that a large share of hosts contact periodically."""
    s, p = ctx.scored, ctx.params
    hosts = sorted(set(host_keys(s.pairs.take(pa.array(members)))))
    share = len(hosts) / max(ctx.total_hosts, 1)
    best = int(members[np.argmax(s.score[members])])
    d = ctx.described.get(best) or describe_empty()
    sev = severity_from_score(float(np.max(s.score[members])))
    sev = SEVERITIES[min(SEVERITIES.index(lower_severity(sev, 2)), SEVERITIES.index("low"))]
    period = float(np.nanmedian(s.stats.period[members]))
    jitter = float(np.nanmedian(s.stats.jitter[members]))
    domain = dest if ":" not in dest and parse_ip(dest) is None else None
    procs = _top([s.pairs.column("pk")[int(m)].as_py() for m in members], p.top)
    first = int(min(s.pairs.column("t_first")[int(m)].as_py() for m in members))
    last = int(max(s.pairs.column("t_last")[int(m)].as_py() for m in members))
    f = Finding(
        detection=ID, title=f"Fleet-wide rhythm: {len(hosts)} hosts -> {dest} every ~{_dur(period)}",
        severity=sev, score=float(np.clip(np.max(s.score[members]) * 0.3, 0.0, 1.0)),
        first_seen=iso_us(first), last_seen=iso_us(last),
        explanation=(f"{len(hosts)} of {ctx.total_hosts} hosts ({100 * share:.0f}%) contact {dest} at a steady "
                     f"rhythm (median period {_dur(period)}, jitter {100 * jitter:.0f}%), from "
                     f"{', '.join(x or '?' for x, _ in procs)}. A rhythm shared by much of the fleet is usually "
                     f"an OS, telemetry, update or licence service, so it is reported once, at {sev}. If this "
                     f"software is not expected on all these hosts, treat it as a spreading infection."),
        id=finding_id(ID, "fleet", dest), domain=domain,
        dst_ip=d["dst_ips"][0][0] if d["dst_ips"] else None,
        dst_port=d["dst_ports"][0][0] if d["dst_ports"] else None,
        techniques=_techniques(d["dst_ports"][0][0] if d["dst_ports"] else None, d["service"]),
        evidence={"fleet": True, "prevalence": {"hosts": len(hosts), "contacting_hosts": ctx.contact.get(dest),
                                                "total_hosts": ctx.total_hosts, "share": round(share, 4)},
                  "hosts_sample": hosts[: p.top], "processes": [x for x, _ in procs],
                  "median_period_s": round(period, 3), "median_jitter_pct": round(100 * jitter, 1),
                  "min_p_value": float(np.min(s.p_value[members])), "destination": dest,
                  "dst_ips": [ip for ip, _ in d["dst_ips"]], "sources": d["sources"]},
    )
    return allowlisted(f, _allow_hits(ctx, d, None, domain))
