"""Argus bidirectional flows as `ra` prints them for the CTU / Stratosphere datasets ("binetflow"):
comma- or tab-separated text with a header line such as
`StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,SrcBytes,Label`.

Columns are found by the header, so extra columns (SrcPkts, srcUdata, ...) are fine; a file without
a header is not read (nothing else names the columns). Lines are split in Arrow and mapped in SQL
(DuckDB); Python runs once per rejected line only.

Mapping decisions:
- `ts` from StartTime (`2011/08/16 10:04:56.397131`, with or without fraction, or epoch seconds);
  Argus prints local time without a zone, taken as UTC.
- Ports are decimal or hex (`0x0050`); empty (ARP, some ICMP) -> null. For ICMP, Argus puts the type
  and code in Sport and the echo id in Dport; they are kept as given.
- Bytes are wire bytes: SrcBytes -> bytes_out, DstBytes (or TotBytes - SrcBytes) -> bytes_in.
  Packets: SrcPkts / DstPkts when the file has them (DstPkts = TotPkts - SrcPkts); otherwise the CTU
  layout gives only TotPkts, which goes to pkts_out with pkts_in null (the split is unknown).
- `action` is the State word as given; `state` normalises it:
  TCP flag pairs `<src flags>_<dst flags>`: the responder sent SYN (a SYN-ACK) -> established; sent
  RST without SYN -> rejected; sent nothing while the originator only tried (SYN, no ACK/PSH) ->
  attempted; both sides sent segments (mid-stream `PA_PA`) -> established; anything else (one side
  seen sending data: one-way capture or crafted packets) -> other.
  Words: CON EST ACC CLO FIN -> established; INT REQ -> attempted; RST and the ICMP unreachables
  (UR*) -> rejected; ECO/ECR (ICMP echo) -> established when reply bytes came back, else attempted;
  the rest (TXD time exceeded, NNS/NRS neighbour/router solicitation, MHR, TIM, STA, UNK) -> other.
- `label` is the Label column as given (e.g. `flow=From-Botnet-V44-...`, `Background`); empty -> null.
- `Dir`, `sTos`, `dTos` and user data columns are not kept; Argus has no record id, so `uid` is null.
- Argus management records (Proto `man`: the sensor's own status) are skipped, counted, not rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.errors import InputError
from bothunt.sources.base import Batch, ReadContext, Source, iter_chunks

REQUIRED = ("StartTime", "Proto", "SrcAddr", "DstAddr")
# header column -> name in the SQL below
FIELDS = {
    "StartTime": "start_s", "Dur": "dur_s", "Proto": "proto_s", "SrcAddr": "src_s", "Sport": "sport_s",
    "DstAddr": "dst_s", "Dport": "dport_s", "State": "state_s", "TotPkts": "totpkts_s",
    "TotBytes": "totbytes_s", "SrcBytes": "srcbytes_s", "DstBytes": "dstbytes_s", "SrcPkts": "srcpkts_s",
    "DstPkts": "dstpkts_s", "Label": "label_s",
}
NUMBERS = {"dur_s": "DOUBLE", "totpkts_s": "BIGINT", "totbytes_s": "BIGINT", "srcbytes_s": "BIGINT",
           "dstbytes_s": "BIGINT", "srcpkts_s": "BIGINT", "dstpkts_s": "BIGINT"}
TIME_FORMATS = ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Layout:
    """Where each column is, from the header line."""

    sep: str
    columns: tuple[str, ...]
    header: str

    @classmethod
    def from_header(cls, line: str) -> Layout | None:
        line = line.lstrip("\ufeff").rstrip("\r\n")
        sep = "\t" if "\t" in line else ","
        columns = tuple(c.strip() for c in line.split(sep))
        if not set(REQUIRED) <= set(columns):
            return None
        return cls(sep, columns, line)

    def field(self, column: str) -> str:
        """SQL for one column's trimmed text; the last column is taken from the end, so user data
        with separators inside (srcUdata) does not shift the Label."""
        if column not in self.columns:
            return "NULL::VARCHAR"
        i = self.columns.index(column)
        pos = -1 if i == len(self.columns) - 1 else i + 1
        return f"trim(f[{pos}])"

    @property
    def sep_sql(self) -> str:
        return "chr(9)" if self.sep == "\t" else "','"


def _select_sql(layout: Layout) -> str:
    n = len(layout.columns)
    has_udata = any(c.lower().endswith("udata") for c in layout.columns)
    fields = ",\n    ".join(f"{layout.field(col)} AS {name}" for col, name in FIELDS.items())
    numbers = ",\n    ".join(f"try_cast(nullif({s}, '') AS {t}) AS {s[:-2]}" for s, t in NUMBERS.items())
    bad_numbers = " OR ".join(f"({s} <> '' AND {s[:-2]} IS NULL)" for s in NUMBERS)
    formats = ", ".join(f"'{f}'" for f in TIME_FORMATS)
    too_many = "FALSE" if has_udata else f"n > {n}"
    pkts_out = "srcpkts" if "SrcPkts" in layout.columns else "totpkts"
    return f"""
WITH s AS (
  SELECT line, text, string_split(rtrim(text, chr(13)), {layout.sep_sql}) AS f FROM raw
  WHERE trim(text) <> '' AND rtrim(text, chr(13)) <> $header),
v AS (
  SELECT line, text, len(f) AS n,
    {fields}
  FROM s),
t AS (
  SELECT *,
    coalesce(try_strptime(start_s, [{formats}]),
             CASE WHEN regexp_full_match(start_s, '[0-9]+(\\.[0-9]+)?')
                  THEN try_cast(to_timestamp(start_s::DOUBLE) AS TIMESTAMP) END) AS ts,
    try_cast(nullif(sport_s, '') AS INTEGER) AS sport, try_cast(nullif(dport_s, '') AS INTEGER) AS dport,
    {numbers},
    upper(state_s) AS st, split_part(upper(state_s), '_', 1) AS fs, split_part(upper(state_s), '_', 2) AS fd
  FROM v),
m AS (
  SELECT *, coalesce(dstbytes, totbytes - srcbytes) AS bytes_in FROM t)
SELECT line, text, ts, dur AS duration, nullif(src_s, '') AS src_ip, nullif(dst_s, '') AS dst_ip,
  sport AS src_port, dport AS dst_port, lower(proto_s) AS proto,
  srcbytes AS bytes_out, bytes_in, {pkts_out} AS pkts_out, coalesce(dstpkts, totpkts - srcpkts) AS pkts_in,
  CASE
    WHEN regexp_full_match(st, '[A-Z]*_[A-Z]*') THEN CASE
      WHEN fd LIKE '%S%' THEN 'established'
      WHEN fd LIKE '%R%' THEN 'rejected'
      WHEN fd = '' AND fs LIKE '%S%' AND fs NOT LIKE '%A%' AND fs NOT LIKE '%P%' THEN 'attempted'
      WHEN fd <> '' AND fs <> '' THEN 'established'
      ELSE 'other' END
    WHEN st IN ('CON', 'EST', 'ACC', 'CLO', 'FIN') THEN 'established'
    WHEN st IN ('INT', 'REQ') THEN 'attempted'
    WHEN st = 'RST' OR st LIKE 'UR%' THEN 'rejected'
    WHEN st IN ('ECO', 'ECR') THEN CASE WHEN bytes_in > 0 THEN 'established' ELSE 'attempted' END
    ELSE 'other' END AS state,
  nullif(state_s, '') AS action, 'argus' AS source, nullif(label_s, '') AS label,
  CASE
    WHEN lower(proto_s) = 'man' AND n >= {n} THEN NULL
    WHEN n < {n} OR {too_many} THEN 'expected {n} fields, found ' || n
    WHEN ts IS NULL THEN 'bad StartTime: ' || coalesce(start_s, '')
    WHEN (sport_s <> '' AND sport IS NULL) OR NOT coalesce(sport BETWEEN 0 AND 65535, TRUE)
      THEN 'bad Sport: ' || sport_s
    WHEN (dport_s <> '' AND dport IS NULL) OR NOT coalesce(dport BETWEEN 0 AND 65535, TRUE)
      THEN 'bad Dport: ' || dport_s
    WHEN {bad_numbers} THEN 'bad number in Dur / packet / byte counts'
    WHEN coalesce(src_s, '') = '' OR coalesce(dst_s, '') = '' THEN 'no SrcAddr / DstAddr'
  END AS reason
FROM m
ORDER BY line
"""


def _lines(chunk: bytes, first_line: int) -> pa.Table:
    text = pa.array([chunk.decode("utf-8", errors="replace")])
    lines = pc.list_flatten(pc.split_pattern(text, "\n"))
    lines = lines.slice(0, len(lines) - 1)  # the chunk ends with a newline
    numbers = pa.array(np.arange(first_line, first_line + len(lines), dtype=np.int64))
    return pa.table({"line": numbers, "text": lines})


class ArgusSource(Source):
    id = "argus"
    description = "Argus binetflow (CTU / Stratosphere CSV or TSV with a StartTime,... header)"

    def sniff(self, head: bytes, path: Path) -> int:
        first = next((ln for ln in head.decode("utf-8", errors="replace").splitlines() if ln.strip()), "")
        layout = Layout.from_header(first)
        if layout is None:
            return 0
        return 95 if {"State", "Dur", "TotBytes"} & set(layout.columns) else 80

    def read(self, path: Path, ctx: ReadContext) -> Iterator[Batch]:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        layout: Layout | None = None
        sql = ""
        management = 0
        for first_line, chunk in iter_chunks(path, ctx):
            raw = _lines(chunk, first_line)
            if layout is None:
                texts = raw["text"].slice(0, 100).to_pylist()  # only the lines up to the header
                at = next((i for i, t in enumerate(texts) if t.strip()), None)
                if at is None:
                    continue
                layout = Layout.from_header(texts[at])
                if layout is None:
                    raise InputError(f"no binetflow header: the first line must name the columns, "
                                     f"including {', '.join(REQUIRED)}", file=ctx.file, line=first_line + at)
                sql = _select_sql(layout)
                raw = raw.slice(at + 1)
            con.register("raw", raw)
            rows = con.sql(sql, params={"header": layout.header}).to_arrow_table()
            con.unregister("raw")
            bad = rows.filter(pc.is_valid(rows["reason"]))
            for line, reason, text in zip(*(bad[c].to_pylist() for c in ("line", "reason", "text")),
                                          strict=True):
                ctx.reject(line, reason, text)
            good = rows.filter(pc.is_null(rows["reason"]))
            is_man = pc.fill_null(pc.equal(good["proto"], "man"), False)
            management += pc.sum(is_man).as_py() or 0
            good = good.filter(pc.invert(is_man)).drop_columns(["line", "text", "reason"])
            if good.num_rows:
                yield Batch("conn", good)
        if management:
            ctx.skip(management, "Argus management records (Proto man) report the sensor's status, not traffic")
        con.close()
