"""`profile: sentinel-kql`: the published beaconing rule, reproduced to compare with Sentinel.

DeviceNetworkEvents of the last 24 hours (counted back from the newest event in the data): outbound
connections to public addresses, not to ports 80/443/53, not by nine busy processes (svchost.exe,
Teams.exe, chrome.exe, ...). Per device, initiating process, remote IP and port: at least 12
connections, at least 30 minutes from the first to the last, 4 to 120 per hour over that time. Graded by
the count alone; no regularity is measured, which is what the default detection adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from bothunt.config import Settings
from bothunt.detections.base import allowlisted
from bothunt.detections.beacon_query import US, epoch_us
from bothunt.detections.beacon_report import iso_us
from bothunt.schema import Finding, finding_id

if TYPE_CHECKING:
    from bothunt.detections.beacon import Params
    from bothunt.engine import Tables

ID = "beacon"
GRADES = ("low", "medium", "high")
GRADE_SCORES = {"low": 0.3, "medium": 0.5, "high": 0.75}


def detect(tables: Tables, settings: Settings, p: Params) -> list[Finding]:
    c = tables.conn
    if p.kql_sources:
        c = c.filter(c.source.isin(tuple(p.kql_sources)))
    c = c.filter((c.direction == "outbound") & (c.remote_ip_type == "Public").fill_null(True))
    c = c.mutate(t_us=epoch_us(c.ts), proc_lc=c.process.lower().fill_null(""))
    newest = tables.to_arrow(c.aggregate(hi=c.t_us.max()))["hi"][0].as_py()
    if newest is None:
        return []
    excluded = tuple(x.lower() for x in p.kql_excluded_processes)
    c = c.filter((c.t_us > newest - int(p.kql_window_hours * 3600 * US))
                 & ~c.dst_port.isin(tuple(p.kql_excluded_ports)).fill_null(False)
                 & ~c.proc_lc.isin(excluded))
    g = c.group_by([c.host.fill_null("").name("dev"), c.process.fill_null("").name("proc"), "dst_ip",
                    "dst_port"]).agg(n=c.count(), first=c.t_us.min(), last=c.t_us.max(), src_ip=c.src_ip.min())
    hours = (g.last - g.first).cast("float64") / (3600 * US)
    rate = g.n.cast("float64") / ibis.ifelse(hours > 0, hours, 1e-9)
    lo, hi = p.kql_rate_per_hour
    g = g.filter((g.n >= p.kql_min_connections) & (hours * 60 >= p.kql_min_minutes) & (rate >= lo)
                 & (rate <= hi)).mutate(rate=rate)
    rows = tables.to_arrow(g.order_by(["dev", "proc", "dst_ip", "dst_port"])).to_pylist()
    out = []
    for r in rows:
        level = sum(r["n"] >= x for x in p.kql_grades) - 1
        sev = GRADES[max(0, min(level, 2))]
        proc = r["proc"] or None
        dev = r["dev"] or r["src_ip"]
        f = Finding(
            detection=ID, title=f"Possible beaconing: {dev} {proc or ''} -> {r['dst_ip']}:{r['dst_port']} "
                                f"(published rule)".replace("  ", " "),
            severity=sev, score=GRADE_SCORES[sev], first_seen=iso_us(r["first"]), last_seen=iso_us(r["last"]),
            explanation=(f"Published rule: {r['n']} connections by {proc or 'an unknown process'} on {dev} to "
                         f"{r['dst_ip']}:{r['dst_port']} over {(r['last'] - r['first']) / 60e6:.0f} minutes "
                         f"({r['rate']:.1f} per hour) in the last {p.kql_window_hours:g} hours; graded {sev} by "
                         f"the count alone (no regularity measured)."),
            id=finding_id(ID, "kql", dev, proc, r["dst_ip"], r["dst_port"]),
            host=r["dev"] or None, src_ip=r["src_ip"], process=proc, dst_ip=r["dst_ip"], dst_port=r["dst_port"],
            techniques=("T1583.005", "T1071"),
            evidence={"profile": "sentinel-kql", "connections": r["n"], "per_hour": round(r["rate"], 3),
                      "minutes": round((r["last"] - r["first"]) / 60e6, 2),
                      "window_hours": p.kql_window_hours},
        )
        out.append(allowlisted(f, settings.allowlist.matches(process=proc, ip=r["dst_ip"])))
    return out
