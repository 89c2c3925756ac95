"""Relay findings: the coincidence test per device, then per-device evidence from the forward pairs
(nearest inbound parent of every outbound leg) in numpy, the score and the explanation."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from scipy.stats import poisson

from bothunt.config import Settings
from bothunt.detections.base import allowlisted, severity_from_score
from bothunt.detections.flood_campaigns import iso_us
from bothunt.detections.flood_queries import US
from bothunt.schema import Finding, finding_id

if TYPE_CHECKING:
    from bothunt.detections.relay import Params

ID = "relay"
HIDDEN_PORTS = frozenset({80, 443, 53})  # what the published rule drops from outbound legs
MU_FLOOR = 0.1  # a device with no legs before inbound sessions still expects a few coincidences per run


def significance(counts: pa.Table, totals: pa.Table, scales: list[float], p: Params) -> list[dict[str, Any]]:
    """Per device: legs just after inbound sessions against legs just before them (alike under coincidence)
    and against the device's average outbound rate, at each lag scale; the smallest Poisson tail
    probability times the number of scales (Bonferroni)."""
    tot = {r["dev"]: r for r in totals.to_pylist()}
    out = []
    for r in counts.to_pylist():
        t = tot.get(r["dev"])
        if t is None:
            continue
        span_s = max((t["out_hi"] - t["out_lo"]) / US, 1.0)
        rate = (t["n_out_pub"] or 0) / span_s
        best, at = 1.0, len(scales) - 1
        expected = []
        for i, d in enumerate(scales):
            exp_rate = t["n_in"] * rate * d
            mu = max(float(r[f"nxt_pub_{i}"]), exp_rate, MU_FLOOR)
            expected.append(round(exp_rate, 4))
            k = int(r[f"prev_pub_{i}"])
            pv = float(poisson.sf(k - 1, mu)) if k > 0 else 1.0
            if pv < best:
                best, at = pv, i
        last = len(scales) - 1
        out.append({
            "dev": r["dev"], "prev_pub": int(r[f"prev_pub_{last}"]), "nxt_pub": int(r[f"nxt_pub_{last}"]),
            "prev_int": int(r[f"prev_int_{last}"]), "nxt_int": int(r[f"nxt_int_{last}"]),
            "p_value": min(1.0, best * len(scales)), "scale": scales[at],
            "by_scale": [{"within_s": s, "after_inbound": int(r[f"prev_pub_{i}"]),
                          "before_inbound": int(r[f"nxt_pub_{i}"]), "expected_from_rate": expected[i]}
                         for i, s in enumerate(scales)],
            "inbound_sessions": int(t["n_in"]), "outbound_public": int(t["n_out_pub"] or 0),
            "outbound_rate_per_hour": round(rate * 3600, 3),
        })
    return sorted(out, key=lambda d: d["dev"])


def _np(col: pa.ChunkedArray, fill: float | None = None) -> np.ndarray:
    if fill is None:
        return col.to_numpy(zero_copy_only=False)
    return col.cast(pa.float64()).fill_null(fill).to_numpy()


def parents(fwd: pa.Table) -> dict[str, np.ndarray]:
    """One row per outbound leg: the nearest inbound session before it (smallest lag, then operator)."""
    c = {k: _np(fwd[k]) for k in ("dev", "dev_ip", "origin", "tgt", "sni", "in_proc", "out_proc", "out_ip")}
    for k in ("t_out", "t_in", "lag", "out_port", "out_sport", "in_port", "public"):
        c[k] = _np(fwd[k], -1)
    for k in ("dur_in", "dur_out", "in_up", "in_down", "out_up", "out_down"):
        c[k] = _np(fwd[k], np.nan)
    key = (c["dev"].astype(str), c["t_out"], c["tgt"].astype(str), c["out_port"], c["out_sport"])
    order = np.lexsort((c["origin"].astype(str), c["lag"], *reversed(key)))
    k_sorted = [k[order] for k in key]
    first = np.ones(order.size, dtype=bool)
    if order.size > 1:
        same = np.ones(order.size - 1, dtype=bool)
        for ks in k_sorted:
            same &= ks[1:] == ks[:-1]
        first[1:] = ~same
    keep = order[first]
    return {k: v[keep] for k, v in c.items()}


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ok = (a > 0) & (b > 0)
    return np.where(ok, np.minimum(a, b) / np.where(ok, np.maximum(a, b), 1.0), np.nan)


def _median(x: np.ndarray) -> float | None:
    x = x[~np.isnan(x)]
    return float(np.median(x)) if x.size else None


def _top(values: list[Any], k: int) -> list[dict[str, Any]]:
    cnt = Counter(values)
    total = sum(cnt.values())
    return [{"value": v, "legs": n, "share": round(n / total, 4)}
            for v, n in sorted(cnt.items(), key=lambda kv: (-kv[1], str(kv[0])))[:k]]


def features(q: dict[str, np.ndarray], d: dict[str, Any], p: Params) -> dict[str, Any]:
    pub = q["public"] == 1
    n_pub, n_int = int(pub.sum()), int((~pub).sum())
    qp = {k: v[pub] for k, v in q.items()}
    lag_s = qp["lag"] / US
    tot_in = qp["in_up"] + qp["in_down"]
    tot_out = qp["out_up"] + qp["out_down"]
    dur_known = ~np.isnan(qp["dur_in"])
    open_ok = lag_s[dur_known] <= qp["dur_in"][dur_known] + p.grace_seconds
    procs = (qp["in_proc"] != None) & (qp["out_proc"] != None)  # noqa: E711 - object arrays
    same = qp["in_proc"][procs] == qp["out_proc"][procs]
    sessions = {(o, t) for o, t in zip(qp["origin"].tolist(), qp["t_in"].tolist(), strict=True)}
    return {
        "legs_public": n_pub, "legs_internal": n_int,
        "public_share": round(n_pub / max(n_pub + n_int, 1), 4),
        "inbound_sessions_relayed": len(sessions),
        "relayed_share_of_inbound": round(len(sessions) / max(d["inbound_sessions"], 1), 4),
        "operators": _top(qp["origin"].tolist(), p.top), "operator_count": len(set(qp["origin"].tolist())),
        "targets": _top(qp["tgt"].tolist(), p.top), "target_addresses": len(set(qp["tgt"].tolist())),
        # a name stands for all its addresses: six addresses of one SaaS origin are one target
        "target_count": len({s if s else t for s, t in zip(qp["sni"].tolist(), qp["tgt"].tolist(), strict=True)}),
        "target_names": _top([s for s in qp["sni"].tolist() if s], p.top),
        "inbound_ports": _top([int(x) for x in qp["in_port"].tolist()], p.top),
        "outbound_ports": _top([int(x) for x in qp["out_port"].tolist()], p.top),
        "legs_on_80_443_53": int(np.isin(qp["out_port"], list(HIDDEN_PORTS)).sum()),
        "lag_seconds": ({"p10": round(float(np.quantile(lag_s, 0.1)), 4), "median": round(float(np.median(lag_s)), 4),
                         "p90": round(float(np.quantile(lag_s, 0.9)), 4)} if lag_s.size else None),
        "byte_symmetry_median": _median(_ratio(tot_in, tot_out)),
        "duration_symmetry_median": _median(_ratio(qp["dur_in"], qp["dur_out"])),
        "opened_while_inbound_open": round(float(open_ok.mean()), 4) if open_ok.size else None,
        "same_process_share": round(float(same.mean()), 4) if same.size else None,
        "processes": _top([s for s in qp["out_proc"].tolist() if s], p.top),
        "first_us": int(qp["t_in"].min()) if n_pub else None, "last_us": int(qp["t_out"].max()) if n_pub else None,
        "dev_ip": next((str(x) for x in qp["dev_ip"].tolist() if x), None),
    }


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def score(f: dict[str, Any], d: dict[str, Any], p: Params) -> tuple[float, dict[str, float]]:
    """Coincidence is a gate, not a score: past it, the shape of the relay decides. An ORB node has few
    operators and many targets; a reverse proxy or API gateway funnels many clients into one origin and
    internal back ends, which scales the score down (funnel) as much as internal legs do."""
    sig = _clip(-np.log10(max(d["p_value"], 1e-300)) / 12)
    fanout = _clip(np.log10(max(f["target_count"], 1)) / 2)
    few_ops = _clip(1 - np.log10(max(f["operator_count"], 1) / 5) / 2) if f["operator_count"] > 5 else 1.0
    shape = 0.5 * fanout + 0.5 * few_ops
    sym_vals = [v for v in (f["byte_symmetry_median"], f["duration_symmetry_median"]) if v is not None]
    sym = _clip((float(np.mean(sym_vals)) - 0.3) / 0.6) if sym_vals else 0.5
    med = f["lag_seconds"]["median"] if f["lag_seconds"] else p.window_seconds
    lag = 1.0 if med <= 0.5 else _clip(1 - (med - 0.5) / max(p.window_seconds - 0.5, 1e-9))
    in_port = f["inbound_ports"][0]["value"] if f["inbound_ports"] else None
    port = (1.0 if in_port in p.proxy_ports else 0.4 if in_port in (80, 443) else 0.7 if (in_port or 0) >= 1024
            else 0.5)
    proc = f["same_process_share"] if f["same_process_share"] is not None else 0.5
    open_ = f["opened_while_inbound_open"] if f["opened_while_inbound_open"] is not None else 0.5
    raw = 0.25 * sig + 0.2 * shape + 0.15 * sym + 0.1 * lag + 0.1 * port + 0.1 * proc + 0.1 * open_
    funnel = f["operator_count"] / max(f["target_count"], 1)
    gateway = min(1.0, max(0.3, 1 - np.log10(max(funnel, 1e-9) / 2) / 1.5)) if funnel > 2 else 1.0
    parts = {"coincidence": round(sig, 3), "shape": round(shape, 3), "symmetry": round(sym, 3),
             "lag": round(lag, 3), "port": port, "same_process": round(proc, 3), "while_open": round(open_, 3),
             "public_share": f["public_share"], "funnel": round(funnel, 3), "funnel_factor": round(gateway, 3)}
    return _clip(raw * (0.3 + 0.7 * f["public_share"]) * gateway), parts


def known_relay(dev: str, dev_ip: str | None, p: Params) -> list[str]:
    """Entries of `known_relays` ('host, address or CIDR = reason') that name this device."""
    hits = []
    addr = None
    if dev_ip:
        try:
            addr = ipaddress.ip_address(dev_ip)
        except ValueError:
            addr = None
    for entry in p.known_relays:
        key, _, reason = entry.partition("=")
        key, reason = key.strip(), reason.strip() or "known relay"
        match = key.lower() == dev.lower() or (dev_ip is not None and key == dev_ip)
        if not match and addr is not None and "/" in key:
            try:
                net = ipaddress.ip_network(key, strict=False)
                match = addr.version == net.version and addr in net
            except ValueError:
                match = False
        if match:
            hits.append(f"known_relay:{key} ({reason})")
    return hits


def _legs_to(share: float) -> str:
    if share >= 0.8:
        return "public"
    if share <= 0.2:
        return "internal"
    return "both"


def explain(dev: str, f: dict[str, Any], d: dict[str, Any], p: Params) -> str:
    scale = next((s for s in d["by_scale"] if s["within_s"] == d["scale"]), d["by_scale"][-1])
    lag = f["lag_seconds"] or {"median": float("nan")}
    text = (f"{dev} accepted {f['inbound_sessions_relayed']} sessions from {f['operator_count']} Internet "
            f"address(es) that were followed within {p.window_seconds:g} s by {f['legs_public']} connections to "
            f"{f['target_count']} other Internet host(s) (median {lag['median']:g} s after the inbound start). "
            f"{scale['after_inbound']} outbound legs started within {scale['within_s']:g} s after an inbound "
            f"session, {scale['before_inbound']} within {scale['within_s']:g} s before one, and "
            f"{scale['expected_from_rate']:g} were expected from the device's outbound rate "
            f"(chance under coincidence {d['p_value']:.1e}). ")
    if f["byte_symmetry_median"] is not None:
        text += f"Bytes on the two legs match at a median ratio of {f['byte_symmetry_median']:.2f}. "
    if f["same_process_share"] is not None:
        proc = f["processes"][0]["value"] if f["processes"] else "the same process"
        text += f"{f['same_process_share']:.0%} of pairs have the same process on both legs ({proc}). "
    if f["legs_on_80_443_53"]:
        text += f"{f['legs_on_80_443_53']} legs went to ports 80/443/53, which the published rule ignores. "
    where = _legs_to(f["public_share"])
    text += {"public": "The paired legs go to public addresses"
                       + (". " if d["p_value"] > p.max_p_value else ": relaying for someone else. "),
             "internal": "Most relayed legs go to internal addresses: the reverse-proxy / load-balancer "
                         "pattern. ",
             "both": f"{f['legs_internal']} relayed legs go to internal and {f['legs_public']} to public "
                     f"addresses. "}[where]
    if d["p_value"] > p.max_p_value:
        text += "The excess is within what coincidence explains; reported because report_coincidence is on. "
    return text + ("Benign if the device is a reverse proxy, load balancer, VPN gateway or mail relay "
                   "(add it to known_relays with the reason).")


PAIRS_KEPT = 500  # inbound-to-outbound pairs kept in evidence for the report's plot


def _pairs(q: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The relayed legs as the report draws them (docs/report.md plot contract), earliest first."""
    order = np.argsort(q["t_out"], kind="stable")[:PAIRS_KEPT]

    def num(x: float) -> float | None:
        return None if np.isnan(x) else float(x)

    return [{"t": round(float(q["t_out"][i]) / US, 3), "inbound_src": str(q["origin"][i]),
             "outbound_dst": str(q["tgt"][i]), "outbound_port": int(q["out_port"][i]),
             "lag_s": round(float(q["lag"][i]) / US, 4), "bytes_in": num(q["in_up"][i]),
             "bytes_out": num(q["out_up"][i])} for i in order.tolist()]


def _top_target(q: dict[str, np.ndarray]) -> tuple[str | None, int | None]:
    pub = q["public"] == 1
    pairs = Counter(zip(q["tgt"][pub].tolist(), q["out_port"][pub].astype(int).tolist(), strict=True))
    if not pairs:
        return None, None
    (tgt, port), _ = sorted(pairs.items(), key=lambda kv: (-kv[1], str(kv[0])))[0]
    return str(tgt), int(port)


def findings(fwd: pa.Table, chosen: list[dict[str, Any]], p: Params, settings: Settings) -> list[Finding]:
    if fwd.num_rows == 0:
        return []
    q_all = parents(fwd)
    out = []
    for d in chosen:
        # evidence from the legs that started within the lag scale where the excess over coincidence was
        # clearest, so the device's unrelated traffic in the rest of the window does not blur it
        mask = (q_all["dev"] == d["dev"]) & (q_all["lag"] <= d["scale"] * US)
        q = {k: v[mask] for k, v in q_all.items()}
        if not (q["public"] == 1).any():
            continue
        f = features(q, d, p)
        sc, parts = score(f, d, p)
        coincidence = d["p_value"] > p.max_p_value
        severity = "info" if coincidence else severity_from_score(sc)
        tgt, port = _top_target(q)
        process = f["processes"][0]["value"] if f["processes"] else None
        dev_ip = f["dev_ip"]
        evidence = {
            "coincidence": {k: d[k] for k in ("p_value", "scale", "by_scale", "inbound_sessions",
                                              "outbound_public", "outbound_rate_per_hour")},
            "legs_to": _legs_to(f["public_share"]),
            **{k: v for k, v in f.items() if k not in ("first_us", "last_us", "dev_ip")},
            "score_parts": parts,
            "pairs": _pairs(q),
        }
        techniques = ("T1583.005", "T1090", "T1090.003") if evidence["legs_to"] != "internal" else (
            "T1583.005", "T1090")
        finding = Finding(
            detection=ID,
            title=(f"Relay: {d['dev']} forwards Internet sessions from {f['operator_count']} address(es) to "
                   f"{f['target_count']} Internet host(s)"),
            severity=severity, score=round(sc, 4), first_seen=iso_us(f["first_us"]), last_seen=iso_us(f["last_us"]),
            explanation=explain(d["dev"], f, d, p), id=finding_id(ID, d["dev"]),
            host=d["dev"] if d["dev"] != dev_ip else None, src_ip=dev_ip, process=process, dst_ip=tgt,
            dst_port=port, techniques=techniques, evidence=evidence,
        )
        hits = known_relay(d["dev"], dev_ip, p) + settings.allowlist.matches(ip=dev_ip, process=process)
        out.append(allowlisted(finding, hits))
    return out
