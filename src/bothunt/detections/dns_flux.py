"""Fast flux: one name answered with a low TTL and, over time, many distinct addresses spread over many
networks (/16s, or ASNs where intel data is configured), whoever looked it up. The engine reduces answers
to per-name counts of lookups, hosts, addresses and networks; numpy scores the few candidates and groups
them by registered domain."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa

from bothunt.config import Settings
from bothunt.detections.base import allowlisted, severity_from_score
from bothunt.detections.dns_names import as_us, keep_values
from bothunt.detections.flood_campaigns import iso_us
from bothunt.engine import Tables
from bothunt.schema import Finding, finding_id

if TYPE_CHECKING:
    from bothunt.detections.dns_c2 import Params

ID = "dns_c2"
TECHNIQUES = ("T1583.005", "T1568.001", "T1071.004")
_V4 = r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$"
# answers that never identify an Internet host: loopback, private, link-local, unspecified
_NOT_PUBLIC = r"^(0|10|127)\.|^192\.168\.|^172\.(1[6-9]|2[0-9]|3[01])\.|^169\.254\.|^(fc|fd|fe80|::)"


def candidates(tables: Tables, q: ibis.Table, p: Params) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(per-name summaries of candidates, their distinct addresses, their hosts with lookup counts)."""
    r = q.filter((q.ok == 1) & (q.answers.length() > 0))
    per_name = r.group_by("query").agg(
        lookups=r.count(), hosts=r.src_ip.nunique(), min_ttl=r.ttls.mins().min(), max_ttl=r.ttls.maxs().max(),
        max_answers=r.answers.length().max(), first_ts=r.ts.min(), last_ts=r.ts.max(),
    )
    u = r.select("query", a=r.answers.unnest())
    u = u.filter((u.a.re_search(_V4) | u.a.contains(":")) & ~u.a.lower().re_search(_NOT_PUBLIC))
    net = ibis.ifelse(u.a.contains(":"), u.a.lower().re_extract(r"^([0-9a-f]*:[0-9a-f]*)", 1),
                      u.a.re_extract(r"^([0-9]+\.[0-9]+)\.", 1))
    u = u.mutate(net=net)
    spread = u.group_by("query").agg(ips=u.a.nunique(), nets=u.net.nunique())
    cand = per_name.join(spread, "query").filter(
        (ibis._.ips >= p.flux_min_ips) & (ibis._.nets >= p.flux_min_nets) & (ibis._.max_ttl <= p.flux_max_ttl))
    summary = as_us(tables.to_arrow(cand.order_by("query")), first_us="first_ts", last_us="last_ts")
    if summary.num_rows == 0:
        return summary, pa.table({}), pa.table({})
    names = summary["query"].to_pylist()
    ips = tables.to_arrow(keep_values(u, "query", names).select("query", "a").distinct().order_by(["query", "a"]))
    rc = keep_values(r, "query", names)
    hosts = rc.group_by(["query", "src_ip"]).agg(n=rc.count(), first_ts=rc.ts.min())
    return summary, ips, as_us(tables.to_arrow(hosts.order_by(["query", "src_ip"])), first_us="first_ts")


def _asns(addresses: list[str], settings: Settings) -> dict[str, Any] | None:
    """ASN and network class of each address when intel files are configured; None otherwise."""
    if not settings.intel:
        return None
    from bothunt.netclass.intel import IntelSettings, NetIntel

    intel = NetIntel.load(IntelSettings.from_mapping(settings.intel))
    if not intel.has_data:
        return None
    t = intel.classify(addresses)
    return {ip: (asn, cls) for ip, asn, cls in zip(t["ip"].to_pylist(), t["asn"].to_pylist(),
                                                    t["net_class"].to_pylist(), strict=True)}


def score(ips: int, nets: int, asns: int | None, ttl: float, p: Params) -> tuple[float, dict[str, float]]:
    """0..1 from how many networks, how many addresses, how low the TTL and how spread the addresses are."""
    spread_over = asns if asns is not None else nets
    parts = {
        "networks": float(np.clip((spread_over - p.flux_min_nets) / 20.0, 0, 1)),
        "addresses": float(np.clip((ips - p.flux_min_ips) / 40.0, 0, 1)),
        "low_ttl": float(np.clip(1.0 - ttl / max(p.flux_max_ttl, 1), 0, 1)),
        "spread": float(np.clip(spread_over / max(ips, 1) * 2.0, 0, 1)),
    }
    s = 0.40 * parts["networks"] + 0.25 * parts["addresses"] + 0.15 * parts["low_ttl"] + 0.20 * parts["spread"]
    return float(np.clip(s, 0, 1)), {k: round(v, 3) for k, v in parts.items()}


def findings(summary: pa.Table, ips: pa.Table, hosts: pa.Table, p: Params, settings: Settings) -> list[Finding]:
    from bothunt.dga_model import registered_domain

    if summary.num_rows == 0:
        return []
    addr: dict[str, list[str]] = defaultdict(list)
    for q, a in zip(ips["query"].to_pylist(), ips["a"].to_pylist(), strict=True):
        addr[q].append(a)
    who: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in hosts.to_pylist():
        who[r["query"]].append({"src_ip": r["src_ip"], "lookups": int(r["n"]), "first_seen": iso_us(r["first_us"])})
    intel = _asns(sorted({a for v in addr.values() for a in v}), settings)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in summary.to_pylist():
        groups[registered_domain(row["query"]) or row["query"]].append(row)
    out = []
    for reg, rows in sorted(groups.items()):
        names = [r["query"] for r in rows]
        all_ips = sorted({a for n in names for a in addr[n]})
        nets = len({_net(a) for a in all_ips})
        asns = None
        classes: dict[str, int] = {}
        if intel is not None:
            asns = len({intel[a][0] for a in all_ips if intel.get(a, (None,))[0]}) or None
            for a in all_ips:
                c = intel.get(a, (None, None))[1] or "unknown"
                classes[c] = classes.get(c, 0) + 1
        # answers from a cache count down, so the largest TTL seen is the name's own
        ttl = max(float(r["max_ttl"]) for r in rows)
        s, parts = score(len(all_ips), nets, asns, ttl, p)
        if s < p.flux_min_score:
            continue
        resolvers: dict[str, dict[str, Any]] = {}
        for n in names:
            for h in who[n]:
                cur = resolvers.setdefault(h["src_ip"], {"src_ip": h["src_ip"], "lookups": 0,
                                                         "first_seen": h["first_seen"]})
                cur["lookups"] += h["lookups"]
                cur["first_seen"] = min(cur["first_seen"], h["first_seen"])
        ranked = sorted(resolvers.values(), key=lambda h: (-h["lookups"], h["src_ip"]))
        ev = {
            "kind": "fast_flux", "names": names[: p.sample_names], "addresses": len(all_ips), "networks_16": nets,
            "asns": asns, "address_classes": classes or None, "ttl": ttl,
            "min_ttl": min(float(r["min_ttl"]) for r in rows),
            "max_answers_per_lookup": max(int(r["max_answers"]) for r in rows),
            "lookups": sum(int(r["lookups"]) for r in rows), "hosts": ranked[: p.sample_names],
            "host_count": len(ranked), "sample_addresses": all_ips[: p.sample_names], "score_parts": parts,
        }
        top = ranked[0]["src_ip"] if ranked else None
        f = Finding(
            id=finding_id(ID, "fast_flux", reg), detection=ID,
            title=f"Fast flux: {reg} answered with {len(all_ips)} addresses in {nets} networks (TTL {ttl:.0f} s)",
            severity=severity_from_score(s), score=round(s, 4), first_seen=iso_us(min(r["first_us"] for r in rows)),
            last_seen=iso_us(max(r["last_us"] for r in rows)), src_ip=top, domain=reg, techniques=TECHNIQUES,
            evidence=ev, explanation=_explain(reg, names, len(all_ips), nets, asns, ttl, len(ranked)),
        )
        hits = settings.allowlist.matches(domain=reg)
        for n in names:
            hits += [h for h in settings.allowlist.matches(domain=n) if h not in hits]
        hits += [f"cdn:{pat}" for pat in p.cdn_domains if any(_matches(n, pat) for n in names)]
        out.append(allowlisted(f, hits))
    return out


def _matches(name: str, pattern: str) -> bool:
    from bothunt.config import domain_matches

    return domain_matches(name, pattern)


def _net(a: str) -> str:
    if ":" in a:
        return ":".join(a.lower().split(":")[:2])
    return ".".join(a.split(".")[:2])


def _explain(reg: str, names: list[str], ips: int, nets: int, asns: int | None, ttl: float, hosts: int) -> str:
    spread = f"{nets} /16 networks" + (f" and {asns} ASNs" if asns else "")
    shown = ", ".join(names[:3]) + (" and more" if len(names) > 3 else "")
    who = shown if names == [reg] else f"{shown} under {reg}"
    return (
        f"{who} resolved, over the data, to {ips} distinct addresses in {spread} with a TTL of {ttl:.0f} s, "
        f"looked up by {hosts} internal host(s). Rotating a name quickly through many unrelated networks "
        "hides the real server behind compromised machines (fast flux, T1568.001). Benign for CDNs, NTP "
        "pools and large cloud services (listed in cdn_domains and the known services): check the "
        "addresses' owners."
    )
