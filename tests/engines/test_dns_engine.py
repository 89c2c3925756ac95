"""dga and dns_c2 give the same findings on DuckDB and Spark, and the engine's registered domain equals
dga_model.registered_domain on both. Data goes through a Parquet workspace (as in a hunt): Spark reads
the list columns (answers, ttls) natively from Parquet."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bothunt import dga_model
from bothunt.config import Settings
from bothunt.detections import dga, dns_c2, dns_names
from bothunt.dga_model import registered_domain
from bothunt.engine import connect, open_tables
from bothunt.schema import conform
from bothunt.workspace import PartWriter, Workspace

T0 = 1772409600.0  # 2026-03-02T00:00:00Z
BOT, C2_IP = "10.0.0.5", "45.137.21.9"
NAMES = [
    "www.example.com", "a.b.c.example.co.uk", "co.uk", "bbc.co.uk", "www.city.kobe.jp", "city.kobe.jp",
    "x.y.kawasaki.jp", "y.kawasaki.jp", "a.foo.k12.ma.us", "b.a.pvt.k12.ma.us", "x.www.ck", "www.ck", "a.b.ck",
    "d123abc.cloudfront.net", "4.3.2.1.zen.spamhaus.org", "xn--80ak6aa92e.com", "a_b.example.org",
    "host.gov.br", "gov.br", "deep.sub.domain.of.something.org", "q.s3.amazonaws.com", "x.foo.ma.us",
]


class Dns:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, ts, src, names, rcode="NOERROR", answers=(), ttl=300.0, qtype="A"):
        ts = np.broadcast_to(np.asarray(ts, dtype=float), (len(names),))
        for t, name in zip(ts.tolist(), names, strict=True):
            ans = list(answers) if rcode == "NOERROR" else []
            self.rows.append({"ts": int(t * 1e6), "src_ip": src, "dst_ip": "10.0.0.53", "query": name, "qtype": qtype,
                              "rcode": rcode, "answers": ans, "ttls": [float(ttl)] * len(ans), "source": "zeek"})

    def table(self) -> pa.Table:
        t = pa.Table.from_pylist(self.rows)
        return t.set_column(0, "ts", t["ts"].cast(pa.timestamp("us", tz="UTC")))


def _workspace(tmp_path: Path, dns: pa.Table, conn: pa.Table | None = None) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    w = PartWriter(ws, "k")
    w.write("dns", conform(dns, "dns"))
    if conn is not None:
        w.write("conn", conform(conn, "conn"))
    w.close()
    return ws


@pytest.fixture
def scores(monkeypatch):
    def score(names):
        return np.asarray([0.97 if len(n or "") >= 12 or (len(n or "") >= 10 and not (n or "").isalpha()) else 0.1
                           for n in names], np.float32)
    monkeypatch.setattr(dga_model, "score_names", score)
    monkeypatch.setattr(dga_model, "thresholds", lambda: {"fpr_0.01": 0.9})


def test_registered_domain_matches_dga_model(engine_con, tmp_path):
    engine, con = engine_con
    unregistrable = ["printer.lan", "nas.home", "a.b.corp", "10.1.2.3"]  # no one can register these
    d = Dns()
    d.add(T0, "10.0.0.1", NAMES + unregistrable)
    tables = open_tables(_workspace(tmp_path, d.table()), engine, con=con)
    q = dns_names.with_registered(tables, dns_names.lookups(tables.dns, ()))
    out = tables.to_arrow(q.select("query", "reg"))
    got = dict(zip(out["query"].to_pylist(), out["reg"].to_pylist(), strict=True))
    assert got == {n: registered_domain(n) for n in NAMES} | dict.fromkeys(unregistrable, "")


def scenario() -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(11)
    d = Dns()
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    for b in range(3):  # a DGA bot: three bursts of 20 generated names, one of which resolves
        batch = [letters[rng.integers(0, 26, 14)].tobytes().decode() + ".com" for _ in range(20)]
        d.add(T0 + 3600 + b * 7200 + np.sort(rng.uniform(0, 30, 20)), BOT, batch, "NXDOMAIN")
    d.add(T0 + 3600 + 7200 + 15, BOT, ["qzkvbwtrmxhl.com"], answers=[C2_IP])
    names = [f"{i:04d}{base64.b32encode(rng.bytes(25)).decode().lower().rstrip('=')}.t.evil-sync.com"
             for i in range(120)]
    d.add(T0 + np.sort(rng.uniform(0, 3600, 120)), "10.0.0.20", names, qtype="TXT")
    pool = [f"{11 + i}.{i * 3}.{i}.{i + 1}" for i in range(30)]
    for src in ("10.0.0.21", "10.0.0.22"):
        for k in range(20):
            d.add(T0 + 4000 * k + 7, src, ["flux-c2.top"], answers=[pool[(k * 3 + j) % 30] for j in range(3)],
                  ttl=120)
    timer = T0 + np.cumsum(np.full(40, 600.0) + rng.uniform(-5, 5, 40))
    d.add(timer, "10.0.0.23", ["k3x9q2w7z5m1.com"] * 40, answers=["45.137.2.2"], qtype="TXT")
    conn = pa.table({"ts": pa.array([int((T0 + 3600 + 7200 + 19) * 1e6)], pa.timestamp("us", tz="UTC")),
                     "src_ip": [BOT], "dst_ip": [C2_IP], "dst_port": pa.array([443], pa.int32()), "proto": ["tcp"]})
    return d.table(), conn


def _dicts(findings) -> list[dict]:
    return sorted((json.loads(json.dumps(f.to_dict(), sort_keys=True)) for f in findings), key=lambda x: x["id"])


_DUCKDB: dict[str, list[dict]] = {}


def _run(engine: str, con, tmp_path: Path) -> dict[str, list[dict]]:
    dns, conn = scenario()
    tables = open_tables(_workspace(tmp_path, dns, conn), engine, con=con)
    return {m.ID: _dicts(m.detect(tables, Settings())) for m in (dga, dns_c2)}


def test_same_findings_on_both_engines(engine_con, tmp_path, scores):
    engine, con = engine_con
    got = _run(engine, con, tmp_path)
    (bot,) = got["dga"]
    assert bot["src_ip"] == BOT and bot["domain"] == "qzkvbwtrmxhl.com" and bot["dst_ip"] == C2_IP
    assert bot["evidence"]["failed_rare_domains"] == 60 and bot["evidence"]["bursts"] == 3
    kinds = {(f["evidence"]["kind"], f["domain"]): f for f in got["dns_c2"]}
    assert kinds[("tunnel", "evil-sync.com")]["evidence"]["unique_names"] == 120
    assert kinds[("fast_flux", "flux-c2.top")]["evidence"]["addresses"] == 30
    assert kinds[("periodic_lookups", "k3x9q2w7z5m1.com")]["evidence"]["names"][0]["lookups"] == 40
    if engine == "duckdb":
        _DUCKDB.update(got)
        return
    expected = _DUCKDB or _run("duckdb", connect("duckdb"), tmp_path / "duck")
    assert got == expected
