"""Zeek's conn, dns, ssl and http records for a chunk, as the standard field lists with their types.

Each builder returns the rows it selects (ssl for TLS connections that got a reply, http for HTTP ones;
both joined to conn.log by uid) and one `Field` per column: the TSV text ("-" when unset) and how JSON
renders it. Field lists and types follow Zeek 6's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.simulate.frames import PROTOS, QTYPES, RCODES, REJ, S0, SERVICES, STATES, SVC, TCP, UDP
from bothunt.simulate.org import PROCS
from bothunt.simulate.rand import mix64
from bothunt.simulate.writers.common import Chunk, fixed, ints, lookup, or_dash


@dataclass
class Field:
    name: str
    type: str
    text: pa.Array  # TSV rendering, "-" for unset
    kind: str = "str"  # JSON rendering: str, num, bool, list


def _dash(n: int) -> pa.Array:
    return pa.array(np.full(n, "-"), pa.string())


def _id_fields(ts: np.ndarray, uid: pa.Array, src: pa.Array, sport: np.ndarray, dst: pa.Array,
               dport: np.ndarray) -> list[Field]:
    return [Field("ts", "time", fixed(ts), "num"), Field("uid", "string", uid),
            Field("id.orig_h", "addr", src), Field("id.orig_p", "port", ints(sport), "num"),
            Field("id.resp_h", "addr", dst), Field("id.resp_p", "port", ints(dport), "num")]


_HISTORY = {  # (state, proto) -> history
    ("SF", TCP): "ShADadFf", ("S0", TCP): "S", ("REJ", TCP): "Sr", ("RSTO", TCP): "ShADadR",
    ("RSTR", TCP): "ShADadr", ("SH", TCP): "ShF", ("S1", TCP): "ShAD", ("OTH", TCP): "CC",
    ("SF", UDP): "Dd", ("S0", UDP): "D",
}


def conn_fields(ch: Chunk) -> list[Field]:
    c = ch.conn
    n = len(c)
    state, proto = np.asarray(c["cstate"]), np.asarray(c["proto"])
    unset = (state == S0) & (proto == TCP)  # a lone SYN: Zeek leaves duration and byte counts unset
    hist_keys = sorted(_HISTORY)
    code = np.full(n, -1, np.int64)
    for i, (s, p) in enumerate(hist_keys):  # per (state, proto) pair, not per event
        code[(state == STATES.index(s)) & (proto == p)] = i
    history = or_dash(lookup([_HISTORY[k] for k in hist_keys] + ["-"], np.where(code < 0, len(hist_keys), code)),
                      code < 0)
    overhead = np.where(proto == TCP, 40, 28)
    lo, lr = ch.local
    tf = pa.array(["F", "T"])
    return [
        *_id_fields(c["ts"], ch.conn_uid, ch.src_text, c["sport"], ch.dst_text, c["dport"]),
        Field("proto", "enum", lookup(PROTOS, c["proto"])),
        Field("service", "string", or_dash(lookup(SERVICES, c["svc"]), c["svc"] == 0)),
        Field("duration", "interval", or_dash(fixed(c["dur"]), unset), "num"),
        Field("orig_bytes", "count", or_dash(ints(c["bout"]), unset), "num"),
        Field("resp_bytes", "count", or_dash(ints(c["bin"]), unset), "num"),
        Field("conn_state", "string", lookup(STATES, state)),
        Field("local_orig", "bool", tf.take(pa.array(lo.astype(np.int64))), "bool"),
        Field("local_resp", "bool", tf.take(pa.array(lr.astype(np.int64))), "bool"),
        Field("missed_bytes", "count", pa.array(np.full(n, "0")), "num"),
        Field("history", "string", history),
        Field("orig_pkts", "count", ints(c["pout"]), "num"),
        Field("orig_ip_bytes", "count", ints(c["bout"] + overhead * c["pout"]), "num"),
        Field("resp_pkts", "count", ints(c["pin"]), "num"),
        Field("resp_ip_bytes", "count", ints(c["bin"] + overhead * c["pin"]), "num"),
        Field("tunnel_parents", "set[string]", _dash(n), "list"),
    ]


def _joined(lists: pa.Array, fmt_float: bool = False) -> pa.Array:
    """Zeek's vector rendering: comma-joined, "-" when empty."""
    lengths = np.asarray(pc.list_value_length(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    values = pc.list_flatten(lists)
    if fmt_float:
        values = fixed(np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64))
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    rebuilt = pa.ListArray.from_arrays(offsets, values)
    empty = lengths == 0
    return or_dash(pc.binary_join(rebuilt, ","), empty)


def dns_fields(ch: Chunk) -> list[Field]:
    d = ch.dns
    n = len(d)
    qtype, rcode = np.asarray(d["qtype"]), np.asarray(d["rcode"])
    qt_codes = sorted(QTYPES)
    rc_codes = sorted(RCODES)
    trans = (mix64(ch.dns_ids) % np.uint64(65536)).astype(np.int64)
    f, t = pa.array(np.full(n, "F")), pa.array(np.full(n, "T"))
    return [
        *_id_fields(d["ts"], ch.dns_uid, ch.dns_src_text, d["sport"], ch.dns_dst_text, np.full(n, 53)),
        Field("proto", "enum", pa.array(np.full(n, "udp"))),
        Field("trans_id", "count", ints(trans), "num"),
        Field("rtt", "interval", fixed(np.full(n, 0.0011)), "num"),
        Field("query", "string", d["query"]),
        Field("qclass", "count", pa.array(np.full(n, "1")), "num"),
        Field("qclass_name", "string", pa.array(np.full(n, "C_INTERNET"))),
        Field("qtype", "count", ints(qtype), "num"),
        Field("qtype_name", "string", lookup([QTYPES[q] for q in qt_codes], np.searchsorted(qt_codes, qtype))),
        Field("rcode", "count", ints(rcode), "num"),
        Field("rcode_name", "string", lookup([RCODES[r] for r in rc_codes], np.searchsorted(rc_codes, rcode))),
        Field("AA", "bool", f, "bool"), Field("TC", "bool", f, "bool"),
        Field("RD", "bool", t, "bool"), Field("RA", "bool", t, "bool"),
        Field("Z", "count", pa.array(np.full(n, "0")), "num"),
        Field("answers", "vector[string]", _joined(d["answers"]), "list"),
        Field("TTLs", "vector[interval]", _joined(d["ttls"], True), "numlist"),
        Field("rejected", "bool", f, "bool"),
    ]


def ssl_rows(ch: Chunk) -> np.ndarray:
    c = ch.conn
    return np.flatnonzero((c["svc"] == SVC["ssl"]) & ~np.isin(c["cstate"], (S0, REJ)))


def http_rows(ch: Chunk) -> np.ndarray:
    c = ch.conn
    return np.flatnonzero((c["svc"] == SVC["http"]) & ~np.isin(c["cstate"], (S0, REJ)))


def ssl_fields(ch: Chunk, rows: np.ndarray) -> list[Field]:
    c = ch.conn
    n = rows.size
    idx = pa.array(rows)
    sni = ch.sni_text.take(idx)
    v13 = (mix64(ch.conn_ids[rows]) % np.uint64(4)) != 0
    dash = _dash(n)
    return [
        *_id_fields(c["ts"][rows], ch.conn_uid.take(idx), ch.src_text.take(idx), c["sport"][rows],
                    ch.dst_text.take(idx), c["dport"][rows]),
        Field("version", "string", lookup(["TLSv12", "TLSv13"], v13.astype(np.int64))),
        Field("cipher", "string", lookup(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"],
                                         v13.astype(np.int64))),
        Field("curve", "string", pa.array(np.full(n, "x25519"))),
        Field("server_name", "string", or_dash(sni, np.asarray(pc.equal(sni, "")))),
        Field("resumed", "bool", pa.array(np.full(n, "F")), "bool"),
        Field("last_alert", "string", dash), Field("next_protocol", "string", dash),
        Field("established", "bool", pa.array(np.full(n, "T")), "bool"),
        Field("ssl_history", "string", pa.array(np.full(n, "CsiI"))),
        Field("cert_chain_fps", "vector[string]", dash, "list"),
        Field("client_cert_chain_fps", "vector[string]", dash, "list"),
        Field("sni_matches_cert", "bool", dash, "bool"),
    ]


USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 "
    "Safari/537.36 Edg/122.0.2365.66",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 "
    "Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.1; Trident/7.0)",
)
URIS = ("/", "/index.html", "/api/v1/items", "/static/app.js", "/images/logo.png", "/favicon.ico",
        "/search?q=report", "/login", "/news/2024/03/update")


def http_fields(ch: Chunk, rows: np.ndarray) -> list[Field]:
    c = ch.conn
    n = rows.size
    idx = pa.array(rows)
    sni = ch.sni_text.take(idx)
    host = pc.if_else(pc.equal(sni, ""), ch.dst_text.take(idx), sni)
    h = mix64(ch.conn_ids[rows])
    proc_ = c["proc"][rows]
    implant = np.isin(proc_, [i for i, p in enumerate(PROCS) if p.company == ""])
    ua = np.where(implant, len(USER_AGENTS) - 1, (h % np.uint64(len(USER_AGENTS) - 1)).astype(np.int64))
    uri = ((h >> np.uint64(8)) % np.uint64(len(URIS))).astype(np.int64)
    dash = _dash(n)
    return [
        *_id_fields(c["ts"][rows], ch.conn_uid.take(idx), ch.src_text.take(idx), c["sport"][rows],
                    ch.dst_text.take(idx), c["dport"][rows]),
        Field("trans_depth", "count", pa.array(np.full(n, "1")), "num"),
        Field("method", "string", pa.array(np.full(n, "GET"))),
        Field("host", "string", host),
        Field("uri", "string", lookup(URIS, uri)),
        Field("referrer", "string", dash), Field("version", "string", pa.array(np.full(n, "1.1"))),
        Field("user_agent", "string", lookup(USER_AGENTS, ua)), Field("origin", "string", dash),
        Field("request_body_len", "count", pa.array(np.full(n, "0")), "num"),
        Field("response_body_len", "count", ints(np.maximum(c["bin"][rows] - 300, 0)), "num"),
        Field("status_code", "count", pa.array(np.full(n, "200")), "num"),
        Field("status_msg", "string", pa.array(np.full(n, "OK"))),
        Field("info_code", "count", dash, "num"), Field("info_msg", "string", dash),
        Field("tags", "set[enum]", pa.array(np.full(n, "(empty)")), "list"),
        Field("username", "string", dash), Field("password", "string", dash),
        Field("proxied", "set[string]", dash, "list"),
        *[Field(name, "vector[string]", dash, "list") for name in (
            "orig_fuids", "orig_filenames", "orig_mime_types", "resp_fuids", "resp_filenames", "resp_mime_types")],
    ]
