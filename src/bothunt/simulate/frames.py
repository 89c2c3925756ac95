"""Columnar event chunks. A `Frame` is a dict of equal-length columns (numpy arrays, or Arrow arrays for
strings and lists); generators build them with `conn()` / `dns()` from arrays, never row by row.

Conn columns: ts dur src dst sport dport proto svc bout bin pout pin cstate dev proc sni scen.
`dev` is the organisation device the event belongs to (initiator for outbound and internal traffic, the
listening server for inbound), `proc` the process on that device, `sni` a DNS-world name index (TLS SNI,
HTTP Host, Defender RemoteUrl) or -1, `scen` the scenario code (background kind or planted item).
DNS columns: ts src dst sport query qtype rcode answers ttls dev scen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PROTOS = ("tcp", "udp", "icmp")
TCP, UDP, ICMP = 0, 1, 2
SERVICES = ("", "ssl", "http", "dns", "ssh", "smtp", "rdp", "ntp", "krb", "ldap", "smb")
SVC = {s: i for i, s in enumerate(SERVICES)}
STATES = ("SF", "S0", "REJ", "RSTO", "RSTR", "SH", "S1", "OTH")
SF, S0, REJ, RSTO, RSTR, SH, S1, OTH = range(8)
QTYPES = {1: "A", 28: "AAAA", 16: "TXT", 12: "PTR", 15: "MX", 5: "CNAME", 33: "SRV"}
RCODES = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN"}

CONN_DTYPES: dict[str, Any] = {
    "ts": np.float64, "dur": np.float64, "src": np.uint32, "dst": np.uint32, "sport": np.int32,
    "dport": np.int32, "proto": np.int8, "svc": np.int8, "bout": np.int64, "bin": np.int64,
    "pout": np.int64, "pin": np.int64, "cstate": np.int8, "dev": np.int32, "proc": np.int32,
    "sni": np.int32, "scen": np.int16,
}
DNS_NUMERIC: dict[str, Any] = {
    "ts": np.float64, "src": np.uint32, "dst": np.uint32, "sport": np.int32, "qtype": np.int16,
    "rcode": np.int8, "dev": np.int32, "scen": np.int16,
}
DNS_ARROW = {"query": pa.string(), "answers": pa.list_(pa.string()), "ttls": pa.list_(pa.float64())}

# Background kinds get fixed scenario codes; planted items are appended after them by the plan.
BACKGROUND = (
    "browse", "internal", "chat", "telemetry", "ntp", "update", "monitoring", "licence", "p2p",
    "backup", "web", "web_surge", "mail", "bastion", "rdgw", "vpn", "rproxy", "scan_noise", "nxdomain",
    "chrome_probe", "dnsbl", "av_lookup", "reverse",
)
BG = {name: i for i, name in enumerate(BACKGROUND)}


class Frame:
    def __init__(self, cols: dict[str, Any]) -> None:
        self.cols = cols

    def __len__(self) -> int:
        return len(self.cols["ts"])

    def __getitem__(self, key: str) -> Any:
        return self.cols[key]

    def take(self, idx: np.ndarray) -> Frame:
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        pidx = pa.array(idx.astype(np.int64))
        return Frame({k: (v.take(pidx) if isinstance(v, pa.Array) else v[idx]) for k, v in self.cols.items()})

    def sorted(self) -> Frame:
        return self.take(np.argsort(self.cols["ts"], kind="stable"))

    def window(self, t0: float, t1: float) -> Frame:
        ts = self.cols["ts"]
        return self.take((ts >= t0) & (ts < t1))


def empty_conn() -> Frame:
    return Frame({k: np.empty(0, dtype=t) for k, t in CONN_DTYPES.items()})


def empty_dns() -> Frame:
    cols: dict[str, Any] = {k: np.empty(0, dtype=t) for k, t in DNS_NUMERIC.items()}
    cols.update({k: pa.array([], t) for k, t in DNS_ARROW.items()})
    return Frame(cols)


def concat(frames: Sequence[Frame], kind: str) -> Frame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_conn() if kind == "conn" else empty_dns()
    cols: dict[str, Any] = {}
    for k, v in frames[0].cols.items():
        if isinstance(v, pa.Array):
            cols[k] = pa.concat_arrays([f.cols[k] for f in frames])
        else:
            cols[k] = np.concatenate([f.cols[k] for f in frames])
    return Frame(cols)


def _col(value: Any, n: int, dtype: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    return arr.astype(dtype, copy=False)


def lognormal(rng: np.random.Generator, n: int, median: float, sigma: float = 0.8) -> np.ndarray:
    return rng.lognormal(np.log(max(median, 1e-6)), sigma, n)


def ephemeral_ports(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(49152, 65536, n).astype(np.int32)


def conn(rng: np.random.Generator, *, ts: np.ndarray, src: Any, dst: Any, dport: Any, dev: Any, proc: Any,
         scen: Any, proto: Any = TCP, svc: Any = 0, sni: Any = -1, bout: Any = None, bin: Any = None,
         dur: Any = None, state: Any = SF, sport: Any = None) -> Frame:
    """Connections from arrays or scalars. Bytes, packets and duration follow from the outcome: a
    failed attempt (S0, REJ) carries no payload."""
    ts = np.asarray(ts, dtype=np.float64)
    n = ts.size
    cstate = _col(state, n, np.int8)
    failed = (cstate == S0) | (cstate == REJ)
    bo = _col(lognormal(rng, n, 600) if bout is None else bout, n, np.float64)
    bi = _col(lognormal(rng, n, 4000, 1.2) if bin is None else bin, n, np.float64)
    bo = np.where(failed, 0, np.round(bo)).astype(np.int64)
    bi = np.where(failed, 0, np.round(bi)).astype(np.int64)
    du = _col(lognormal(rng, n, 1.5, 1.0) if dur is None else dur, n, np.float64)
    du = np.where(cstate == REJ, rng.uniform(1e-4, 2e-3, n), np.where(cstate == S0, 0.0, du))
    pout = np.where(cstate == REJ, 1, np.where(cstate == S0, rng.integers(1, 4, n), bo // 1200 + 3))
    pin = np.where(cstate == REJ, 1, np.where(cstate == S0, 0, bi // 1300 + 2))
    return Frame({
        "ts": ts, "dur": du, "src": _col(src, n, np.uint32), "dst": _col(dst, n, np.uint32),
        "sport": ephemeral_ports(rng, n) if sport is None else _col(sport, n, np.int32),
        "dport": _col(dport, n, np.int32), "proto": _col(proto, n, np.int8), "svc": _col(svc, n, np.int8),
        "bout": bo, "bin": bi, "pout": pout.astype(np.int64), "pin": pin.astype(np.int64), "cstate": cstate,
        "dev": _col(dev, n, np.int32), "proc": _col(proc, n, np.int32), "sni": _col(sni, n, np.int32),
        "scen": _col(scen, n, np.int16),
    })


def dns(rng: np.random.Generator, *, ts: np.ndarray, src: Any, dst: Any, query: pa.Array, qtype: Any,
        rcode: Any, answers: pa.Array | None, ttls: pa.Array | None, dev: Any, scen: Any) -> Frame:
    ts = np.asarray(ts, dtype=np.float64)
    n = ts.size
    if answers is None:
        off = pa.array(np.zeros(n + 1, dtype=np.int32))
        answers = pa.ListArray.from_arrays(off, pa.array([], pa.string()))
        ttls = pa.ListArray.from_arrays(off, pa.array([], pa.float64()))
    return Frame({
        "ts": ts, "src": _col(src, n, np.uint32), "dst": _col(dst, n, np.uint32),
        "sport": ephemeral_ports(rng, n), "qtype": _col(qtype, n, np.int16), "rcode": _col(rcode, n, np.int8),
        "dev": _col(dev, n, np.int32), "scen": _col(scen, n, np.int16),
        "query": query if isinstance(query, pa.Array) else pa.array(query, pa.string()),
        "answers": answers, "ttls": ttls,
    })


def strings(values: Sequence[str] | np.ndarray) -> pa.Array:
    """Arrow strings from a list or a numpy bytes (S) array."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "S":
        return pa.array(values, pa.binary()).cast(pa.string())
    return pa.array(list(values), pa.string())


def dns_to_conn(d: Frame) -> Frame:
    """The UDP/53 connection each DNS transaction rides on (Zeek logs both, joined by uid)."""
    n = len(d)
    qlen = np.asarray(pc.utf8_length(d["query"]).to_numpy(zero_copy_only=False), dtype=np.int64)
    nans = np.asarray(pc.list_value_length(d["answers"]).to_numpy(zero_copy_only=False), dtype=np.int64)
    bout = qlen + 18
    bin_ = qlen + 18 + 16 * nans + np.where(d["qtype"] == 16, 120 * nans, 0)
    return Frame({
        "ts": d["ts"], "dur": np.full(n, 0.0012), "src": d["src"], "dst": d["dst"], "sport": d["sport"],
        "dport": np.full(n, 53, np.int32), "proto": np.full(n, UDP, np.int8), "svc": np.full(n, SVC["dns"], np.int8),
        "bout": bout, "bin": bin_, "pout": np.ones(n, np.int64), "pin": np.ones(n, np.int64),
        "cstate": np.full(n, SF, np.int8), "dev": d["dev"], "proc": np.full(n, -1, np.int32),
        "sni": np.full(n, -1, np.int32), "scen": d["scen"],
    })
