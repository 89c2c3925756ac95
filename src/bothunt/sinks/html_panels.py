"""Drawing-ready panels for the HTML report (the browser draws them as they are): event density over
time, histograms, bars over time, labelled bars, scatter plots; and the small conversions evidence needs
on the way (epoch times, numbers, one field of a list of records). Values are cut to a few significant
digits and scatter plots thinned: the picture cannot show more, and the report stays small."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from bothunt.hostview import parse_time

DENSITY_BINS = 120
HIST_BINS = 40
BARS_CAP = 40  # labelled bars per panel
SCATTER_CAP = 200  # points drawn per scatter; more are thinned evenly (the title says how many)


def epoch(value: Any) -> float | None:
    """Epoch seconds from a number or an ISO 8601 string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        t = parse_time(value)
        return None if t is None else t.timestamp()
    return None


def num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def density(title: str, t: np.ndarray, bins: int = DENSITY_BINS) -> dict[str, Any]:
    t0, t1 = float(t.min()), float(t.max())
    counts, _ = np.histogram(t, bins=bins, range=(t0, t1 if t1 > t0 else t0 + 1))
    return {"type": "density", "title": title, "t0": t0, "t1": max(t1, t0 + 1), "counts": counts.tolist()}


def hist(title: str, x: np.ndarray, log: bool, x_label: str, bins: int = HIST_BINS,
         marks: list[dict[str, Any]] | None = None, band: dict[str, Any] | None = None) -> dict[str, Any]:
    x = x[np.isfinite(x)]
    if log:
        x = x[x > 0]
    if x.size == 0:
        return {"type": "hist", "title": title, "lo": 0, "hi": 1, "counts": [0], "log": False, "x_label": x_label}
    lo, hi = float(x.min()), float(x.max())
    for m in marks or []:
        lo, hi = min(lo, m["x"]), max(hi, m["x"])
    if band:
        lo, hi = min(lo, band["lo"]), max(hi, band["hi"])
    if log:
        lo, hi = max(lo, 1e-3), max(hi, lo * 1.01)
        edges = np.geomspace(lo / 1.05, hi * 1.05, bins + 1)
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    counts, _ = np.histogram(x, bins=edges)
    # the browser rebuilds the (even, or even in log) edges from lo, hi and the number of counts
    out = {"type": "hist", "title": title, "lo": float(edges[0]), "hi": float(edges[-1]), "counts": counts.tolist(),
           "log": log, "x_label": x_label}
    if marks:
        out["marks"] = marks
    if band:
        out["band"] = band
    return out


def sig(x: np.ndarray, digits: int = 4) -> list[float | int]:
    """Values to a few significant digits (the picture cannot show more, and the report stays small);
    non-finite values become 0."""
    x = np.where(np.isfinite(x), x, 0.0).astype(np.float64)
    with np.errstate(divide="ignore"):
        mag = np.where(x != 0, np.floor(np.log10(np.abs(np.where(x != 0, x, 1.0)))), 0.0)
    scale = 10.0 ** (digits - 1 - mag)
    out = (np.round(x * scale) / scale).tolist()
    return [int(v) if v.is_integer() and abs(v) < 1e15 else v for v in out]  # "1200" not "1200.0"


def column(rows: list[Any], key: str, times: bool = False) -> np.ndarray:
    """One evidence field of a list of records as floats (NaN where missing or unusable); one numpy
    conversion in the usual all-numbers case, a parse per value (numbers or ISO times) otherwise."""
    vals = [r.get(key) if isinstance(r, Mapping) else None for r in rows]
    try:
        out = np.asarray(vals, dtype=np.float64)
    except (TypeError, ValueError):
        conv = epoch if times else num
        out = np.asarray([np.nan if (x := conv(v)) is None else x for v in vals], dtype=np.float64)
    return out


def scatter(title: str, xs: np.ndarray, ys: np.ndarray, hot: np.ndarray | None = None,
            **opts: Any) -> dict[str, Any]:
    """Points as [x - x0, y] or [x - x0, y, 1] (1: highlighted), to few digits, thinned evenly to
    SCATTER_CAP."""
    n = xs.size
    idx = np.linspace(0, n - 1, SCATTER_CAP).round().astype(int) if n > SCATTER_CAP else np.arange(n)
    note = f" ({idx.size} of {n} shown)" if idx.size < n else ""
    x0 = float(xs.min()) if opts.get("x_time") and n else 0.0
    flags = hot[idx].tolist() if hot is not None else [False] * idx.size
    points = [[x, y, 1] if h else [x, y] for x, y, h in zip(sig(xs[idx] - x0), sig(ys[idx]), flags, strict=True)]
    return {"type": "scatter", "title": title + note, "x0": x0, "points": points, **opts}


def hbars(title: str, items: list[dict[str, Any]], unit: str = "", ref: dict[str, Any] | None = None,
          ) -> dict[str, Any]:
    out = {"type": "hbars", "title": title, "unit": unit, "items": items[:BARS_CAP]}
    if ref:
        out["ref"] = ref
    return out
