"""The engine half of the beacon detection: Ibis expressions, written once for DuckDB and Spark.

`outbound` keys every outbound (or proxied) connection by its internal entity and destination;
`candidates` reduces them to one row per (entity, destination) pair with enough connections, carrying
the pair's timestamps as a list, so only candidate pairs' times leave the engine;
`details` brings back the full rows of the few pairs that survive the numpy tests, for evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import ibis
import ibis.expr.types as ir
import pyarrow as pa

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = 1_000_000
# Pair keys as the engine groups them: host, process, source address when no process is named, and the
# destination (server name when known, else address:port). Raw values: lower-casing, file names of
# process paths and trailing dots are normalised in numpy per distinct key (beacon_refine.normalise),
# which is far cheaper than string functions on every row.
KEYS = ("hk", "pk", "sk", "dk")
FAILED_STATES = ("rejected", "attempted")


def epoch_us(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Microseconds since 1970: the timestamp arithmetic DuckDB and Spark agree on to the microsecond
    (costly per row on DuckDB: use it on reduced tables)."""
    return ts.delta(ibis.literal(EPOCH), unit="microsecond")


def outbound(conn: ir.Table, proxy_ports: Sequence[int]) -> ir.Table:
    """Outbound connections, plus internal ones to a proxy port that name their real destination
    (HTTP CONNECT / SNI in server_name): those count for the destination, not for the proxy."""
    named = conn.server_name.notnull() & (conn.server_name != "")
    has_proc = conn.process.notnull() & (conn.process != "")
    proxied = ((conn.direction == "internal") & named
               & conn.dst_port.isin(tuple(int(x) for x in proxy_ports)).fill_null(False))
    c = conn.filter((conn.direction == "outbound") | proxied)
    return c.mutate(
        hk=c.host.fill_null(""),
        pk=c.process.fill_null(""),
        sk=ibis.ifelse(has_proc, "", c.src_ip.fill_null("")),
        dk=ibis.ifelse(named, c.server_name,
                       c.dst_ip.fill_null("") + ":" + c.dst_port.cast("string").fill_null("")),
    )


def candidates(base: ir.Table, min_connections: int) -> ir.Table:
    """One row per raw pair key with at least `min_connections` connections: count, first and last
    time, and the list of connection times (order not guaranteed: numpy sorts)."""
    g = base.group_by(list(KEYS)).aggregate(
        n=base.count(), t_first=base.ts.min(), t_last=base.ts.max(), ts=base.ts.collect())
    return g.filter(g.n >= min_connections)


def host_key(base: ir.Table) -> ir.StringValue:
    return ibis.ifelse(base.hk != "", base.hk, base.src_ip.fill_null(""))


def hosts_total(base: ir.Table) -> ir.Table:
    """Distinct internal hosts with any outbound connection: the denominator of prevalence."""
    return base.aggregate(n=host_key(base).nunique())


def details(base: ir.Table, keys: pa.Table) -> ir.Table:
    """Every connection of the given raw pair keys (`keys`: the KEYS columns plus `pair`; small)."""
    # The destinations alone are a cheap first cut: the join then probes only their rows.
    dests = sorted(set(keys.column("dk").to_pylist()))
    j = base.filter(base.dk.isin(dests)).join(ibis.memtable(keys), list(KEYS))
    return j.select(
        "pair", t_us=epoch_us(j.ts), failed=j.state.isin(FAILED_STATES).fill_null(False),
        bytes_out=j.bytes_out, bytes_in=j.bytes_in, src_ip=j.src_ip, dst_ip=j.dst_ip, dst_port=j.dst_port,
        direction=j.direction, process=j.process, cmdline=j.cmdline, user=j.user, source=j.source,
        label=j.label, proto=j.proto, service=j.service,
    )
