"""A perimeter firewall's traffic log as CEF over syslog (RFC 3164 header, then `CEF:0|...|`).

The firewall only sees connections that cross the perimeter (inbound or outbound); it has no process,
device name or DNS. Extension keys: rt (epoch ms), src, dst, spt, dpt, proto, act, out (bytes the source
sent) and in (bytes it received): firewall vendors write them so whatever the CEF guide's wording, and
Sentinel maps them to SentBytes / ReceivedBytes, as bothunt's CEF source reads them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from bothunt.simulate.context import Sim
from bothunt.simulate.frames import REJ, S0
from bothunt.simulate.writers.common import INBOUND, OUTBOUND, Chunk, Writer, clock, ints, lookup, write_lines

PRI = "<134>"  # facility local0, severity informational
HOSTNAME = "fw-edge-01"
CEF_PREFIX = "CEF:0|Palo Alto Networks|PAN-OS|10.2.7|end|TRAFFIC|3|"


def visible(ch: Chunk) -> np.ndarray:
    d = ch.direction
    return (d == INBOUND) | (d == OUTBOUND)


class CefWriter(Writer):
    id = "cef"

    def __init__(self, out: Path, sim: Sim, rotate: bool) -> None:
        super().__init__(out, sim, rotate)
        self.open_single("cef", "firewall.cef")

    def write(self, chunk: Chunk) -> None:
        rows = np.flatnonzero(visible(chunk))
        self.count(chunk.conn["scen"][rows], self.conn_counts)
        if not rows.size:
            return
        c = chunk.conn
        idx = pa.array(rows)
        ts = c["ts"][rows]
        header_ts = clock(ts, "%b %e %H:", "", 0)
        state = c["cstate"][rows]
        act = np.where(state == REJ, 2, np.where((state == S0) & (chunk.direction[rows] == INBOUND), 1, 0))
        write_lines(
            self.fh, PRI, header_ts, f" {HOSTNAME} {CEF_PREFIX}rt=", ints(np.round(ts * 1000)),
            " src=", chunk.src_text.take(idx), " spt=", ints(c["sport"][rows]),
            " dst=", chunk.dst_text.take(idx), " dpt=", ints(c["dport"][rows]),
            " proto=", lookup(["TCP", "UDP", "ICMP"], c["proto"][rows]),
            " act=", lookup(["accept", "drop", "reject"], act),
            " out=", ints(c["bout"][rows]), " in=", ints(c["bin"][rows]),
            " deviceDirection=", lookup(["0", "1"], (chunk.direction[rows] == OUTBOUND).astype(np.int64)),
        )

    def close(self) -> list[Path]:
        self.fh.close()
        return self.files
