"""Microsoft Defender for Endpoint DeviceNetworkEvents as CSV, with Microsoft's published column names.

What Defender sees: connections a managed device opens (ConnectionSuccess / ConnectionFailed, with the
initiating process and its account) and inbound connections a device accepts (InboundConnectionAccepted,
with the listening process); refused or unanswered inbound attempts leave no event. A managed device's
DNS lookups are not connection events: network protection's inspection records each one as a
DnsConnectionInspected row (direction Out, RemoteIP the resolver, no process, InitiatingProcessId 0)
whose AdditionalFields holds Zeek's dns.log fields as JSON with every value a string, `answers` and
`TTLs` JSON arrays written as strings (left out when there is no answer, as Zeek leaves unset fields
out) and `ts` a Windows FILETIME. Rows are written in time order, connections and lookups interleaved.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bothunt.simulate import net
from bothunt.simulate.context import Sim
from bothunt.simulate.frames import QTYPES, RCODES, REJ, S0, SF, SVC, TCP
from bothunt.simulate.org import AD_DOMAIN, DOMAIN_SUFFIX, PROCS
from bothunt.simulate.rand import mix64
from bothunt.simulate.writers.common import (
    INBOUND,
    INTERNAL,
    OUTBOUND,
    Chunk,
    Writer,
    clock,
    fixed,
    ints,
    json_escape,
    lookup,
)

COLUMNS = (
    "Timestamp", "DeviceId", "DeviceName", "ActionType", "RemoteIP", "RemotePort", "RemoteUrl", "LocalIP",
    "LocalPort", "Protocol", "LocalIPType", "RemoteIPType", "InitiatingProcessSHA1", "InitiatingProcessSHA256",
    "InitiatingProcessMD5", "InitiatingProcessFileName", "InitiatingProcessFileSize",
    "InitiatingProcessVersionInfoCompanyName", "InitiatingProcessVersionInfoProductName",
    "InitiatingProcessVersionInfoProductVersion", "InitiatingProcessVersionInfoInternalFileName",
    "InitiatingProcessVersionInfoOriginalFileName", "InitiatingProcessVersionInfoFileDescription",
    "InitiatingProcessId", "InitiatingProcessCommandLine", "InitiatingProcessCreationTime",
    "InitiatingProcessFolderPath", "InitiatingProcessParentFileName", "InitiatingProcessParentId",
    "InitiatingProcessParentCreationTime", "InitiatingProcessAccountDomain", "InitiatingProcessAccountName",
    "InitiatingProcessAccountSid", "InitiatingProcessAccountUpn", "InitiatingProcessAccountObjectId",
    "InitiatingProcessIntegrityLevel", "InitiatingProcessTokenElevation", "ReportId", "AppGuardContainerId",
    "AdditionalFields",
)
_PARENT = {"svchost.exe": "services.exe", "lsass.exe": "wininit.exe", "System": ""}
FILETIME_EPOCH_US = 11_644_473_600 * 1_000_000  # 1601-01-01 to 1970-01-01 in microseconds


def visible(ch: Chunk) -> np.ndarray:
    """Rows Defender records: outbound/internal connections a device opened (DNS to the resolver
    excluded) and inbound connections a device accepted."""
    c = ch.conn
    d = ch.direction
    failed = np.isin(c["cstate"], (S0, REJ))
    opened = ((d == OUTBOUND) | (d == INTERNAL)) & (c["dev"] >= 0) & (c["svc"] != SVC["dns"])
    accepted = (d == INBOUND) & (c["dev"] >= 0) & ~failed & (c["proc"] >= 0)
    return opened | accepted


def dns_visible(ch: Chunk) -> np.ndarray:
    """Lookups Defender records: those a managed device made."""
    return ch.dns["dev"] >= 0


def _json_array_text(lists: pa.Array, values: pa.Array, quoted: bool) -> pa.Array:
    """Each row's list as the text of a JSON array (`["a","b"]` or `[1.0,2.0]`); `values` are the list's
    flattened items already rendered, in order."""
    lengths = np.asarray(pc.list_value_length(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    sep, left, right = ('","', '["', '"]') if quoted else (",", "[", "]")
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, values), sep)
    return pc.binary_join_element_wise(pa.scalar(left), joined, pa.scalar(right), "")


def dns_additional_fields(ch: Chunk, rows: np.ndarray) -> pa.Array:
    """AdditionalFields of DnsConnectionInspected rows: Zeek's dns.log fields in the order Defender writes
    them, every value a JSON string, answers / TTLs only when there is an answer."""
    d = ch.dns
    idx = pa.array(rows)
    qtype, rcode = np.asarray(d["qtype"])[rows], np.asarray(d["rcode"])[rows]
    qt_codes, rc_codes = sorted(QTYPES), sorted(RCODES)
    h = mix64(ch.dns_ids[rows])
    trans = (h % np.uint64(65536)).astype(np.int64)
    rtt = 0.0004 + ((h >> np.uint64(16)) % np.uint64(40000)).astype(np.float64) / 1e6
    us = np.round(np.asarray(d["ts"])[rows] * 1e6).astype(np.int64)
    answers, ttls = d["answers"].take(idx), d["ttls"].take(idx)
    has = np.asarray(pc.list_value_length(answers).to_numpy(zero_copy_only=False), dtype=np.int64) > 0
    ans_text = _json_array_text(answers, json_escape(pc.list_flatten(answers)), True)
    # TTLs are whole seconds; Defender writes them as floats ("[1200.0]")
    ttl_values = fixed(np.asarray(pc.list_flatten(ttls).to_numpy(zero_copy_only=False), dtype=np.float64), 1)
    ttl_text = _json_array_text(ttls, ttl_values, False)
    answered = pc.binary_join_element_wise(pa.scalar(',"answers":"'), json_escape(ans_text),
                                           pa.scalar('","TTLs":"'), ttl_text, pa.scalar('"'), "")
    return pc.binary_join_element_wise(
        pa.scalar('{"direction":"Out","trans_id":"'), ints(trans), pa.scalar('","rtt":"'), fixed(rtt, 6),
        pa.scalar('","query":"'), json_escape(d["query"].take(idx)),
        pa.scalar('","qclass":"1","qclass_name":"C_INTERNET","qtype":"'), ints(qtype),
        pa.scalar('","qtype_name":"'), lookup([QTYPES[q] for q in qt_codes], np.searchsorted(qt_codes, qtype)),
        pa.scalar('","rcode":"'), ints(rcode), pa.scalar('","uid":"'), ch.dns_uid.take(idx),
        pa.scalar('","rcode_name":"'), lookup([RCODES[r] for r in rc_codes], np.searchsorted(rc_codes, rcode)),
        pa.scalar('","AA":"false","TC":"false","RD":"true","RA":"true"'),
        pc.if_else(pa.array(has), answered, pa.scalar("")),
        pa.scalar(',"rejected":"false","ts":"'), ints((us + FILETIME_EPOCH_US) * 10), pa.scalar('"}'), "")


class DefenderWriter(Writer):
    id = "defender"

    def __init__(self, out: Path, sim: Sim, rotate: bool) -> None:
        super().__init__(out, sim, rotate)
        self.open_single("defender", "DeviceNetworkEvents.csv")
        self.report_id = 0
        org = sim.org
        self.device_ids = pa.array([hashlib.sha1(f"{sim.seed}:{n}".encode()).hexdigest() for n in org.names])
        self.device_names = pa.array([org.fqdn(i) for i in range(org.size)])
        self.users = org.users
        self.header = True

    def _proc_table(self, proc_: np.ndarray, dev: np.ndarray) -> dict[str, pa.Array]:
        """Per-row process columns, built per distinct (device, process) pair."""
        key = dev.astype(np.int64) * 1000 + np.maximum(proc_, 0)
        uniq, inv = np.unique(key, return_inverse=True)
        cols: dict[str, list[object]] = {k: [] for k in ("name", "folder", "cmd", "sha1", "company", "acct",
                                                         "domain", "integrity", "parent", "pid", "ppid")}
        for k in uniq.tolist():  # per distinct (device, process), not per event
            dv, pi = divmod(k, 1000)
            p = PROCS[pi]
            user = self.users[dv]
            acct = user if p.account == "user" else p.account
            cols["name"].append(p.file)
            cols["folder"].append((p.folder + p.file).replace("{user}", user) if p.folder else "")
            cols["cmd"].append(p.cmdline.replace("{user}", user))
            cols["sha1"].append(p.sha1)
            cols["company"].append(p.company)
            cols["acct"].append(acct)
            cols["domain"].append(AD_DOMAIN if p.account == "user" else "nt authority")
            cols["integrity"].append(p.integrity)
            cols["parent"].append(_PARENT.get(p.file, "explorer.exe" if p.account == "user" else "services.exe"))
            h = int(mix64(np.uint64(self.sim.seed * 7919 + k)))
            cols["pid"].append(4 if p.file == "System" else 1000 + (h % 30000) // 4 * 4)
            cols["ppid"].append(0 if p.file == "System" else 600 + (h >> 20) % 400 // 4 * 4)
        take = pa.array(inv.astype(np.int64))
        return {k: pa.array(v).take(take) for k, v in cols.items()}

    def write(self, chunk: Chunk) -> None:
        rows = np.flatnonzero(visible(chunk))
        lookups = np.flatnonzero(dns_visible(chunk))
        self.count(chunk.conn["scen"][rows], self.conn_counts)
        self.count(chunk.dns["scen"][lookups], self.dns_counts)
        parts = [build(chunk, r) for build, r in ((self._conn_rows, rows), (self._dns_rows, lookups)) if r.size]
        if not parts:
            return
        ts = np.concatenate([chunk.conn["ts"][rows], chunk.dns["ts"][lookups]])
        table = pa.concat_tables(parts).take(pa.array(np.argsort(ts, kind="stable")))
        rid = np.arange(self.report_id + 1, self.report_id + 1 + table.num_rows)
        self.report_id += table.num_rows
        table = table.set_column(COLUMNS.index("ReportId"), "ReportId", ints(rid))
        pacsv.write_csv(table, self.fh, pacsv.WriteOptions(include_header=self.header))
        self.header = False

    def _conn_rows(self, chunk: Chunk, rows: np.ndarray) -> pa.Table:
        c = chunk.conn
        idx = pa.array(rows)
        n = rows.size
        inbound = chunk.direction[rows] == INBOUND
        inb = pa.array(inbound)
        src, dst = chunk.src_text.take(idx), chunk.dst_text.take(idx)
        state = c["cstate"][rows]
        action = np.where(inbound, "InboundConnectionAccepted",
                          np.where(np.isin(state, (S0, REJ)), "ConnectionFailed", "ConnectionSuccess"))
        remote_addr = np.where(inbound, c["src"][rows], c["dst"][rows])
        dev, proc_ = c["dev"][rows], c["proc"][rows]
        p = self._proc_table(proc_, dev)
        no_proc = pa.array(proc_ < 0)
        blank = pa.array(np.full(n, ""), pa.string())
        sni = chunk.sni_text.take(idx)
        elev = pc.if_else(pc.equal(p["integrity"], "Medium"), pa.scalar("TokenElevationTypeLimited"),
                          pa.scalar("TokenElevationTypeDefault"))
        def opt(a: pa.Array) -> pa.Array:
            return pc.if_else(no_proc, blank, a)
        cols = {
            "Timestamp": clock(c["ts"][rows]),
            "DeviceId": self.device_ids.take(pa.array(dev.astype(np.int64))),
            "DeviceName": self.device_names.take(pa.array(dev.astype(np.int64))),
            "ActionType": pa.array(action, pa.string()),
            "RemoteIP": pc.if_else(inb, src, dst),
            "RemotePort": ints(np.where(inbound, c["sport"][rows], c["dport"][rows])),
            "RemoteUrl": pc.if_else(inb, blank, sni),
            "LocalIP": pc.if_else(inb, dst, src),
            "LocalPort": ints(np.where(inbound, c["dport"][rows], c["sport"][rows])),
            "Protocol": lookup(["Tcp", "Udp", "Icmp"], c["proto"][rows]),
            "LocalIPType": pa.array(np.full(n, "Private"), pa.string()),
            "RemoteIPType": pa.array(np.where(net.is_internal(remote_addr), "Private", "Public"), pa.string()),
            "InitiatingProcessSHA1": opt(p["sha1"]), "InitiatingProcessSHA256": blank, "InitiatingProcessMD5": blank,
            "InitiatingProcessFileName": opt(p["name"]), "InitiatingProcessFileSize": blank,
            "InitiatingProcessVersionInfoCompanyName": opt(p["company"]),
            "InitiatingProcessVersionInfoProductName": blank, "InitiatingProcessVersionInfoProductVersion": blank,
            "InitiatingProcessVersionInfoInternalFileName": blank,
            "InitiatingProcessVersionInfoOriginalFileName": opt(p["name"]),
            "InitiatingProcessVersionInfoFileDescription": blank,
            "InitiatingProcessId": opt(p["pid"].cast(pa.string())),
            "InitiatingProcessCommandLine": opt(p["cmd"]),
            "InitiatingProcessCreationTime": pa.array(np.full(n, self._boot()), pa.string()),
            "InitiatingProcessFolderPath": opt(p["folder"]),
            "InitiatingProcessParentFileName": opt(p["parent"]),
            "InitiatingProcessParentId": opt(p["ppid"].cast(pa.string())),
            "InitiatingProcessParentCreationTime": pa.array(np.full(n, self._boot()), pa.string()),
            "InitiatingProcessAccountDomain": opt(p["domain"]),
            "InitiatingProcessAccountName": opt(p["acct"]),
            "InitiatingProcessAccountSid": blank, "InitiatingProcessAccountUpn": blank,
            "InitiatingProcessAccountObjectId": blank,
            "InitiatingProcessIntegrityLevel": opt(p["integrity"]),
            "InitiatingProcessTokenElevation": opt(elev),
            "ReportId": blank, "AppGuardContainerId": blank, "AdditionalFields": blank,
        }
        return pa.table({k: cols[k] for k in COLUMNS})

    def _dns_rows(self, chunk: Chunk, rows: np.ndarray) -> pa.Table:
        """DnsConnectionInspected as Defender writes it for a lookup the device made: the UDP leg to the
        resolver with no process (InitiatingProcessId 0, token elevation None) and no address types."""
        d = chunk.dns
        idx = pa.array(rows)
        n = rows.size
        dev = pa.array(d["dev"][rows].astype(np.int64))
        blank = pa.array(np.full(n, ""), pa.string())
        cols = dict.fromkeys(COLUMNS, blank)
        cols.update({
            "Timestamp": clock(d["ts"][rows]),
            "DeviceId": self.device_ids.take(dev),
            "DeviceName": self.device_names.take(dev),
            "ActionType": pa.array(np.full(n, "DnsConnectionInspected"), pa.string()),
            "RemoteIP": chunk.dns_dst_text.take(idx),
            "RemotePort": ints(np.full(n, 53)),
            "LocalIP": chunk.dns_src_text.take(idx),
            "LocalPort": ints(d["sport"][rows]),
            "Protocol": pa.array(np.full(n, "Udp"), pa.string()),
            "InitiatingProcessId": ints(np.zeros(n, np.int64)),
            "InitiatingProcessParentId": ints(np.zeros(n, np.int64)),
            "InitiatingProcessTokenElevation": pa.array(np.full(n, "None"), pa.string()),
            "AdditionalFields": dns_additional_fields(chunk, rows),
        })
        return pa.table({k: cols[k] for k in COLUMNS})

    def _boot(self) -> str:
        return clock(np.array([self.sim.t_start - 3 * 86400.0]))[0].as_py()

    def close(self) -> list[Path]:
        if self.header:  # nothing written: still a valid CSV with its header
            pacsv.write_csv(pa.table({k: pa.array([], pa.string()) for k in COLUMNS}), self.fh)
        self.fh.close()
        return self.files


__all__ = ["COLUMNS", "DOMAIN_SUFFIX", "SF", "TCP", "DefenderWriter", "dns_additional_fields", "dns_visible",
           "visible"]
