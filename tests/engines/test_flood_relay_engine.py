"""inbound_flood and relay give the same findings on DuckDB and Spark (written once as Ibis expressions)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from bothunt.config import Settings
from bothunt.detections import inbound_flood, relay
from bothunt.engine import connect, tables_from_arrow

T0 = 1772409600.0  # 2026-03-02T00:00:00Z
DAY = 86400.0


def _ips(prefix: str, k: int) -> np.ndarray:
    return np.array([f"{prefix}.{i // 250}.{i % 250 + 1}" for i in range(k)], dtype=object)


def _rows(ts, src, dst, port, direction, **kw) -> dict:
    n = np.asarray(ts).size
    row = {"ts": np.asarray(ts, float), "src_ip": np.broadcast_to(np.asarray(src, object), (n,)),
           "dst_ip": np.broadcast_to(np.asarray(dst, object), (n,)), "dst_port": np.broadcast_to(port, (n,)),
           "direction": np.full(n, direction, object)}
    defaults = {"state": "established", "duration": 2.0, "bytes_out": 2000, "bytes_in": 3000, "host": None,
                "process": None}
    for k, v in {**defaults, **kw}.items():
        row[k] = np.broadcast_to(np.asarray(v, dtype=object if isinstance(v, str) or v is None else None), (n,))
    return row


def dataset() -> pa.Table:
    """Two days: steady web, an HTTP flood, a fast and a slow stuffing, a brute force, a sweep, a port scan,
    an ORB node and a reverse proxy."""
    rng = np.random.default_rng(42)
    parts = []
    n = 6000
    parts.append(_rows(T0 + np.sort(rng.uniform(0, 2 * DAY, n)), _ips("73.1", 3000)[rng.integers(0, 3000, n)],
                       "10.0.0.5", 443, "inbound", duration=0.5))
    parts.append(_rows(T0 + DAY + 36000 + np.sort(rng.uniform(0, 900, 6000)),
                       _ips("45.137", 100)[rng.integers(0, 100, 6000)], "10.0.0.5", 443, "inbound", duration=0.3))
    parts.append(_rows(T0 + 3600 + np.sort(rng.uniform(0, 600, 1600)), _ips("91.92", 300)[rng.integers(0, 300, 1600)],
                       "10.0.0.6", 22, "inbound"))
    order = np.concatenate([rng.permutation(150), rng.permutation(150)])
    parts.append(_rows(T0 + 30000 + np.sort(rng.uniform(0, 8 * 3600, 300)), _ips("185.220", 150)[order],
                       "10.0.0.7", 3389, "inbound", state="rejected"))
    parts.append(_rows(T0 + 50000 + np.sort(rng.uniform(0, 1800, 150)), "5.188.1.1", "10.0.0.6", 22, "inbound"))
    parts.append(_rows(T0 + 60000 + np.arange(30) * 0.01, "46.166.151.160",
                       [f"10.0.{i % 2}.{i}" for i in range(1, 31)], 3389, "inbound", state="attempted"))
    ports = np.arange(1, 101)
    parts.append(_rows(T0 + 70000 + ports * 0.1, "171.244.9.9", "10.0.0.5", ports, "inbound", state="rejected"))
    k = 120
    ts = T0 + np.sort(rng.uniform(0, DAY, k))
    lag = rng.uniform(0.05, 1.5, k)
    up, down = rng.lognormal(7, 1, k).astype(int), rng.lognormal(9, 1, k).astype(int)
    parts.append(_rows(ts, _ips("45.155", 4)[rng.integers(0, 4, k)], "10.1.1.50", 8081, "inbound", duration=9.0,
                       bytes_out=up, bytes_in=down, host="ws-7", process="dllhost.exe"))
    parts.append(_rows(ts + lag, "10.1.1.50", _ips("151.101", 30)[rng.integers(0, 30, k)], 443, "outbound",
                       duration=8.0, bytes_out=up + 40, bytes_in=down, host="ws-7", process="dllhost.exe"))
    k = 2000
    ts = T0 + np.sort(rng.uniform(0, DAY, k))
    parts.append(_rows(ts, _ips("24.30", 1500)[rng.integers(0, 1500, k)], "10.1.1.60", 443, "inbound",
                       host="rproxy-01", process="nginx.exe"))
    parts.append(_rows(ts + 0.01, "10.1.1.60", "10.2.0.1", 8080, "internal", host="rproxy-01", process="nginx.exe"))
    cols = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
    return pa.table({
        "ts": pa.array((cols["ts"] * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC")),
        "src_ip": cols["src_ip"].tolist(), "dst_ip": cols["dst_ip"].tolist(),
        "dst_port": pa.array(cols["dst_port"].astype(np.int32)), "proto": ["tcp"] * cols["ts"].size,
        "direction": cols["direction"].tolist(), "state": cols["state"].tolist(),
        "duration": pa.array(cols["duration"].astype(float)), "bytes_out": pa.array(cols["bytes_out"].astype(np.int64)),
        "bytes_in": pa.array(cols["bytes_in"].astype(np.int64)), "host": cols["host"].tolist(),
        "process": cols["process"].tolist(),
    })


def _canonical(findings) -> list[str]:
    return sorted(json.dumps(f.to_dict(), sort_keys=True) for f in findings)


@pytest.fixture(scope="module")
def data() -> pa.Table:
    return dataset()


@pytest.fixture(scope="module")
def reference(data):
    tables = tables_from_arrow(data, engine="duckdb", con=connect("duckdb"))
    return {m.ID: _canonical(m.detect(tables, Settings())) for m in (inbound_flood, relay)}


@pytest.mark.parametrize("module", [inbound_flood, relay], ids=["inbound_flood", "relay"])
def test_same_findings_on_every_engine(engine_con, module, data, reference):
    engine, con = engine_con
    got = _canonical(module.detect(tables_from_arrow(data, engine=engine, con=con), Settings()))
    assert got == reference[module.ID]


def test_reference_covers_every_kind(reference):
    """The parity test compares something: every category the data plants is in the reference."""
    cats = {json.loads(f)["evidence"].get("category") for f in reference["inbound_flood"]}
    assert cats == {"http_flood", "credential_stuffing", "low_and_slow_stuffing", "brute_force", "sweep",
                    "port_scan"}
    relays = [json.loads(f) for f in reference["relay"]]
    assert {r["src_ip"] for r in relays} == {"10.1.1.50"}
