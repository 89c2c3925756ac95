"""Distributed campaigns: per-service bins from the engine, judged against each service's own history in
numpy, merged into campaigns (fast: 5-minute bins; low-and-slow: hourly bins on authentication ports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.detections.flood_baseline import dense, extend, flag_against_history, level_threshold, runs
from bothunt.detections.flood_ports import service_kind
from bothunt.detections.flood_queries import US, service_bins
from bothunt.schema import iso

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from bothunt.detections.inbound_flood import Params
    from bothunt.engine import Tables


@dataclass
class Campaign:
    cid: int
    pattern: str  # "fast" (5-minute bins) or "slow" (hourly bins, authentication ports)
    dst_ip: str
    dport: int
    kind: str  # http, auth, mail, other
    words: tuple[str, ...]
    bin_seconds: int
    first_bin: int  # absolute bin numbers: epoch seconds // bin_seconds
    last_bin: int
    judged_by: str  # "history", or without enough history "floors" (bursts) / "level_or_failed_logins" (slow)
    baseline: dict[str, Any] = field(default_factory=dict)
    bins: list[dict[str, Any]] = field(default_factory=list)
    peak: dict[str, Any] = field(default_factory=dict)
    flagged_bins: int = 0
    during: dict[str, Any] = field(default_factory=dict)

    @property
    def lo_us(self) -> int:
        return self.first_bin * self.bin_seconds * US

    @property
    def hi_us(self) -> int:
        return (self.last_bin + 1) * self.bin_seconds * US


def iso_us(us: int) -> str | None:
    return iso(pa.scalar(int(us), pa.timestamp("us", tz="UTC")).as_py())


def _by_service(table: pa.Table) -> list[tuple[str, int, pa.Table]]:
    """Split per (dst_ip, dport); Python per distinct service, not per row."""
    if table.num_rows == 0:
        return []
    key = pc.binary_join_element_wise(table["dst_ip"], pc.cast(table["dport"], pa.string()), "|")
    enc = key.combine_chunks().dictionary_encode() if isinstance(key, pa.ChunkedArray) else key.dictionary_encode()
    idx = enc.indices.to_numpy()
    order = np.argsort(idx, kind="stable")
    bounds = np.flatnonzero(np.diff(idx[order])) + 1
    out = []
    for part in np.split(order, bounds):
        sub = table.take(pa.array(part))
        out.append((sub["dst_ip"][0].as_py(), int(sub["dport"][0].as_py()), sub))
    return sorted(out, key=lambda t: (t[0], t[1]))


def _words(sub: pa.Table) -> tuple[str, ...]:
    """The sensor's service words of one service, most frequent first (per bin, so cheap)."""
    words = [w for w in sub["svc"].to_pylist() if w]
    return tuple(sorted(set(words), key=lambda w: (-words.count(w), w)))


def _grid(sub: pa.Table, g0: int, size: int) -> dict[str, np.ndarray]:
    pos = sub["b"].to_numpy() - g0
    return {c: dense(pos, sub[c].to_numpy().astype(np.float64), size)
            for c in ("n", "d", "est", "fail", "suspect", "judged", "denied", "new") if c in sub.column_names}


def _bin_rows(g: dict[str, np.ndarray], a: int, z: int, g0: int, width: int, limit: int) -> list[dict]:
    rows = [{"start": iso_us((g0 + t) * width * US), "requests": int(g["n"][t]), "sources": int(g["d"][t]),
             "accepted": int(g["est"][t]), "failed": int(g["fail"][t]), "denied": int(g["denied"][t])}
            for t in range(a, min(z + 1, a + limit))]
    if "new" in g:
        for r, t in zip(rows, range(a, z + 1), strict=False):
            r["new_sources"] = int(g["new"][t])
    return rows


def _rates(g: dict[str, np.ndarray], a: int, z: int) -> dict[str, float | None]:
    """Per-source rate per bin and failure share over bins a..z-1 (the same measures for the trailing
    history and for the campaign, so they compare like with like)."""
    n, d, fail = g["n"][a:z].sum(), g["d"][a:z].sum(), g["fail"][a:z].sum()
    return {"requests_per_source_per_bin": round(n / d, 3) if d else None,
            "failed_share": round(fail / n, 4) if n else None}


def _campaigns(g: dict[str, np.ndarray], flags: np.ndarray, baselines: list, at: np.ndarray, *, key: str,
               g0: int, width: int, window: int, min_history: int, max_gap: int, min_flagged: int,
               fallback: str, fallback_level: float | None, names: tuple[str, ...],
               limit: int) -> list[dict[str, Any]]:
    """Runs of flagged bins, grown over neighbouring bins still above the threshold that flagged them,
    with the baseline at the run's first flagged bin."""
    out = []
    for a, z in runs(flags, max_gap):
        flagged = int(flags[a: z + 1].sum())
        if flagged < min_flagged:
            continue
        i = int(np.searchsorted(at, a))
        hist = int(baselines[0].history[i])
        base: dict[str, Any] = {"history_bins": hist, "window_bins": window, "min_history_bins": min_history}
        for name, bl in zip(names, baselines, strict=True):
            base[f"median_{name}"] = float(bl.median[i]) if hist else None
            base[f"mad_{name}"] = float(bl.mad[i]) if hist else None
            thr = bl.threshold[i]
            base[f"threshold_{name}"] = None if np.isnan(thr) else round(float(thr), 2)
        judged = "history" if hist >= min_history else fallback
        level = base.get(f"threshold_{names[0]}") if judged == "history" else fallback_level
        if level is not None:
            a, z = extend(flags, g[key], a, z, level)
        base.update(_rates(g, max(0, a - window), a))
        pk = a + int(np.argmax(g["n"][a: z + 1]))
        out.append({"first": a, "last": z, "flagged": flagged, "baseline": base, "judged_by": judged,
                    "during": _rates(g, a, z + 1),
                    "peak": {"start": iso_us((g0 + pk) * width * US), "requests": int(g["n"][pk]),
                             "sources": int(g["d"][a: z + 1].max())},
                    "bins": _bin_rows(g, a, z, g0, width, limit)})
    return out


def find(tables: Tables, inb: ir.Table, p: Params, lo: int, hi: int) -> list[Campaign]:
    fast = _fast(tables, inb, p, lo, hi)
    slow = _slow(tables, inb, p, lo, hi, fast, start_id=len(fast))
    return fast + slow


def _campaign(cid: int, pattern: str, dst: str, port: int, words: tuple[str, ...], width: int, g0: int,
              c: dict[str, Any]) -> Campaign:
    return Campaign(cid=cid, pattern=pattern, dst_ip=dst, dport=port, kind=service_kind(port, words), words=words,
                    bin_seconds=width, first_bin=g0 + c["first"], last_bin=g0 + c["last"],
                    judged_by=c["judged_by"], baseline=c["baseline"], bins=c["bins"], peak=c["peak"],
                    flagged_bins=c["flagged"], during=c["during"])


def _fast(tables: Tables, inb: ir.Table, p: Params, lo: int, hi: int) -> list[Campaign]:
    width = p.bin_minutes * 60
    rows = tables.to_arrow(service_bins(inb, width, min(p.min_requests, p.floor_requests)))
    g0, size = lo // (width * US), hi // (width * US) - lo // (width * US) + 1
    window = max(1, round(p.baseline_hours * 3600 / width))
    min_history = max(1, round(p.min_history_hours * 3600 / width))
    out: list[Campaign] = []
    for dst, port, sub in _by_service(rows):
        g = _grid(sub, g0, size)
        cand = (g["n"] >= p.min_requests) & (g["d"] >= p.min_sources)
        floors = (g["n"] > p.floor_requests) & (g["d"] > p.floor_sources)
        if size >= 4 * min_history:
            # enough data to know the service's usual level: a service that is always this busy is not
            # flooded in its first hour; a capture that is all flood keeps the floors alone
            floors &= g["n"] > level_threshold(g["n"], p.deviation, p.min_ratio)
        flags, bls = flag_against_history([g["n"], g["d"]], cand, floors, window=window, min_history=min_history,
                                          k=p.deviation, min_ratio=p.min_ratio)
        found = _campaigns(g, flags, bls, np.flatnonzero(cand), key="n", g0=g0, width=width, window=window,
                           min_history=min_history, max_gap=p.merge_gap_bins, min_flagged=1,
                           fallback="floors", fallback_level=p.floor_requests / 2,
                           names=("requests", "sources"), limit=p.max_bins_listed)
        for c in found:
            c["baseline"]["floors"] = {"requests": p.floor_requests, "sources": p.floor_sources}
            out.append(_campaign(len(out), "fast", dst, port, _words(sub), width, g0, c))
    return out


def _slow(tables: Tables, inb: ir.Table, p: Params, lo: int, hi: int, fast: list[Campaign],
          start_id: int) -> list[Campaign]:
    width = round(p.slow_hours * 3600)
    rows = tables.to_arrow(service_bins(inb, width, p.slow_min_sources_per_hour, only_auth=True))
    g0, size = lo // (width * US), hi // (width * US) - lo // (width * US) + 1
    window = max(1, round(p.slow_baseline_hours * 3600 / width))
    min_history = max(1, round(p.slow_min_history_hours * 3600 / width))
    out: list[Campaign] = []
    for dst, port, sub in _by_service(rows):
        g = _grid(sub, g0, size)
        kind = service_kind(port, _words(sub))
        busy = np.zeros(size, dtype=bool)  # hours a fast campaign already reports
        for f in fast:
            if (f.dst_ip, f.dport) == (dst, port):
                busy[max(0, f.lo_us // (width * US) - g0): (f.hi_us - 1) // (width * US) - g0 + 1] = True
        with np.errstate(divide="ignore", invalid="ignore"):
            per_source = np.where(g["d"] > 0, g["n"] / g["d"], np.inf)
            suspect = np.where(g["judged"] > 0, g["suspect"] / g["judged"], 0.0)
        cand = (g["d"] >= p.slow_min_sources_per_hour) & (per_source <= p.slow_max_attempts_per_source) & ~busy
        # Without trailing history: hours above the service's level over the whole data, or, on a login
        # port, hours where most attempts failed or were too short to be a person's login.
        level = level_threshold(g["d"], p.deviation, p.min_ratio)
        fallback = (g["d"] > level) | ((kind == "auth") & (suspect >= p.slow_min_suspect_share))
        # With history, sources per hour or sources new to the service per hour above their trailing
        # baselines: a campaign against a service with a steady user base shows in the new sources even
        # when it does not outnumber the users (new sources are not used without history: at the start
        # of the data everyone is new).
        flags, bls = flag_against_history([g["d"], g["new"]], cand, fallback, window=window,
                                          min_history=min_history, k=p.deviation, min_ratio=p.min_ratio)
        found = _campaigns(g, flags, bls, np.flatnonzero(cand), key="d", g0=g0, width=width, window=window,
                           min_history=min_history, max_gap=p.slow_merge_gap_hours, min_flagged=p.slow_min_hours,
                           fallback="level_or_failed_logins", fallback_level=None, names=("sources", "new_sources"),
                           limit=p.max_bins_listed)
        for c in found:
            c["baseline"]["level_sources_per_hour"] = round(level, 2)
            c["baseline"]["floors"] = {"sources_per_hour": p.slow_min_sources_per_hour,
                                       "failed_or_short_share": p.slow_min_suspect_share}
            out.append(_campaign(start_id + len(out), "slow", dst, port, _words(sub), width, g0, c))
    return out
