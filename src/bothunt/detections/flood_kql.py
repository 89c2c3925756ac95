"""`profile: sentinel-kql`: the published inbound-flood rule, reproduced to compare with Sentinel.

CommonSecurityLog rows of the last hour whose DeviceAction is not a deny word, summarised per
DestinationIP, DestinationPort and 5-minute bin; a bin with more than 50 distinct sources and more than 500
events is one alert, its category named by port (80/443/8080/8443 HTTP flood, 22/3389 credential stuffing
/ brute force, 25/587 spam, else volumetric flood). Two unavoidable differences, both documented in
docs/inbound-flood.md: "the last hour" ends at the end of the data (or --until) rather than at the time
the query runs, and distinct sources are counted exactly where Kusto's dcount() estimates them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bothunt.config import Settings
from bothunt.detections.base import allowlisted
from bothunt.detections.flood_campaigns import iso_us
from bothunt.detections.flood_ports import kql_category
from bothunt.detections.flood_queries import US, denied, epoch_us
from bothunt.schema import Finding, finding_id

if TYPE_CHECKING:
    from bothunt.detections.inbound_flood import Params
    from bothunt.engine import Tables

ID = "inbound_flood"
BIN_SECONDS = 300
MIN_SOURCES = 50  # the rule's "> 50"
MIN_EVENTS = 500  # the rule's "> 500"


def detect(tables: Tables, settings: Settings, p: Params) -> list[Finding]:
    c = tables.conn
    if p.kql_sources:
        c = c.filter(c.source.isin(tuple(p.kql_sources)))
    c = c.filter(~denied(c.action, tuple(w.lower() for w in p.kql_denied_actions)))
    end = settings.until
    if end is None:
        end = tables.to_arrow(c.aggregate(hi=c.ts.max()))["hi"][0].as_py()
        if end is None:
            return []
    else:
        c = c.filter(c.ts < end)
    c = c.filter(c.ts >= end - timedelta(minutes=p.kql_window_minutes))
    t = epoch_us(c.ts)
    c = c.mutate(t_us=t, b=t // (BIN_SECONDS * US))
    agg = c.group_by(["dst_ip", "dst_port", "b"]).agg(
        events=c.count(), sources=c.src_ip.nunique(), first=c.t_us.min(), last=c.t_us.max())
    agg = agg.filter((agg.sources > MIN_SOURCES) & (agg.events > MIN_EVENTS))
    rows = tables.to_arrow(agg.order_by(["dst_ip", "dst_port", "b"])).to_pylist()
    out = []
    for r in rows:
        port = r["dst_port"]
        category = kql_category(port)
        start = iso_us(r["b"] * BIN_SECONDS * US)
        f = Finding(
            detection=ID, title=f"{category} against {r['dst_ip']}:{port} (published rule)",
            severity="medium", score=0.5, first_seen=iso_us(r["first"]), last_seen=iso_us(r["last"]),
            explanation=(f"Published rule: {r['sources']} distinct sources sent {r['events']} events not "
                         f"denied by the firewall to {r['dst_ip']}:{port} in the 5-minute bin starting {start} "
                         f"(> {MIN_SOURCES} sources and > {MIN_EVENTS} events)."),
            id=finding_id(ID, "kql", r["dst_ip"], port, start), dst_ip=r["dst_ip"], dst_port=port,
            techniques=("T1583.005", "T1498", "T1110"),
            evidence={"profile": "sentinel-kql", "category": category, "bin_start": start,
                      "bin_seconds": BIN_SECONDS, "events": r["events"], "distinct_sources": r["sources"],
                      "window_minutes": p.kql_window_minutes},
        )
        out.append(allowlisted(f, settings.allowlist.matches(ip=r["dst_ip"])))
    return out
