"""The beacon detection's engine queries on DuckDB and Spark: the prevalence denominator counted from the
pair groups equals a scan of every row (and the detection falls back to that scan when a pair key cannot
tell its host), and the details pre-filter returns exactly the rows of the chosen keys."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from bothunt.config import Settings
from bothunt.detections import beacon, beacon_query
from bothunt.engine import tables_from_arrow

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def rows(n: int, *, host: str | None, src: str, dst: str = "198.51.100.9", port: int = 443,
         name: str | None = None, process: str | None = None, direction: str = "outbound",
         every: float = 600.0) -> list[dict]:
    return [{"ts": T0 + every * i, "host": host, "src_ip": src, "dst_ip": dst, "dst_port": port,
             "server_name": name, "process": process, "direction": direction} for i in range(n)]


def table(records: list[dict]) -> pa.Table:
    cols = {k: [r[k] for r in records] for k in records[0]}
    us = (np.asarray(cols.pop("ts")) * 1e6).astype(np.int64)
    return pa.table({"ts": pa.array(us).cast(pa.timestamp("us", tz="UTC")),
                     "dst_port": pa.array(cols.pop("dst_port"), pa.int32()),
                     **{k: pa.array(v, pa.string()) for k, v in cols.items()}})


def clear_org() -> list[dict]:
    """Four internal hosts with outbound traffic, named by host or address; one host only inbound."""
    return (rows(144, host="ws-01", src="10.0.0.11", name="x.example", process="a.exe")  # a beacon
            + rows(2, host="ws-01", src="10.0.0.11", name="y.example", process="a.exe")
            + rows(3, host=None, src="10.0.0.12", dst="1.2.3.4")
            + rows(7, host="", src="10.0.0.13", dst="1.2.3.5", port=8443, every=97.0)
            + rows(8, host=None, src="10.0.0.14", dst="10.0.0.2", port=3128, name="proxied.example",
                   direction="internal", every=61.0)
            + rows(9, host="ws-02", src="203.0.113.5", dst="10.0.0.20", direction="inbound"))


def unsure_org() -> list[dict]:
    """Plus a process seen on two addresses with no host name: its pair key keeps neither address."""
    return (clear_org() + rows(6, host=None, src="10.0.0.15", name="z.example", process="b.exe", every=30.0)
            + rows(6, host=None, src="10.0.0.16", name="z.example", process="b.exe", every=31.0))


def key(r: dict) -> tuple[str, str, str, str]:
    """The pair key as beacon_query.outbound defines it, computed in plain Python."""
    named = bool(r["server_name"])
    return (r["host"] or "", r["process"] or "", "" if r["process"] else r["src_ip"],
            r["server_name"] if named else f"{r['dst_ip']}:{r['dst_port']}")


def counted(records: list[dict]) -> list[dict]:
    return [r for r in records if r["direction"] == "outbound"
            or (r["direction"] == "internal" and r["server_name"] and r["dst_port"] in beacon.Params().proxy_ports)]


@pytest.mark.parametrize(("org", "hosts", "unsure"), [(clear_org, 4, 0), (unsure_org, 6, 1)])
def test_host_count_from_pair_groups(engine_con, org, hosts, unsure):
    engine, con = engine_con
    records = org()
    assert len({r["host"] or r["src_ip"] for r in counted(records)}) == hosts  # the fixture says what it means
    tables = tables_from_arrow(conn=table(records), engine=engine, con=con)
    base = beacon_query.outbound(tables.conn, beacon.Params().proxy_ports)
    cand = tables.to_arrow(beacon_query.candidates(base, 6))
    assert set(cand["unsure"].to_pylist()) == {unsure}
    assert tables.to_arrow(beacon_query.hosts_total(base))["n"][0].as_py() == hosts
    if not unsure:
        assert set(cand["hosts"].to_pylist()) == {hosts}
    # The detection reports the exact denominator either way (a second scan when the groups cannot tell).
    found = [f for f in beacon.detect(tables, Settings()) if f.evidence.get("destination") == "x.example"]
    assert len(found) == 1 and found[0].evidence["prevalence"]["total_hosts"] == hosts


@pytest.mark.parametrize("wanted", [
    [("ws-01", "a.exe", "", "x.example"), ("", "", "10.0.0.12", "1.2.3.4:443")],  # host / address pre-filter
    [("ws-01", "a.exe", "", "y.example"), ("", "b.exe", "", "z.example")],  # no address: destination pre-filter
])
def test_details_returns_exactly_the_rows_of_the_keys(engine_con, wanted):
    engine, con = engine_con
    records = unsure_org()
    tables = tables_from_arrow(conn=table(records), engine=engine, con=con)
    base = beacon_query.outbound(tables.conn, beacon.Params().proxy_ports)
    keys = pa.table({k: [w[i] for w in wanted] for i, k in enumerate(beacon_query.KEYS)}).append_column(
        "pair", pa.array(range(len(wanted)), pa.int64()))
    got = tables.to_arrow(beacon_query.details(base, keys))
    expected = Counter(wanted.index(key(r)) for r in counted(records) if key(r) in wanted)
    assert Counter(got["pair"].to_pylist()) == expected
    assert all(expected[i] > 0 for i in range(len(wanted)))
