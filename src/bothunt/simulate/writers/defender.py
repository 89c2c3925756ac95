"""Microsoft Defender for Endpoint DeviceNetworkEvents as CSV, with Microsoft's published column names.

What Defender sees: connections a managed device opens (ConnectionSuccess / ConnectionFailed, with the
initiating process and its account) and inbound connections a device accepts (InboundConnectionAccepted,
with the listening process). It has no DNS log and does not record the lookups themselves, and refused or
unanswered inbound attempts leave no event.
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
from bothunt.simulate.frames import REJ, S0, SF, SVC, TCP
from bothunt.simulate.org import AD_DOMAIN, DOMAIN_SUFFIX, PROCS
from bothunt.simulate.rand import mix64
from bothunt.simulate.writers.common import INBOUND, INTERNAL, OUTBOUND, Chunk, Writer, clock, ints, lookup

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


def visible(ch: Chunk) -> np.ndarray:
    """Rows Defender records: outbound/internal connections a device opened (DNS to the resolver
    excluded) and inbound connections a device accepted."""
    c = ch.conn
    d = ch.direction
    failed = np.isin(c["cstate"], (S0, REJ))
    opened = ((d == OUTBOUND) | (d == INTERNAL)) & (c["dev"] >= 0) & (c["svc"] != SVC["dns"])
    accepted = (d == INBOUND) & (c["dev"] >= 0) & ~failed & (c["proc"] >= 0)
    return opened | accepted


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
        self.count(chunk.conn["scen"][rows], self.conn_counts)
        if not rows.size:
            return
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
        blank = pa.array(np.full(n, ""))
        sni = chunk.sni_text.take(idx)
        elev = pc.if_else(pc.equal(p["integrity"], "Medium"), pa.scalar("TokenElevationTypeLimited"),
                          pa.scalar("TokenElevationTypeDefault"))
        rid = np.arange(self.report_id + 1, self.report_id + 1 + n)
        self.report_id += n
        def opt(a: pa.Array) -> pa.Array:
            return pc.if_else(no_proc, blank, a)
        cols = {
            "Timestamp": clock(c["ts"][rows]),
            "DeviceId": self.device_ids.take(pa.array(dev.astype(np.int64))),
            "DeviceName": self.device_names.take(pa.array(dev.astype(np.int64))),
            "ActionType": pa.array(action),
            "RemoteIP": pc.if_else(inb, src, dst),
            "RemotePort": ints(np.where(inbound, c["sport"][rows], c["dport"][rows])),
            "RemoteUrl": pc.if_else(inb, blank, sni),
            "LocalIP": pc.if_else(inb, dst, src),
            "LocalPort": ints(np.where(inbound, c["dport"][rows], c["sport"][rows])),
            "Protocol": lookup(["Tcp", "Udp", "Icmp"], c["proto"][rows]),
            "LocalIPType": pa.array(np.full(n, "Private")),
            "RemoteIPType": pa.array(np.where(net.is_internal(remote_addr), "Private", "Public")),
            "InitiatingProcessSHA1": opt(p["sha1"]), "InitiatingProcessSHA256": blank, "InitiatingProcessMD5": blank,
            "InitiatingProcessFileName": opt(p["name"]), "InitiatingProcessFileSize": blank,
            "InitiatingProcessVersionInfoCompanyName": opt(p["company"]),
            "InitiatingProcessVersionInfoProductName": blank, "InitiatingProcessVersionInfoProductVersion": blank,
            "InitiatingProcessVersionInfoInternalFileName": blank,
            "InitiatingProcessVersionInfoOriginalFileName": opt(p["name"]),
            "InitiatingProcessVersionInfoFileDescription": blank,
            "InitiatingProcessId": opt(p["pid"].cast(pa.string())),
            "InitiatingProcessCommandLine": opt(p["cmd"]),
            "InitiatingProcessCreationTime": pa.array(np.full(n, self._boot())),
            "InitiatingProcessFolderPath": opt(p["folder"]),
            "InitiatingProcessParentFileName": opt(p["parent"]),
            "InitiatingProcessParentId": opt(p["ppid"].cast(pa.string())),
            "InitiatingProcessParentCreationTime": pa.array(np.full(n, self._boot())),
            "InitiatingProcessAccountDomain": opt(p["domain"]),
            "InitiatingProcessAccountName": opt(p["acct"]),
            "InitiatingProcessAccountSid": blank, "InitiatingProcessAccountUpn": blank,
            "InitiatingProcessAccountObjectId": blank,
            "InitiatingProcessIntegrityLevel": opt(p["integrity"]),
            "InitiatingProcessTokenElevation": opt(elev),
            "ReportId": ints(rid), "AppGuardContainerId": blank, "AdditionalFields": blank,
        }
        table = pa.table({k: cols[k] for k in COLUMNS})
        pacsv.write_csv(table, self.fh, pacsv.WriteOptions(include_header=self.header))
        self.header = False

    def _boot(self) -> str:
        return clock(np.array([self.sim.t_start - 3 * 86400.0]))[0].as_py()

    def close(self) -> list[Path]:
        if self.header:  # nothing written: still a valid CSV with its header
            pacsv.write_csv(pa.table({k: pa.array([], pa.string()) for k in COLUMNS}), self.fh)
        self.fh.close()
        return self.files


__all__ = ["COLUMNS", "DOMAIN_SUFFIX", "SF", "TCP", "DefenderWriter", "visible"]
