"""Single sources: one address brute-forcing or hammering one host's service, or sweeping many hosts on
one port. Reported as their own categories and capped below a distributed campaign's severity."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from bothunt.config import Settings
from bothunt.detections.base import allowlisted, lower_severity, severity_from_score
from bothunt.detections.flood_campaigns import Campaign, iso_us
from bothunt.detections.flood_ports import AUTH_PORTS, CATEGORIES, capital, service_kind, single_category
from bothunt.detections.flood_queries import US, port_scans, single_sources
from bothunt.schema import Finding, finding_id

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from bothunt.detections.inbound_flood import Params
    from bothunt.engine import Tables

ID = "inbound_flood"
MAX_SCORE = 0.6  # below `high`: one address is a nuisance a block list ends, not a botnet campaign
MAX_HOSTS_LISTED = 50


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def _prefix(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    bits = 24 if addr.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def _by_key(rows: pa.Table) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """Split the per-host rows per (source, port): the source's totals, and its hosts as arrays."""
    if rows.num_rows == 0:
        return []
    src = rows["src_ip"].to_numpy(zero_copy_only=False).astype(str)
    port = rows["dport"].to_numpy()
    order = np.lexsort((rows["dst_ip"].to_numpy(zero_copy_only=False).astype(str), port, src))
    rows = rows.take(pa.array(order))
    src, port = src[order], port[order]
    bounds = np.flatnonzero((src[1:] != src[:-1]) | (port[1:] != port[:-1])) + 1
    out = []
    for part in np.split(np.arange(rows.num_rows), bounds):
        sub = rows.take(pa.array(part))
        totals = {k: sub[k][0].as_py() for k in sub.column_names if not k.startswith("h_") and k != "dst_ip"}
        hosts = {"dst_ip": sub["dst_ip"].to_numpy(zero_copy_only=False), "n": sub["h_n"].to_numpy(),
                 "est": sub["h_est"].to_numpy(), "first": sub["h_first"].to_numpy(), "last": sub["h_last"].to_numpy(),
                 "peak": sub["h_peak"].to_numpy()}
        out.append((totals, hosts))
    return out


def _in_campaign(campaigns: list[Campaign], sources: dict[int, dict[str, np.ndarray]], src: str, dst: str,
                 port: int, attempts: int) -> bool:
    """A source that made most of its attempts on this service inside a burst campaign is one of that
    flood's bots (listed there with its share), not a finding of its own. Low-and-slow campaigns do not
    absorb sources: a heavy source among them is exactly what they are not, and is reported alone."""
    inside = 0
    for c in campaigns:
        rows = sources.get(c.cid)
        if c.pattern == "fast" and c.dst_ip == dst and c.dport == port and rows is not None:
            inside += int(rows["n"][rows["src_ip"] == src].sum())
    return inside * 2 >= attempts


def _score(kind: str, r: dict[str, Any], sweep: bool, hosts: int, p: Params) -> tuple[float, dict[str, float]]:
    rate = _clip(np.log10(max(r["peak_bin"], 1) / 5) / 1.5)
    auth = 1.0 if kind == "auth" else 0.0
    if sweep:
        spread = _clip(np.log10(hosts / max(p.sweep_min_hosts, 1)) / 1.5)
        score = 0.2 + 0.25 * spread + 0.1 * auth + 0.1 * rate
        parts = {"spread": round(spread, 3), "rate": round(rate, 3), "auth_port": auth}
    else:
        volume = _clip(np.log10(r["top_host"] / max(p.single_min_attempts, 1)) / 2)
        bad = (r["suspect"] / r["judged"] if r["judged"] else 0.5) if kind == "auth" else r["fail"] / r["n"]
        score = 0.15 + 0.2 * rate + 0.1 * volume + 0.15 * bad + 0.1 * auth
        parts = {"rate": round(rate, 3), "volume": round(volume, 3), "failed_or_short": round(bad, 3),
                 "auth_port": auth}
    return min(MAX_SCORE, _clip(score)), parts


def _qualifies(kind: str, r: dict[str, Any], p: Params) -> bool:
    """Many attempts alone are not hammering: a partner's API client or an admin's day of sessions is not.
    Failures, short sessions on a login port, or a rate no person produces are."""
    if r["top_host"] < p.single_min_attempts:
        return False
    if kind == "auth":
        return (r["judged"] > 0 and r["suspect"] * 2 >= r["judged"]) or r["peak_bin"] >= p.single_min_peak_auth
    return r["fail"] * 2 >= r["n"] or r["peak_bin"] >= p.single_min_peak


def findings(tables: Tables, inb: ir.Table, campaigns: list[Campaign], sources: dict[int, dict[str, np.ndarray]],
             p: Params, settings: Settings) -> list[Finding]:
    out = []
    query = single_sources(inb, p.single_min_attempts, p.sweep_min_hosts, round(p.sweep_window_minutes * 60))
    for r, h in _by_key(tables.to_arrow(query)):
        src, port = r["src_ip"], int(r["dport"])
        kind = service_kind(port)
        hosts = int(h["n"].size)
        order = np.lexsort((h["dst_ip"].astype(str), -h["n"]))
        top = int(order[0])
        r["peak_bin"] = int(h["peak"][top])  # the busiest 5 minutes against the busiest host
        sweep = r["peak_hosts"] >= p.sweep_min_hosts and r["n"] / hosts <= p.sweep_max_per_host
        if not sweep and not _qualifies(kind, r, p):
            continue
        if not sweep and _in_campaign(campaigns, sources, src, str(h["dst_ip"][top]), port, int(h["n"][top])):
            continue
        out.append(_finding(src, port, kind, r, h, order, sweep, p, settings))
    return out


def _finding(src: str, port: int, kind: str, r: dict[str, Any], h: dict[str, np.ndarray], order: np.ndarray,
             sweep: bool, p: Params, settings: Settings) -> Finding:
    category = single_category(kind, port, sweep)
    hosts = int(h["n"].size)
    score, parts = _score(kind, r, sweep, hosts, p)
    severity = severity_from_score(score)
    unanswered = r["answered"] == 0 and r["known"] == r["n"]
    if unanswered and kind == "auth":
        severity = lower_severity(severity)
    svc = AUTH_PORTS.get(port)
    port_text = f"port {port}" + (f" ({svc})" if svc else "")
    evidence: dict[str, Any] = {
        "category": category, "distributed": False, "attempts": int(r["n"]), "hosts": hosts,
        "attempts_per_host": round(r["n"] / hosts, 3), "peak_bin_attempts": int(r["peak_bin"]),
        "most_hosts_in_window": int(r["peak_hosts"]), "window_minutes": p.sweep_window_minutes,
        "bin_seconds": p.bin_minutes * 60,
        "outcomes": {"accepted": int(r["est"]), "refused": int(r["rej"]), "unanswered": int(r["att"]),
                     "other_or_unknown": int(r["n"] - r["est"] - r["rej"] - r["att"]),
                     "service_answered": int(r["answered"]),
                     "denied_by_firewall": int(r["denied"]), "allowed_by_firewall": int(r["n"] - r["denied"])},
        "failed_share": round(r["fail"] / r["n"], 4),
        "suspect_share": round(r["suspect"] / r["judged"], 4) if r["judged"] else None,
        "score_parts": parts,
    }
    if sweep:
        prefixes: dict[str, int] = {}
        for ip in h["dst_ip"].tolist():
            prefixes[_prefix(str(ip))] = prefixes.get(_prefix(str(ip)), 0) + 1
        one = len(prefixes) == 1
        dst_ip = next(iter(prefixes)) if one else None
        evidence["dst_scope"] = "one /24 (dst_ip is the prefix)" if one else (
            f"{len(prefixes)} prefixes (dst_ip left empty)")
        evidence["prefixes"] = dict(sorted(prefixes.items(), key=lambda kv: (-kv[1], kv[0]))[:10])
        evidence["targets"] = [str(h["dst_ip"][i]) for i in order[:MAX_HOSTS_LISTED]]
        where = dst_ip or f"{hosts} hosts in {len(prefixes)} prefixes"
        title = f"Sweep of {where} on {port_text} from {src}"
        text = (f"{src} touched {hosts} internal hosts on {port_text} with {r['n']} attempts "
                f"({r['n'] / hosts:.1f} per host) between {iso_us(r['first'])} and {iso_us(r['last'])}: a "
                f"scan for the service, usually followed by brute force against the hosts that answered "
                f"({r['est']} attempts were accepted). Benign if it is a scanner you run or hired.")
    else:
        top = int(order[0])
        dst_ip = str(h["dst_ip"][top])
        evidence["top_host"] = {"dst_ip": dst_ip, "attempts": int(h["n"][top]), "accepted": int(h["est"][top])}
        title = (f"{capital(CATEGORIES[category][0])}: {src} against {dst_ip} {port_text}, "
                 f"{int(h['n'][top])} attempts")
        text = (f"{src} made {r['n']} connections to {port_text} ({int(h['n'][top])} to {dst_ip}) between "
                f"{iso_us(r['first'])} and {iso_us(r['last'])}, up to {r['peak_bin']} in one "
                f"{p.bin_minutes}-minute bin; {r['fail']} failed and {r['suspect']} failed or were shorter than "
                f"{p.short_session_seconds:g} s. ")
        text += ("Every attempt went unanswered, so nothing was guessed. " if unanswered and kind == "auth" else "")
        text += ("One address is a single machine, not a botnet: block it; it is reported below distributed "
                 "campaigns. Benign if it is your own automation, a partner's integration or a scanner you "
                 "hired (allow-list it).")
    f = Finding(detection=ID, title=title, severity=severity, score=round(score, 4),
                first_seen=iso_us(r["first"]), last_seen=iso_us(r["last"]), explanation=text,
                id=finding_id(ID, category, src, dst_ip, port), src_ip=src, dst_ip=dst_ip, dst_port=port,
                techniques=("T1583.005", *CATEGORIES[category][1]), evidence=evidence)
    return allowlisted(f, settings.allowlist.matches(ip=src))


def scan_findings(tables: Tables, inb: ir.Table, p: Params, settings: Settings) -> list[Finding]:
    """One source touching many ports of one host: a vertical port scan, the reconnaissance before brute
    force. The port is the scan's, not a service's, so dst_port stays empty."""
    rows = tables.to_arrow(port_scans(inb, p.scan_min_ports).order_by(["src_ip", "dst_ip"])).to_pylist()
    out = []
    for r in rows:
        spread = _clip(np.log10(r["ports"] / max(p.scan_min_ports, 1)) / 1.5)
        minutes = max((r["last"] - r["first"]) / US / 60, 1.0)
        rate = _clip(np.log10(r["ports"] / minutes) / 2)  # 100 ports a minute and faster count fully
        score = min(MAX_SCORE, 0.2 + 0.25 * spread + 0.1 * rate)
        text = (f"{r['src_ip']} touched {r['ports']} ports of {r['dst_ip']} with {r['n']} attempts between "
                f"{iso_us(r['first'])} and {iso_us(r['last'])}; {r['answered']} ports answered. A port scan maps "
                f"what a host exposes before brute force or exploitation. Benign if it is a scanner you run or "
                f"hired (allow-list it).")
        f = Finding(detection=ID, title=f"Port scan of {r['dst_ip']} from {r['src_ip']}: {r['ports']} ports",
                    severity=severity_from_score(score), score=round(score, 4), first_seen=iso_us(r["first"]),
                    last_seen=iso_us(r["last"]), explanation=text,
                    id=finding_id(ID, "port_scan", r["src_ip"], r["dst_ip"]), src_ip=r["src_ip"],
                    dst_ip=r["dst_ip"], techniques=("T1583.005", *CATEGORIES["port_scan"][1]),
                    evidence={"category": "port_scan", "distributed": False, "ports": r["ports"],
                              "attempts": r["n"], "answered_ports": r["answered"],
                              "ports_per_minute": round(r["ports"] / minutes, 3),
                              "score_parts": {"spread": round(spread, 3), "rate": round(rate, 3)}})
        out.append(allowlisted(f, settings.allowlist.matches(ip=r["src_ip"])))
    return out
