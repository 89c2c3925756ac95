"""Engine selection: a workspace opened as Ibis tables on DuckDB (in-process, default) or PySpark.

Detections are Ibis expressions over `Tables.conn` / `Tables.dns` and call `Tables.to_arrow` to bring
the reduced result into Arrow for numpy refinement. Both engines return the same Arrow types (UTC
timestamps), so refinement code never branches on the engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.errors import EngineError
from bothunt.schema import TABLES, TS
from bothunt.workspace import Workspace

ENGINES = ("duckdb", "spark")


@dataclass
class Tables:
    con: Any
    engine: str
    conn: ibis.Table
    dns: ibis.Table

    def to_arrow(self, expr: ibis.Expr) -> pa.Table:
        """Execute on the engine and normalise timestamps to UTC (Spark returns naive values in the
        session time zone, which we pin to UTC)."""
        out = self.con.to_pyarrow(expr)
        if isinstance(out, pa.Table):
            return _utc(out)
        return out

    def count(self, expr: ibis.Expr) -> int:
        return int(self.con.execute(expr))


def _utc(table: pa.Table) -> pa.Table:
    cols = []
    changed = False
    for i, fld in enumerate(table.schema):
        col = table.column(i)
        if pa.types.is_timestamp(fld.type) and (fld.type.tz is None or fld.type.unit != "us"):
            col = pc.assume_timezone(col, "UTC") if fld.type.tz is None else col
            col = col.cast(TS)
            changed = True
        cols.append(col)
    return pa.Table.from_arrays(cols, names=table.column_names) if changed else table


_SPARK: Any = None
_SPARK_LOG = Path(__file__).parent / "data" / "spark-log4j2.properties"


def spark_session(master: str | None = None) -> Any:
    """One Spark session per process: local[*] by default, `master` or SPARK_REMOTE for a cluster."""
    global _SPARK
    if _SPARK is not None:
        return _SPARK
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is a declared dependency
        raise EngineError("the spark engine needs pyspark: pip install 'bothunt'") from exc
    builder = SparkSession.builder.appName("bothunt")
    remote = os.environ.get("SPARK_REMOTE")
    if remote and not master:
        builder = builder.remote(remote)
    else:
        builder = builder.master(master or os.environ.get("BOTHUNT_SPARK_MASTER", "local[*]"))
        builder = (builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.shuffle.partitions", os.environ.get("BOTHUNT_SPARK_PARTITIONS", "8"))
                   .config("spark.driver.memory", os.environ.get("BOTHUNT_SPARK_DRIVER_MEMORY", "4g")))
        if "log4j" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):  # the user's own logging wins
            builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{_SPARK_LOG}")
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    try:
        _SPARK = builder.getOrCreate()
    except Exception as exc:  # the JVM's errors are not Python exception types we could name
        raise EngineError(f"cannot start Spark ({master or 'local[*]'}): {exc}") from exc
    _SPARK.sparkContext.setLogLevel("ERROR")
    return _SPARK


def connect(engine: str = "duckdb", spark_master: str | None = None) -> Any:
    if engine == "duckdb":
        return ibis.duckdb.connect()
    if engine == "spark":
        return ibis.pyspark.connect(spark_session(spark_master))
    raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def _open_table(con: Any, engine: str, ws: Workspace, name: str) -> ibis.Table:
    parts = ws.parts(name)
    schema = TABLES[name]
    if not parts:
        return ibis.memtable(schema.empty_table())
    if engine == "duckdb":
        t = con.read_parquet([str(p) for p in parts], table_name=f"{name}_ws", hive_partitioning=False)
    else:
        df = con._session.read.parquet(*[str(p) for p in parts])
        con._session.catalog.dropTempView(f"{name}_ws")
        df.createOrReplaceTempView(f"{name}_ws")
        t = con.table(f"{name}_ws")
    return t.select(*schema.names)


def open_tables(ws: Workspace, engine: str = "duckdb", since: datetime | None = None,
                until: datetime | None = None, spark_master: str | None = None, con: Any = None) -> Tables:
    con = con if con is not None else connect(engine, spark_master)
    conn = _open_table(con, engine, ws, "conn")
    dns = _open_table(con, engine, ws, "dns")
    if since is not None:
        conn, dns = conn.filter(conn.ts >= since), dns.filter(dns.ts >= since)
    if until is not None:
        conn, dns = conn.filter(conn.ts < until), dns.filter(dns.ts < until)
    return Tables(con=con, engine=engine, conn=conn, dns=dns)


def tables_from_arrow(conn: pa.Table | None = None, dns: pa.Table | None = None, engine: str = "duckdb",
                      con: Any = None) -> Tables:
    """Tables built from in-memory Arrow (unit tests and small inputs). On Spark the tables go through a
    temporary Parquet file: Spark's in-memory path goes through pandas, which cannot carry list columns."""
    import atexit
    import shutil
    import tempfile

    import pyarrow.parquet as pq

    from bothunt.schema import conform

    con = con if con is not None else connect(engine)
    data = {"conn": conform(conn if conn is not None else TABLES["conn"].empty_table(), "conn"),
            "dns": conform(dns if dns is not None else TABLES["dns"].empty_table(), "dns")}
    if engine != "spark":
        return Tables(con=con, engine=engine, conn=ibis.memtable(data["conn"]), dns=ibis.memtable(data["dns"]))
    folder = Path(tempfile.mkdtemp(prefix="bothunt-arrow-"))
    atexit.register(shutil.rmtree, folder, True)  # Spark reads the files lazily: keep them until exit
    views = {}
    for name, table in data.items():
        path = folder / f"{name}.parquet"
        pq.write_table(table, path)
        view = f"{name}_arrow_{id(table)}"
        con._session.read.parquet(str(path)).createOrReplaceTempView(view)
        views[name] = con.table(view)
    return Tables(con=con, engine=engine, conn=views["conn"], dns=views["dns"])
