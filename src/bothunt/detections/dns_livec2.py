"""Resolved and then contacted: for DGA hosts, the candidate generated names that did resolve are joined
with that host's connections to the answered addresses shortly after the answer. The first one with
connections is the live C2. Runs only for flagged hosts, so the engine returns a few rows."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np

from bothunt.detections.dns_names import _TAILS, as_us, lookups
from bothunt.detections.flood_campaigns import iso_us
from bothunt.engine import Tables
from bothunt.netclass import ip_type

if TYPE_CHECKING:
    from bothunt.detections.dga import Params
    from bothunt.detections.dns_dga_hosts import HostVerdict

US = 1_000_000
SKEW_US = 2 * US  # a sensor's DNS and connection clocks may disagree by this much


def _under(query: ibis.ir.StringValue, regs: list[str]) -> ibis.ir.BooleanValue:
    """query is one of `regs` or a name under one (a tail of as many labels, compared as a set)."""
    by_len: dict[int, list[str]] = defaultdict(list)
    for r in regs:
        by_len[r.count(".") + 1].append(r)
    cond = ibis.literal(False)
    for k, values in sorted(by_len.items()):
        if k in _TAILS:
            cond = cond | query.re_extract(_TAILS[k], 0).isin(sorted(values))
    return cond


def find(tables: Tables, verdicts: list[HostVerdict], p: Params) -> dict[tuple[str, str], list[dict[str, Any]]]:
    wanted = {(v.src_ip, v.host): v.c2_candidates for v in verdicts if v.c2_candidates}
    if not wanted:
        return {}
    regs = sorted(set().union(*wanted.values()))
    srcs = sorted({s for s, _ in wanted})
    q = lookups(tables.dns, p.ignore_suffixes)
    q = q.filter(q.src_ip.isin(srcs) & (q.ok == 1) & _under(q.query, regs))
    q = q.select("src_ip", "hkey", "query", "ts", "answers").order_by(["src_ip", "ts", "query"])
    res = as_us(tables.to_arrow(q), t_us="ts")
    resolutions = []
    for r in res.to_pylist():
        key = (r["src_ip"], r["hkey"])
        reg = _reg_of(r["query"], wanted.get(key, {}))
        if reg is None:
            continue
        for a in r["answers"] or []:
            if ip_type(a) == "Public":
                resolutions.append((key, reg, r["query"], int(r["t_us"]), a))
    if not resolutions:
        return {}
    ips = sorted({x[4] for x in resolutions})
    c = tables.conn
    conns = c.filter(c.src_ip.isin(srcs) & c.dst_ip.isin(ips)).select(
        ts=c.ts, src_ip=c.src_ip, dst_ip=c.dst_ip, dst_port=c.dst_port, proto=c.proto,
        service=c.service, state=c.state, bytes_out=c.bytes_out, bytes_in=c.bytes_in,
        server_name=c.server_name, process=c.process,
    ).order_by(["src_ip", "dst_ip", "ts", "dst_port"]).limit(200_000)
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in as_us(tables.to_arrow(conns), t_us="ts").to_pylist():
        by_pair[(row["src_ip"], row["dst_ip"])].append(row)
    window = int(p.c2_window_seconds * US)
    found: dict[tuple[tuple[str, str], str], dict[str, Any]] = {}
    seen: dict[tuple[tuple[str, str], str], set[tuple[str, int]]] = defaultdict(set)
    for key, reg, name, t, ip in resolutions:
        rows = by_pair.get((key[0], ip), [])
        times = np.asarray([x["t_us"] for x in rows], dtype=np.int64)
        hit = np.flatnonzero((times >= t - SKEW_US) & (times <= t + window))
        if not hit.size:
            continue
        seen[(key, reg)].update((ip, int(i)) for i in hit)  # a connection after two answers counts once
        if (key, reg) in found:
            continue
        first = rows[int(hit[0])]
        found[(key, reg)] = {
            "domain": reg, "name": name, "resolved_at": iso_us(t), "answer": ip,
            "priority": wanted[key][reg], "inside_burst": wanted[key][reg] >= 4,
            "connection": {"dst_ip": ip, "dst_port": first["dst_port"], "proto": first["proto"],
                           "service": first["service"], "state": first["state"], "bytes_out": first["bytes_out"],
                           "bytes_in": first["bytes_in"], "server_name": first["server_name"],
                           "process": first["process"], "at": iso_us(first["t_us"]),
                           "delay_s": round((first["t_us"] - t) / US, 3)},
        }
    for k, item in found.items():
        item["connections"] = len(seen[k])
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (key, _), item in found.items():
        out[key].append(item)
    return {k: sorted(v, key=lambda x: (-x["priority"], -x["connections"], x["resolved_at"], x["domain"]))
            for k, v in out.items()}


def _reg_of(query: str, regs: dict[str, int]) -> str | None:
    labels = query.split(".")
    for k in range(2, len(labels) + 1):
        tail = ".".join(labels[-k:])
        if tail in regs:
            return tail
    return None
