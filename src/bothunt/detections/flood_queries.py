"""The engine half of the inbound-flood detection: Ibis expressions that reduce inbound connections to
per-service bins, per-campaign sources and per-source summaries. Written once for DuckDB and Spark."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from bothunt.detections.flood_ports import AUTH_PORTS, AUTH_SERVICES

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = 1_000_000
# The firewall's own words for a connection it stopped (CEF act, CommonSecurityLog DeviceAction,
# Defender's blocked action types), compared in lower case.
DENY_WORDS = ("deny", "denied", "drop", "dropped", "block", "blocked", "reject", "rejected", "reset-both",
              "reset-client", "reset-server", "firewallinboundconnectionblocked", "connectionfailed-blocked")


@contextmanager
def materialized(tables, expr: ir.Table) -> Iterator[ir.Table]:
    """The expression computed once and kept for the run's later queries, where that pays: on Spark every
    query otherwise re-plans and re-reads the inputs (three times faster measured). DuckDB recomputes a
    filter over columnar data faster than it would copy it, so it gets the expression back unchanged.
    Ibis's public Table.cache() would pick the default backend for in-memory tables, hence the engine's
    own connection here (a Tables.cache() in engine.py would be the better home)."""
    con = tables.con
    if tables.engine != "spark" or not hasattr(con, "_cached_table"):
        yield expr
        return
    con._run_pre_execute_hooks(expr)  # register in-memory inputs before the cache compiles them
    cached = con._cached_table(expr)
    try:
        yield cached
    finally:
        cached.release()


def epoch_us(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Microseconds since 1970: the one timestamp arithmetic DuckDB and Spark agree on to the microsecond."""
    return ts.delta(ibis.literal(EPOCH), unit="microsecond")


def denied(action: ir.StringValue, words: Iterable[str] = DENY_WORDS) -> ir.BooleanValue:
    return action.lower().isin(tuple(words)).fill_null(False)


def annotate(conn: ir.Table, bin_seconds: int, short_seconds: float, short_bytes: int) -> ir.Table:
    """Inbound rows with what every reduction needs: time in microseconds, the bin, and outcome flags."""
    c = conn.filter(conn.direction == "inbound")
    t = epoch_us(c.ts)
    est = (c.state == "established").fill_null(False)
    fail = c.state.isin(("rejected", "attempted")).fill_null(False) | denied(c.action)
    nbytes = c.bytes_out.fill_null(0) + c.bytes_in.fill_null(0)
    has_bytes = c.bytes_out.notnull() | c.bytes_in.notnull()
    # shorter than a person's login: by duration where the sensor has one, else by bytes (CEF has none)
    short = ibis.cases((c.duration.notnull(), c.duration < short_seconds), (has_bytes, nbytes < short_bytes),
                       else_=False)
    return c.mutate(
        t_us=t,
        bin=t // (bin_seconds * US),
        dport=c.dst_port.fill_null(0),
        is_est=est.cast("int64"),
        is_rej=(c.state == "rejected").fill_null(False).cast("int64"),
        is_att=(c.state == "attempted").fill_null(False).cast("int64"),
        is_denied=denied(c.action).cast("int64"),
        # positively failed: refused, unanswered or stopped by the firewall (null state is unknown)
        is_fail=fail.cast("int64"),
        # a failed attempt, or an accepted session too short to be a person's login
        is_suspect=(fail | short).cast("int64"),
        # rows that say either way (Defender's accepted inbound rows carry neither duration nor bytes)
        is_judged=(fail | c.duration.notnull() | has_bytes).cast("int64"),
        # the service spoke: accepted with more than a single packet back (a SYN answered by RST is one
        # packet each way, which some sensors still call a closed flow)
        is_answered=(est & (c.pkts_in.isnull() | (c.pkts_in >= 2))).cast("int64"),
        is_known=(c.state.isin(("established", "rejected", "attempted")).fill_null(False) | fail).cast("int64"),
    )


def span(tables, inb: ir.Table) -> tuple[int | None, int | None]:
    """First and last event time (microseconds) of the inbound rows."""
    out = tables.to_arrow(inb.aggregate(lo=inb.t_us.min(), hi=inb.t_us.max()))
    return out["lo"][0].as_py(), out["hi"][0].as_py()


def service_bins(inb: ir.Table, bin_seconds: int, min_requests: int, only_auth: bool = False) -> ir.Table:
    """Per (dst_ip, dport, bin b): requests, distinct sources, accepted, failed-or-short and denied
    attempts; only for services with at least one bin of `min_requests` (below it, never a flood)."""
    rows = inb.filter(inb.dst_ip.notnull())
    if only_auth:
        ports = (*AUTH_PORTS, 25, 465, 587)
        rows = rows.filter(rows.dport.isin(ports) | rows.service.lower().isin(tuple(AUTH_SERVICES)))
    b = rows.group_by(["dst_ip", "dport", (rows.t_us // (bin_seconds * US)).name("b")]).agg(
        n=rows.count(), d=rows.src_ip.nunique(), suspect=rows.is_suspect.sum(), est=rows.is_est.sum(),
        fail=rows.is_fail.sum(), denied=rows.is_denied.sum(), judged=rows.is_judged.sum(),
        svc=rows.service.lower().max(),  # the sensor's word for the service, to name ports we do not know
    )
    busy = b.group_by(["dst_ip", "dport"]).agg(peak=b.n.max())
    busy = busy.filter(busy.peak >= min_requests).select("dst_ip", "dport")
    b = b.semi_join(busy, ["dst_ip", "dport"])
    if not only_auth:
        return b
    # sources seen for the first time on the service, per bin: a login service's users come back, the
    # sources of a stuffing campaign are new
    first = rows.group_by(["dst_ip", "dport", "src_ip"]).agg(f=rows.t_us.min())
    new = first.group_by(["dst_ip", "dport", (first.f // (bin_seconds * US)).name("b")]).agg(new=first.count())
    j = b.left_join(new, [b.dst_ip == new.dst_ip, b.dport == new.dport, b.b == new.b])
    return j.select(*[j[c] for c in b.columns], new=j.new.fill_null(0))


def campaign_sources(inb: ir.Table, campaigns: pa.Table) -> ir.Table:
    """Per (campaign id, source): attempts and outcome counts inside the campaign's time range.
    `campaigns` has cid, dst_ip, dport, lo_us, hi_us (hi exclusive)."""
    cam = ibis.memtable(campaigns)
    j = inb.join(cam, [inb.dst_ip == cam.dst_ip, inb.dport == cam.dport,
                       inb.t_us >= cam.lo_us, inb.t_us < cam.hi_us])
    return j.group_by(["cid", "src_ip"]).agg(
        n=j.count(), est=j.is_est.sum(), rej=j.is_rej.sum(), att=j.is_att.sum(), denied=j.is_denied.sum(),
        fail=j.is_fail.sum(), suspect=j.is_suspect.sum(), judged=j.is_judged.sum(), answered=j.is_answered.sum(),
        known=j.is_known.sum(), first=j.t_us.min(), last=j.t_us.max(),
    )


def single_sources(inb: ir.Table, min_attempts: int, min_hosts: int, sweep_seconds: int) -> ir.Table:
    """Per (source, port, host) for sources that hammer one host or sweep many on one port: the host's
    attempts and busiest bin (h_*) beside the source's totals on that port and the most hosts it touched
    within one sweep window (one query)."""
    rows = inb.filter(inb.src_ip.notnull() & inb.dst_ip.notnull())
    per_bin = rows.group_by(["src_ip", "dport", "dst_ip", "bin"]).agg(nb=rows.count())
    peak = per_bin.group_by(["src_ip", "dport", "dst_ip"]).agg(h_peak=per_bin.nb.max())
    window = rows.group_by(["src_ip", "dport", (rows.t_us // (sweep_seconds * US)).name("w")]).agg(
        wh=rows.dst_ip.nunique())
    spread = window.group_by(["src_ip", "dport"]).agg(peak_hosts=window.wh.max())
    per_host = rows.group_by(["src_ip", "dport", "dst_ip"]).agg(
        h_n=rows.count(), h_est=rows.is_est.sum(), h_first=rows.t_us.min(), h_last=rows.t_us.max())
    per_host = per_host.join(peak, ["src_ip", "dport", "dst_ip"])
    top = per_host.group_by(["src_ip", "dport"]).agg(top_host=per_host.h_n.max(), hosts=per_host.count())
    tot = rows.group_by(["src_ip", "dport"]).agg(
        n=rows.count(), est=rows.is_est.sum(), rej=rows.is_rej.sum(), att=rows.is_att.sum(),
        denied=rows.is_denied.sum(), fail=rows.is_fail.sum(), suspect=rows.is_suspect.sum(),
        judged=rows.is_judged.sum(), answered=rows.is_answered.sum(), known=rows.is_known.sum(),
        first=rows.t_us.min(), last=rows.t_us.max(),
    )
    cand = tot.join(top, ["src_ip", "dport"]).join(spread, ["src_ip", "dport"])
    cand = cand.filter((cand.top_host >= min_attempts) | (cand.peak_hosts >= min_hosts))
    return per_host.join(cand, ["src_ip", "dport"])


def port_scans(inb: ir.Table, min_ports: int) -> ir.Table:
    """Per (source, host): distinct ports touched, attempts and answered ports, for sources that touched
    at least `min_ports` ports of one host (a vertical scan)."""
    rows = inb.filter(inb.src_ip.notnull() & inb.dst_ip.notnull())
    per_port = rows.group_by(["src_ip", "dst_ip", "dport"]).agg(n=rows.count(), est=rows.is_answered.sum(),
                                                                   first=rows.t_us.min(), last=rows.t_us.max())
    out = per_port.group_by(["src_ip", "dst_ip"]).agg(
        ports=per_port.count(), n=per_port.n.sum(), answered=(per_port.est > 0).cast("int64").sum(),
        first=per_port.first.min(), last=per_port.last.max())
    return out.filter(out.ports >= min_ports)
