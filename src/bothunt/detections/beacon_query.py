"""The engine half of the beacon detection: Ibis expressions, written once for DuckDB and Spark.

`outbound` keys every outbound (or proxied) connection by its internal entity and destination;
`candidates` reduces them to one row per (entity, destination) pair with enough connections, carrying
the pair's timestamps as a list, so only candidate pairs' times leave the engine, and the prevalence
denominator counted from the same pair groups (no second scan of every row);
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
    time, and the list of connection times (order not guaranteed: numpy sorts). Every row also carries
    `hosts`, distinct internal hosts over all pairs (see `hosts_total`), and `unsure`, the number of
    pairs whose host that count cannot tell (no host name but a process: the key drops the address)."""
    g = base.group_by(list(KEYS)).aggregate(
        n=base.count(), t_first=base.ts.min(), t_last=base.ts.max(), ts=base.ts.collect())
    # The pair groups are the engine's to reuse (a CTE that DuckDB materialises), so the host count costs
    # a pass over the groups, not over the rows. host_key is hk, else src_ip, which is sk unless the
    # pair names a process.
    noproc_host = (g.hk == "") & (g.pk != "")
    hosts = g.aggregate(hosts=ibis.ifelse(g.hk != "", g.hk, g.sk).nunique(),
                        unsure=noproc_host.cast("int64").sum().fill_null(0))
    return g.filter(g.n >= min_connections).cross_join(hosts)


def host_key(base: ir.Table) -> ir.StringValue:
    return ibis.ifelse(base.hk != "", base.hk, base.src_ip.fill_null(""))


def hosts_total(base: ir.Table) -> ir.Table:
    """Distinct internal hosts with any outbound connection: the denominator of prevalence. A second
    scan: `candidates` counts them from its groups unless a pair names a process without a host."""
    return base.aggregate(n=host_key(base).nunique())


def details(base: ir.Table, keys: pa.Table) -> ir.Table:
    """Every connection of the given raw pair keys (`keys`: the KEYS columns plus `pair`; small)."""
    # A cheap first cut on plain columns, which the engine can push into the scan: the hosts (or source
    # addresses) of the keys; failing that, their destinations (a key computed on every row). The join
    # then probes only those rows. Both cuts together cost more than the first alone saves.
    near = _entity_filter(base, keys)
    b = base.filter(near if near is not None else base.dk.isin(sorted(set(keys.column("dk").to_pylist()))))
    j = b.join(ibis.memtable(keys), list(KEYS))
    return j.select(
        "pair", t_us=epoch_us(j.ts), failed=j.state.isin(FAILED_STATES).fill_null(False),
        bytes_out=j.bytes_out, bytes_in=j.bytes_in, src_ip=j.src_ip, dst_ip=j.dst_ip, dst_port=j.dst_port,
        direction=j.direction, process=j.process, cmdline=j.cmdline, user=j.user, source=j.source,
        label=j.label, proto=j.proto, service=j.service,
    )


def _entity_filter(base: ir.Table, keys: pa.Table) -> ir.BooleanValue | None:
    """A condition on raw columns that every row of the keys meets (None when a key without host or
    source address leaves nothing to narrow by)."""
    hk, sk = keys.column("hk").to_pylist(), keys.column("sk").to_pylist()
    hosts = sorted({h for h in hk if h})
    addrs = sorted({s for h, s in zip(hk, sk, strict=True) if not h and s})
    if any(not h and not s for h, s in zip(hk, sk, strict=True)):
        return None
    conds = []
    if hosts:
        conds.append(base.host.isin(hosts))
    if addrs:
        conds.append(base.src_ip.isin(addrs))
    if not conds:
        return None
    out = conds[0]
    for c in conds[1:]:
        out = out | c
    return out
