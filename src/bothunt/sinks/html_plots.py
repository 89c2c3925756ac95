"""The plot-data contract of the HTML report: which evidence keys each picture reads, and their reduction
to small drawing-ready panels (the browser draws panels; it never interprets evidence itself).

A finding gets the first picture of its detection whose `reads` keys are all present and usable; with
none it gets no picture, only its evidence table, and the report names the keys that were missing
(`missing_keys`). docs/report.md describes the same contract for people writing detections.

Panel types the browser knows: `density` (events per time bin), `hist` (counts over even edges from lo
to hi, optionally even in log, marks and a band), `timebars` (values per time bin or span, a second
series as a line, reference lines), `hbars` (labelled horizontal bars, optional reference), `bipartite`
(left and right labels with weighted edges), `scatter` (points, optional log axes, time on x).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bothunt.schema import Finding
from bothunt.sinks.html_panels import column, density, epoch, hbars, hist, num, scatter

TIMELINE_CAP = 2000  # event times a detection puts in evidence, per finding
PAIRS_CAP = 500


@dataclass(frozen=True)
class PlotSpec:
    kind: str
    detection: str
    reads: tuple[str, ...]
    picture: str
    when: str = ""  # an evidence condition, in words (docs)


PLOT_CONTRACT: tuple[PlotSpec, ...] = (
    PlotSpec("rhythm", "beacon", ("timeline", "period_s", "jitter_pct"),
             "connection timeline, and the histogram of intervals with the detected period and its jitter band"),
    PlotSpec("flood", "inbound_flood", ("bins", "baseline"),
             "attempts per bin (bars) and distinct sources (line) against the baseline median and threshold"),
    PlotSpec("relay_pairs", "relay", ("pairs",),
             "inbound sources to outbound targets (edges weighted by pairs), lag histogram, bytes in vs out"),
    PlotSpec("relay_summary", "relay", ("operators", "targets"),
             "operators and targets by relayed legs, legs after vs before inbound sessions (coincidence test)"),
    PlotSpec("dga", "dga", ("burst_times", "sample_names"),
             "bursts of failed lookups over time, and sample names with their model score and outcome"),
    PlotSpec("dns_lookups", "dns_c2", ("lookups",),
             "lookups over time by subdomain length, and the TTLs of the answers", "tunnel"),
    PlotSpec("rhythm", "dns_c2", ("timeline", "period_s", "jitter_pct"),
             "lookup timeline and interval histogram with the period and its jitter band", "periodic_lookups"),
    PlotSpec("dns_names", "dns_c2", ("sample_names",), "subdomain length of the sample names", "tunnel"),
    PlotSpec("dns_periods", "dns_c2", ("names",), "period of each periodic name next to its TTL",
             "periodic_lookups"),
    PlotSpec("dns_flux", "dns_c2", ("sample_addresses",), "sample answer addresses by /16 network", "fast_flux"),
)


def specs_for(f: Finding) -> list[PlotSpec]:
    """The pictures for the finding's detection (and, where the detection has kinds, its evidence.kind)."""
    kind = f.evidence.get("kind")
    return [s for s in PLOT_CONTRACT if s.detection == f.detection and (not s.when or s.when == kind)]


def _times(values: Any, cap: int = TIMELINE_CAP) -> np.ndarray:
    if not isinstance(values, list):
        return np.zeros(0)
    values = values[:cap]
    if all(type(v) in (int, float) for v in values):  # the contract's form: one conversion, no per-item parse
        t = np.asarray(values, dtype=np.float64)
    else:
        ts = [epoch(v) for v in values]
        t = np.asarray([x for x in ts if x is not None], dtype=np.float64)
    return np.sort(t[np.isfinite(t)])


# -- pictures --------------------------------------------------------------------------------------


def rhythm(ev: Mapping[str, Any], noun: str = "connections") -> list[dict[str, Any]] | None:
    t = _times(ev.get("timeline"))
    period, jitter = num(ev.get("period_s")), num(ev.get("jitter_pct"))
    if t.size < 3 or period is None or period <= 0:
        return None
    gaps = np.diff(t)
    j = max(jitter or 0.0, 0.0) / 100
    band = {"lo": period * max(1 - j / 2, 1e-3), "hi": period * (1 + j / 2), "label": f"jitter {jitter or 0:g}%"}
    marks = [{"x": period, "label": f"period {period:g} s"}]
    return [density(f"{noun.capitalize()} over time ({t.size})", t),
            hist(f"Seconds between {noun}", gaps, True, "seconds (log)", marks=marks, band=band)]


def flood(ev: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    bins = ev.get("bins")
    if not isinstance(bins, list) or not bins:
        return None
    items = []
    for b in bins:
        if not isinstance(b, Mapping):
            continue
        t = epoch(b.get("t", b.get("start")))
        n = num(b.get("attempts", b.get("requests")))
        if t is None or n is None:
            continue
        items.append({"t": t, "value": n, "value2": num(b.get("sources"))})
    if not items:
        return None
    base = ev.get("baseline")
    refs = []
    if isinstance(base, (int, float)) and not isinstance(base, bool):
        refs.append({"value": float(base), "label": "baseline"})
    elif isinstance(base, Mapping):
        for key, label in (("median_requests", "baseline median"), ("threshold_requests", "threshold")):
            if num(base.get(key)) is not None:
                refs.append({"value": float(base[key]), "label": label})
        floors = base.get("floors")
        if not refs and isinstance(floors, Mapping) and num(floors.get("requests")) is not None:
            refs.append({"value": float(floors["requests"]), "label": "floor (no history)"})
    width = num(ev.get("bin_seconds")) or 300.0
    return [{"type": "timebars", "title": "Attempts per bin (bars), distinct sources (line)", "width_s": width,
             "items": items, "refs": refs, "y_label": "attempts", "y2_label": "sources"}]


def _top(counter: Counter, k: int) -> list[str]:
    return [v for v, _ in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))[:k]]


def relay_pairs(ev: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    pairs = [p for p in (ev.get("pairs") or [])[:PAIRS_CAP] if isinstance(p, Mapping)] \
        if isinstance(ev.get("pairs"), list) else []
    pairs = [p for p in pairs if p.get("inbound_src") is not None and p.get("outbound_dst") is not None]
    if not pairs:
        return None
    src = Counter(str(p["inbound_src"]) for p in pairs)
    dst = Counter(str(p["outbound_dst"]) for p in pairs)
    left, right = _top(src, 10), _top(dst, 10)
    li, ri = {v: i for i, v in enumerate(left)}, {v: i for i, v in enumerate(right)}
    other_l, other_r = len(left), len(right)
    edges: Counter = Counter()
    for p in pairs:
        edges[(li.get(str(p["inbound_src"]), other_l), ri.get(str(p["outbound_dst"]), other_r))] += 1
    if len(src) > len(left):
        left.append(f"{len(src) - len(left)} other source(s)")
    if len(dst) > len(right):
        right.append(f"{len(dst) - len(right)} other target(s)")
    lags = column(pairs, "lag_s")
    lags = lags[np.isfinite(lags)]
    panels: list[dict[str, Any]] = [{"type": "bipartite", "title": f"Inbound source -> outbound target ({len(pairs)} "
                                     "pairs)", "left": left, "right": right,
                                     "edges": [[i, j, n] for (i, j), n in sorted(edges.items())]}]
    if lags.size:
        panels.append(hist("Seconds from inbound session to outbound leg", lags, False, "lag (s)"))
    b_in, b_out = column(pairs, "bytes_in"), column(pairs, "bytes_out")
    ok = np.isfinite(b_in) & np.isfinite(b_out) & (b_in > 0) & (b_out > 0)
    if ok.any():
        panels.append(scatter("Bytes on the inbound leg vs the outbound leg", b_in[ok], b_out[ok], log_x=True,
                              log_y=True, x_label="inbound bytes", y_label="outbound bytes", diagonal=True))
    return panels


def relay_summary(ev: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    ops, tgts = ev.get("operators"), ev.get("targets")
    if not isinstance(ops, list) or not isinstance(tgts, list) or not (ops or tgts):
        return None

    def bars(entries: list[Any]) -> list[dict[str, Any]]:
        return [{"label": str(e.get("value")), "value": num(e.get("legs")) or 0.0} for e in entries
                if isinstance(e, Mapping)]

    panels = [hbars("Operators (inbound sources) by relayed legs", bars(ops), "legs"),
              hbars("Targets (outbound destinations) by relayed legs", bars(tgts), "legs")]
    scales = (ev.get("coincidence") or {}).get("by_scale") if isinstance(ev.get("coincidence"), Mapping) else None
    if isinstance(scales, list) and scales:
        items = []
        for s in scales:
            if not isinstance(s, Mapping):
                continue
            w = s.get("within_s")
            items += [{"label": f"≤{w} s after inbound", "value": num(s.get("after_inbound")) or 0.0, "cls": "hot"},
                      {"label": f"≤{w} s before inbound", "value": num(s.get("before_inbound")) or 0.0},
                      {"label": f"≤{w} s expected by rate", "value": num(s.get("expected_from_rate")) or 0.0,
                       "cls": "muted"}]
        panels.append(hbars("Outbound legs just after vs just before inbound sessions", items, "legs"))
    return panels


def dga(ev: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    bursts, names = ev.get("burst_times"), ev.get("sample_names")
    if not isinstance(bursts, list) or not isinstance(names, list):
        return None
    items = []
    for b in bursts:
        if isinstance(b, Mapping) and epoch(b.get("start")) is not None:
            start = epoch(b.get("start"))
            end = epoch(b.get("end")) or start
            items.append({"t": start, "t_end": max(end, start), "value": num(b.get("failed_domains")) or 0.0})
    bars = []
    for s in names:
        if not isinstance(s, Mapping) or num(s.get("score")) is None:
            continue
        ok = bool(s.get("resolved"))
        bars.append({"label": str(s.get("name") or s.get("domain")), "value": float(s["score"]),
                     "cls": "ok" if ok else "hot", "note": "resolved" if ok else "NXDOMAIN"})
    if not items and not bars:
        return None
    thr = num(ev.get("score_threshold"))
    panels = []
    if items:
        panels.append({"type": "timebars", "title": "Bursts of failed lookups of new domains", "items": items,
                       "refs": [], "y_label": "failed domains", "width_s": 60.0})
    if bars:
        panels.append(hbars("Sample names: model score (red: NXDOMAIN, green: resolved)", bars, "score",
                            {"value": thr, "label": "generated from"} if thr is not None else None))
    return panels


def dns_lookups(ev: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    rows = ev.get("lookups")
    if not isinstance(rows, list):
        return None
    rows = rows[:TIMELINE_CAP]
    t, n, ttl = column(rows, "t", times=True), column(rows, "length"), column(rows, "ttl")
    hot = np.asarray([isinstance(r, Mapping) and str(r.get("qtype", "")).upper() in ("TXT", "NULL", "16", "10")
                      for r in rows], dtype=bool)
    ok = np.isfinite(t) & np.isfinite(n)
    if not ok.any():
        return None
    panels = [scatter("Lookups over time by subdomain length (red: TXT/NULL)", t[ok], n[ok], hot[ok], x_time=True,
                      x_label="time (UTC)", y_label="subdomain characters")]
    ttl = ttl[np.isfinite(ttl)]
    if ttl.size:
        panels.append(hist("TTL of the answers", ttl, False, "TTL (s)"))
    return panels


def dns_names(ev: Mapping[str, Any], domain: str | None) -> list[dict[str, Any]] | None:
    names = [n for n in ev.get("sample_names") or [] if isinstance(n, str)] \
        if isinstance(ev.get("sample_names"), list) else []
    if not names:
        return None
    cut = len(domain) + 1 if domain else 0
    items = [{"label": n, "value": float(max(len(n) - cut, 0))} for n in names]
    return [hbars("Sample names: subdomain length", items, "characters")]


def dns_periods(ev: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    names = ev.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, Mapping) for n in names):
        return None
    items = [{"label": str(n.get("name")), "value": num(n.get("period_s")) or 0.0,
              "note": f"TTL {n['min_ttl']:g} s" if num(n.get("min_ttl")) is not None else "TTL unknown"}
             for n in names]
    return [hbars("Period of each name's lookups (TTL of its answers beside it)", items, "seconds")]


def dns_flux(ev: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    addrs = [a for a in ev.get("sample_addresses") or [] if isinstance(a, str)] \
        if isinstance(ev.get("sample_addresses"), list) else []
    if not addrs:
        return None
    nets = Counter(":".join(a.split(":")[:2]) if ":" in a else ".".join(a.split(".")[:2]) + ".0.0/16" for a in addrs)
    items = [{"label": k, "value": float(v)} for k, v in sorted(nets.items(), key=lambda kv: (-kv[1], kv[0]))]
    return [hbars(f"Sample answer addresses by network ({len(addrs)} of {ev.get('addresses', '?')})", items,
                  "addresses")]


_BUILD: dict[str, Callable[[Finding], list[dict[str, Any]] | None]] = {
    "rhythm": lambda f: rhythm(f.evidence, "lookups" if f.detection == "dns_c2" else "connections"),
    "flood": lambda f: flood(f.evidence),
    "relay_pairs": lambda f: relay_pairs(f.evidence),
    "relay_summary": lambda f: relay_summary(f.evidence),
    "dga": lambda f: dga(f.evidence),
    "dns_lookups": lambda f: dns_lookups(f.evidence),
    "dns_names": lambda f: dns_names(f.evidence, f.domain),
    "dns_periods": lambda f: dns_periods(f.evidence),
    "dns_flux": lambda f: dns_flux(f.evidence),
}


def plot(f: Finding) -> dict[str, Any] | None:
    """The first picture of the finding's detection its evidence can feed, else None. Never raises on odd
    evidence: a picture that cannot be built is skipped."""
    for spec in specs_for(f):
        if not all(k in f.evidence and f.evidence[k] is not None for k in spec.reads):
            continue
        try:
            panels = _BUILD[spec.kind](f)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
            panels = None
        if panels:
            return {"kind": spec.kind, "reads": list(spec.reads), "panels": panels}
    return None


def missing_keys(f: Finding) -> list[str]:
    """Keys the detection's first (fullest) picture needs that the finding lacks."""
    specs = specs_for(f)
    if not specs:
        return []
    return [k for k in specs[0].reads if f.evidence.get(k) is None]
