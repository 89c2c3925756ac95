"""Suricata EVE JSON: one `flow` event per connection and one `dns` answer event per lookup (EVE dns
version 2, answers only, as with `requests: no` in suricata.yaml), all in eve.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.simulate.context import Sim
from bothunt.simulate.frames import QTYPES, RCODES, REJ, S0, SERVICES, TCP
from bothunt.simulate.rand import mix64
from bothunt.simulate.writers.common import Chunk, Writer, clock, ints, json_escape, lookup, write_lines

APP_PROTO = {"": "failed", "ssl": "tls", "http": "http", "dns": "dns", "ssh": "ssh", "smtp": "smtp", "rdp": "rdp",
             "ntp": "ntp", "krb": "krb5", "ldap": "ldap", "smb": "smb"}
SENSOR = "sensor-core-01"


def _iso(ts: np.ndarray) -> pa.Array:
    return clock(ts, suffix="+0000")


def flow_ids(ids: np.ndarray, seed: int) -> pa.Array:
    """Suricata flow ids: large positive integers that stay exact in JSON doubles."""
    return ints((mix64(np.asarray(ids, np.uint64) ^ np.uint64(seed)) >> np.uint64(13)).astype(np.int64))


class SuricataWriter(Writer):
    id = "suricata"

    def __init__(self, out: Path, sim: Sim, rotate: bool) -> None:
        super().__init__(out, sim, rotate)
        self.open_single("suricata", "eve.json")

    def write(self, chunk: Chunk) -> None:
        self._flows(chunk)
        self._dns(chunk)
        self.count(chunk.conn["scen"], self.conn_counts)
        self.count(chunk.dns["scen"], self.dns_counts)

    def _flows(self, ch: Chunk) -> None:
        c = ch.conn
        if not len(c):
            return
        state = c["cstate"]
        failed = np.isin(state, (S0, REJ))
        tcp = c["proto"] == TCP
        end = c["ts"] + c["dur"]
        app = [APP_PROTO[s] for s in SERVICES]
        fstate = np.where(failed & (state == S0), 0, np.where(tcp, 2, 1))
        write_lines(
            self.fh, '{"timestamp":"', _iso(end), '","flow_id":', flow_ids(ch.conn_ids, self.sim.seed),
            ',"event_type":"flow","src_ip":"', ch.src_text, '","src_port":', ints(c["sport"]),
            ',"dest_ip":"', ch.dst_text, '","dest_port":', ints(c["dport"]),
            ',"proto":"', lookup(["TCP", "UDP", "ICMP"], c["proto"]), '","app_proto":"',
            lookup(app, np.where(failed, 0, c["svc"])),
            '","flow":{"pkts_toserver":', ints(c["pout"]), ',"pkts_toclient":', ints(c["pin"]),
            ',"bytes_toserver":', ints(c["bout"] + 54 * c["pout"]), ',"bytes_toclient":',
            ints(c["bin"] + 54 * c["pin"]), ',"start":"', _iso(c["ts"]), '","end":"', _iso(end),
            '","age":', ints(np.floor(c["dur"])), ',"state":"', lookup(["new", "established", "closed"], fstate),
            '","reason":"timeout","alerted":false},"host":"', SENSOR, '"}',
        )

    def _dns(self, ch: Chunk) -> None:
        d = ch.dns
        n = len(d)
        if not n:
            return
        qt_codes, rc_codes = sorted(QTYPES), sorted(RCODES)
        qtype = lookup([QTYPES[q] for q in qt_codes], np.searchsorted(qt_codes, d["qtype"]))
        rcode = lookup([RCODES[r] for r in rc_codes], np.searchsorted(rc_codes, d["rcode"]))
        query = json_escape(d["query"])
        answers = self._answers(d["answers"], d["ttls"], query, qtype)
        write_lines(
            self.fh, '{"timestamp":"', _iso(d["ts"] + 0.0011), '","flow_id":', flow_ids(ch.dns_ids, self.sim.seed),
            ',"event_type":"dns","src_ip":"', ch.dns_src_text, '","src_port":', ints(d["sport"]),
            ',"dest_ip":"', ch.dns_dst_text, '","dest_port":53,"proto":"UDP","dns":{"version":2,"type":"answer","id":',
            ints((mix64(ch.dns_ids) % np.uint64(65536)).astype(np.int64)),
            ',"flags":"8180","qr":true,"rd":true,"ra":true,"rrname":"', query, '","rrtype":"', qtype,
            '","rcode":"', rcode, '"', answers, '},"host":"', SENSOR, '"}',
        )

    @staticmethod
    def _answers(answers: pa.Array, ttls: pa.Array, query: pa.Array, qtype: pa.Array) -> pa.Array:
        """`,"answers":[{...},...]` per row, or "" when the answer section is empty."""
        lengths = np.asarray(pc.list_value_length(answers).to_numpy(zero_copy_only=False), dtype=np.int64)
        parent = np.repeat(np.arange(lengths.size), lengths)
        p = pa.array(parent)
        ttl = ints(np.asarray(pc.list_flatten(ttls).to_numpy(zero_copy_only=False)).astype(np.int64))
        one = pc.binary_join_element_wise(
            pa.scalar('{"rrname":"'), query.take(p), pa.scalar('","rrtype":"'), qtype.take(p),
            pa.scalar('","ttl":'), ttl, pa.scalar(',"rdata":"'), json_escape(pc.list_flatten(answers)),
            pa.scalar('"}'), "")
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        joined = pc.binary_join(pa.ListArray.from_arrays(offsets, one), ",")
        full = pc.binary_join_element_wise(pa.scalar(',"answers":['), joined, pa.scalar("]"), "")
        return pc.if_else(pa.array(lengths == 0), pa.scalar(""), full)
