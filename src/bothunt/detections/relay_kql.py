"""`profile: sentinel-kql`: the published relay rule, reproduced to compare with Sentinel.

DeviceNetworkEvents: inbound-accepted events from public addresses joined with the same device's
successful outbound connections to public addresses, not to ports 80/443/53, to another address than
the inbound one, starting within 5 minutes after the inbound event; at least 3 such pairs per device and
outbound process is one alert. The pairs are the same as the published full join on the device; they are
found with the bucketed join (relay_join.py) so the profile does not share the rule's quadratic cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from bothunt.config import Settings
from bothunt.detections.base import allowlisted
from bothunt.detections.flood_campaigns import iso_us
from bothunt.detections.flood_queries import US, epoch_us
from bothunt.schema import Finding, finding_id

if TYPE_CHECKING:
    from bothunt.detections.relay import Params
    from bothunt.engine import Tables

ID = "relay"


def _succeeded(c: ir.Table, defender_word: str) -> ir.BooleanValue:
    """Defender rows by their ActionType (what the rule filters on); other sources by the outcome."""
    return ((c.source == "defender") & (c.action == defender_word)) | (
        (c.source != "defender").fill_null(True) & (c.state == "established"))


def detect(tables: Tables, settings: Settings, p: Params) -> list[Finding]:
    c = tables.conn
    if p.kql_sources:
        c = c.filter(c.source.isin(tuple(p.kql_sources)))
    c = c.filter(c.remote_ip_type == "Public")
    i = c.filter((c.direction == "inbound") & _succeeded(c, "InboundConnectionAccepted"))
    i = i.select(dev=i.host.fill_null(i.dst_ip), origin=i.src_ip, t_in=epoch_us(i.ts))
    o = c.filter((c.direction == "outbound") & _succeeded(c, "ConnectionSuccess")
                 & ~c.dst_port.isin(tuple(p.kql_excluded_ports)).fill_null(False))
    o = o.select(dev=o.host.fill_null(o.src_ip), dev_ip=o.src_ip, tgt=o.dst_ip, port=o.dst_port,
                 proc=o.process, t_out=epoch_us(o.ts))
    w = int(p.kql_window_minutes * 60 * US)
    i2 = ibis.union(*[i.mutate(k=i.t_in // w + j) for j in (0, 1)])
    j = o.mutate(k=o.t_out // w).join(i2, ["dev", "k"])
    j = j.filter((j.tgt != j.origin) & (j.t_out >= j.t_in) & (j.t_out - j.t_in <= w))
    g = j.group_by(["dev", j.proc.fill_null("").name("proc")]).agg(
        events=j.count(), first=j.t_in.min(), last=j.t_out.max(), operators=j.origin.nunique(),
        targets=j.tgt.nunique(), dev_ip=j.dev_ip.min())
    g = g.filter(g.events >= p.kql_min_events).order_by(["dev", "proc"])
    rows = tables.to_arrow(g).to_pylist()
    if not rows:
        return []
    tops = _top_targets(tables, j, rows)
    out = []
    for r in rows:
        tgt, port = tops.get((r["dev"], r["proc"]), (None, None))
        proc = r["proc"] or None
        f = Finding(
            detection=ID, title=f"Possible relay on {r['dev']} ({proc or 'unknown process'}) (published rule)",
            severity="medium", score=0.5, first_seen=iso_us(r["first"]), last_seen=iso_us(r["last"]),
            explanation=(f"Published rule: {r['events']} outbound connections by {proc or 'an unknown process'} "
                         f"on {r['dev']} to {r['targets']} public address(es), not on ports "
                         f"{'/'.join(map(str, p.kql_excluded_ports))}, started within "
                         f"{p.kql_window_minutes:g} minutes after inbound connections from {r['operators']} "
                         f"other public address(es)."),
            id=finding_id(ID, "kql", r["dev"], proc), host=r["dev"] if r["dev"] != r["dev_ip"] else None,
            src_ip=r["dev_ip"], process=proc, dst_ip=tgt, dst_port=port,
            techniques=("T1583.005", "T1090"),
            evidence={"profile": "sentinel-kql", "pairs": r["events"], "operators": r["operators"],
                      "targets": r["targets"], "window_minutes": p.kql_window_minutes},
        )
        out.append(allowlisted(f, settings.allowlist.matches(ip=r["dev_ip"], process=proc)))
    return out


def _top_targets(tables: Tables, j: ir.Table, rows: list[dict]) -> dict[tuple[str, str], tuple[str, int]]:
    devs = sorted({r["dev"] for r in rows})
    j = j.filter(j.dev.isin(devs))
    t = j.group_by(["dev", j.proc.fill_null("").name("proc"), "tgt", "port"]).agg(n=j.count())
    best: dict[tuple[str, str], tuple[int, str, int]] = {}
    for r in tables.to_arrow(t).to_pylist():
        key = (r["dev"], r["proc"])
        cand = (-r["n"], str(r["tgt"]), int(r["port"] or 0))
        if key not in best or cand < best[key]:
            best[key] = cand
    return {k: (v[1], v[2]) for k, v in best.items()}
