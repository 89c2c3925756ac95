from datetime import UTC, datetime

import pyarrow as pa

from bothunt.engine import open_tables
from bothunt.schema import conform
from bothunt.workspace import PartWriter, Workspace


def _ws(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ts = [datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, 23, 59, tzinfo=UTC),
          datetime(2026, 1, 2, 0, 1, tzinfo=UTC)]
    t = conform(pa.table({"ts": pa.array(ts, pa.timestamp("us", tz="UTC")), "src_ip": ["10.0.0.1"] * 3,
                          "dst_ip": ["8.8.8.8", "8.8.4.4", "8.8.8.8"], "bytes_out": [1, 2, 3]}), "conn")
    w = PartWriter(ws, "k")
    w.write("conn", t)
    w.close()
    return ws


def test_open_workspace_group_by_and_time_filters(engine_con, tmp_path):
    engine, con = engine_con
    ws = _ws(tmp_path)
    tables = open_tables(ws, engine, con=con)
    c = tables.conn
    out = tables.to_arrow(c.group_by("dst_ip").agg(n=c.count(), last=c.ts.max()).order_by("dst_ip"))
    assert out["dst_ip"].to_pylist() == ["8.8.4.4", "8.8.8.8"]
    assert out["n"].to_pylist() == [1, 2]
    assert out.schema.field("last").type == pa.timestamp("us", tz="UTC")
    assert out["last"].to_pylist()[1] == datetime(2026, 1, 2, 0, 1, tzinfo=UTC)
    since = open_tables(ws, engine, since=datetime(2026, 1, 1, 12, tzinfo=UTC),
                        until=datetime(2026, 1, 2, tzinfo=UTC), con=con)
    assert since.count(since.conn.count()) == 1
    assert since.count(since.dns.count()) == 0  # no dns parts: an empty table, not an error


def test_tables_from_arrow_carries_dns_list_columns(engine_con):
    from bothunt.engine import tables_from_arrow

    engine, con = engine_con
    dns = pa.table({"ts": pa.array([datetime(2026, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
                    "query": ["a.example"], "answers": [["1.2.3.4", "5.6.7.8"]], "ttls": [[60.0, 30.0]]})
    tables = tables_from_arrow(dns=dns, engine=engine, con=con)
    out = tables.to_arrow(tables.dns.select("query", "answers", "ttls"))
    assert out.to_pylist() == [{"query": "a.example", "answers": ["1.2.3.4", "5.6.7.8"], "ttls": [60.0, 30.0]}]
