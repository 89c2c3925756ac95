"""The engine half of the relay detection: a time-bounded join of each device's inbound sessions with its
outbound sessions, linear in events.

Rows are bucketed by device and time (bucket width = the join window W); each outbound row meets only
the inbound rows of its device in its own bucket and the two neighbouring ones, so every pair within W is
found (the same pairs as a full join on device filtered to |lag| <= W) without pairing every inbound with
every outbound of the device. Cost grows with events times the number of events inside one window.
"""

from __future__ import annotations

from collections.abc import Iterable

import ibis
import ibis.expr.types as ir

from bothunt.detections.flood_queries import US, denied, epoch_us

OUTBOUND_DIRECTIONS = ("outbound", "internal")


def accepted(c: ir.Table) -> ir.BooleanValue:
    """Not positively failed: refused, unanswered and firewall-denied rows cannot carry relayed traffic."""
    return ~(c.state.isin(("rejected", "attempted")).fill_null(False) | denied(c.action))


def inbound_legs(conn: ir.Table) -> ir.Table:
    c = conn.filter((conn.direction == "inbound") & conn.src_ip.notnull() & conn.dst_ip.notnull())
    c = c.filter(accepted(c))
    return c.select(
        dev=c.host.fill_null(c.dst_ip), dev_ip=c.dst_ip, origin=c.src_ip, in_port=c.dst_port, t_in=epoch_us(c.ts),
        dur_in=c.duration, in_up=c.bytes_out, in_down=c.bytes_in, in_proc=c.process.lower(),
    )


def outbound_legs(conn: ir.Table, ignore_ports: Iterable[int]) -> ir.Table:
    c = conn.filter(conn.direction.isin(OUTBOUND_DIRECTIONS) & conn.src_ip.notnull() & conn.dst_ip.notnull())
    c = c.filter(accepted(c) & ~c.dst_port.isin(tuple(ignore_ports)).fill_null(False))
    return c.select(
        dev=c.host.fill_null(c.src_ip), out_ip=c.src_ip, tgt=c.dst_ip, out_port=c.dst_port,
        out_sport=c.src_port, t_out=epoch_us(c.ts), dur_out=c.duration, out_up=c.bytes_out, out_down=c.bytes_in,
        out_proc=c.process.lower(), sni=c.server_name, public=(c.direction == "outbound"),
    )


def pairs(inb: ir.Table, out: ir.Table, window_seconds: float) -> ir.Table:
    """Every (outbound, inbound) pair of one device with |t_out - t_in| <= W and a target that is not the
    inbound's own source. `lag` is t_out - t_in in microseconds (negative: outbound came first)."""
    w = int(window_seconds * US)
    inb3 = ibis.union(*[inb.mutate(k=inb.t_in // w + j) for j in (-1, 0, 1)])
    o = out.mutate(k=out.t_out // w)
    j = o.join(inb3, ["dev", "k"])
    j = j.filter(j.tgt != j.origin).mutate(lag=j.t_out - j.t_in)
    return j.filter(j.lag.abs() <= w)


def nearest(p: ir.Table) -> ir.Table:
    """Per outbound leg: the lag after the nearest inbound before it (`prev`) and before the nearest
    inbound after it (`nxt`), in microseconds; null where there is none within the window. Under
    coincidence the two are alike; a relay makes `prev` small."""
    keys = ["dev", "t_out", "tgt", "out_port", "out_sport", "public"]
    return p.group_by(keys).agg(prev=p.lag.min(where=p.lag >= 0), nxt=(-p.lag).min(where=p.lag < 0))


def device_counts(near: ir.Table, scales_us: list[int]) -> ir.Table:
    """Per device and scale d: outbound legs with an inbound within d before them (prev) and after them
    (nxt), public and internal targets apart."""
    aggs = {}
    for i, d in enumerate(scales_us):
        for kind, cond in (("pub", near.public), ("int", ~near.public)):
            aggs[f"prev_{kind}_{i}"] = (cond & (near.prev <= d)).fill_null(False).cast("int64").sum()
            aggs[f"nxt_{kind}_{i}"] = (cond & (near.nxt <= d)).fill_null(False).cast("int64").sum()
    return near.group_by("dev").agg(**aggs)


def device_totals(inb: ir.Table, out: ir.Table, devices: list[str]) -> ir.Table:
    """Per device of `devices`: inbound sessions, outbound legs to public targets, and the time span they
    cover (for the rate-based coincidence expectation)."""
    keep = ibis.memtable({"dev": devices})
    inb, out = inb.semi_join(keep, "dev"), out.semi_join(keep, "dev")
    i = inb.group_by("dev").agg(n_in=inb.count())
    o = out.group_by("dev").agg(n_out_pub=out.public.cast("int64").sum(), out_lo=out.t_out.min(),
                                out_hi=out.t_out.max())
    return i.join(o, "dev")
