"""Microsoft Sentinel CommonSecurityLog exports (CSV with a header, JSON array / lines, streamed
`{"records": [...]}`): the table Sentinel fills from CEF firewalls, proxies and IDSs. The mapping SQL
here is shared with the raw CEF source (`cef.py`), which renames CEF keys to these column names.

Mapping decisions:
- ts = StartTime (the connection's start, when the device reports it), else ReceiptTime (the
  device's own event time), else TimeGenerated (when the collector received it); duration =
  EndTime - StartTime. Naive times (CEF's `MMM dd yyyy HH:mm:ss`, `5/1/2024, 12:34:56 PM`) are in
  DeviceTimeZone when given, else UTC; ISO times without an offset are UTC.
- src/dst = SourceIP:SourcePort -> DestinationIP:DestinationPort as logged (pre-NAT addresses).
- bytes_out = SentBytes (CEF `out`), bytes_in = ReceivedBytes (CEF `in`): firewall vendors write
  `out` as what the source sent, whatever the CEF guide's wording, and Sentinel maps them so.
- state from DeviceAction (else SimplifiedDeviceAction, else EventOutcome): allow / accept / permit /
  pass / success... -> established, or attempted when the responder sent nothing (ReceivedBytes 0, or
  SentBytes 0 when ReceivedBytes is unknown); deny / drop / block / reject / reset / prevent / fail...
  -> rejected; anything else -> other. action = DeviceAction as written.
- proto = Protocol (names or IANA numbers); service = ApplicationProtocol lower-case ("https" /
  "tls" -> "ssl", as Zeek names it).
- host = SourceHostName: the endpoint that opened the connection, when the device resolved it.
  DeviceName and Computer name the firewall or the collector, not an endpoint, and would merge
  every connection through the firewall into one "host", so they are not used.
- user = SourceNTDomain\\SourceUserName (or the name alone); process / pid = SourceProcessName /
  SourceProcessId (endpoint firewalls set them).
- server_name = the host of RequestURL, else DestinationHostName (lower-case, no port; null when it
  is an IP literal).
- direction stays null: CommunicationDirection is the device's view of its own zones, while
  bothunt's direction comes from the configured internal networks, so the pipeline computes it.
- uid = DeviceName (or Computer):ExtID when the device numbers its events.

Skipped: rows without both a source and a destination address (threat, system and audit events
share the table). Rejected: no parsable time, an address that is not one, a port outside 0..65535.
A CSV without TimeGenerated, SourceIP or DestinationIP columns raises InputError.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from bothunt.sources import tabular
from bothunt.sources.base import Batch, ReadContext, Source

FIELDS: dict[str, tuple[str, ...]] = {
    name: (name,)
    for name in (
        "TimeGenerated", "StartTime", "EndTime", "ReceiptTime", "DeviceTimeZone", "DeviceVendor",
        "DeviceProduct", "DeviceName", "Computer", "DeviceAction", "SimplifiedDeviceAction",
        "EventOutcome", "SourceIP", "SourcePort", "DestinationIP", "DestinationPort", "Protocol",
        "ApplicationProtocol", "SentBytes", "ReceivedBytes", "RequestURL", "DestinationHostName",
        "SourceHostName", "SourceUserName", "SourceNTDomain", "SourceProcessName", "SourceProcessId",
    )
}
FIELDS["ExtID"] = ("ExtID", "ExternalID")
REQUIRED = ("TimeGenerated", "SourceIP", "DestinationIP")

_ALLOW = "^(allow|accept|permit|pass|success|ok$)"
_DENY = "^(den|drop|block|reject|reset|prevent|fail|refuse|discard)"

_SQL = """
WITH s AS (
  SELECT _i, _line,
    bh_str(StartTime) AS t_start, bh_str(ReceiptTime) AS t_rt,
    coalesce(bh_str(TimeGenerated), bh_str(_time)) AS t_gen, bh_str(EndTime) AS t_end,
    bh_str(SourceIP) AS sip_raw, SourceIP__ip AS sip, SourceIP__ip_ok AS sip_ok,
    bh_str(DestinationIP) AS dip_raw, DestinationIP__ip AS dip, DestinationIP__ip_ok AS dip_ok,
    bh_str(SourcePort) AS sport_raw, bh_port(bh_str(SourcePort)) AS sport,
    bh_str(DestinationPort) AS dport_raw, bh_port(bh_str(DestinationPort)) AS dport,
    bh_count(bh_str(SentBytes)) AS bytes_out, bh_count(bh_str(ReceivedBytes)) AS bytes_in,
    coalesce(bh_str(DeviceAction), bh_str(SimplifiedDeviceAction), bh_str(EventOutcome)) AS action,
    bh_proto(bh_str(Protocol)) AS proto, lower(bh_str(ApplicationProtocol)) AS app,
    bh_str(SourceHostName) AS host, bh_str(SourceUserName) AS account, bh_str(SourceNTDomain) AS domain,
    bh_str(SourceProcessName) AS process, bh_count(bh_str(SourceProcessId)) AS pid,
    coalesce(RequestURL__host, DestinationHostName__host) AS server_name,
    coalesce(bh_str(DeviceName), bh_str(Computer)) AS device, bh_str(ExtID) AS ext,
    StartTime__ts, ReceiptTime__ts, TimeGenerated__ts, _time__ts, EndTime__ts
  FROM r
), m AS (
  SELECT *,
    coalesce(StartTime__ts, ReceiptTime__ts, TimeGenerated__ts, _time__ts) AS ts,
    StartTime__ts AS ts_start, EndTime__ts AS ts_end,
    lower(action) AS verdict
  FROM s
)
SELECT _i, _line,
  CASE WHEN sip IS NULL OR dip IS NULL
    THEN 'no source and destination address: not a connection event' END AS _skip,
  CASE
    WHEN coalesce(t_start, t_rt, t_gen) IS NULL THEN 'missing time'
    WHEN ts IS NULL THEN 'bad time: ' || coalesce(t_start, t_rt, t_gen)
    WHEN NOT sip_ok THEN 'bad source address: ' || sip_raw
    WHEN NOT dip_ok THEN 'bad destination address: ' || dip_raw
    WHEN sport_raw IS NOT NULL AND sport IS NULL THEN 'bad source port: ' || sport_raw
    WHEN dport_raw IS NOT NULL AND dport IS NULL THEN 'bad destination port: ' || dport_raw
  END AS _reject,
  ts,
  CASE WHEN ts_end >= ts_start THEN epoch(ts_end) - epoch(ts_start) END AS duration,
  sip AS src_ip, dip AS dst_ip, sport AS src_port, dport AS dst_port, proto,
  CASE WHEN app IN ('https', 'tls', 'ssl') THEN 'ssl' ELSE app END AS service,
  bytes_out, bytes_in,
  CASE
    WHEN regexp_matches(verdict, '{allow}')
      THEN CASE WHEN coalesce(bytes_in, bytes_out) = 0 THEN 'attempted' ELSE 'established' END
    WHEN regexp_matches(verdict, '{deny}') THEN 'rejected'
    ELSE 'other'
  END AS state,
  action, host,
  CASE WHEN domain IS NOT NULL AND account IS NOT NULL THEN domain || '\\' || account ELSE account END AS user,
  process, pid, server_name,
  '{source}' AS source,
  CASE WHEN ext IS NOT NULL THEN coalesce(device, '') || ':' || ext END AS uid
FROM m
"""


TIMES = ("StartTime", "ReceiptTime", "TimeGenerated", "_time", "EndTime")


def conn_sql(source_id: str) -> str:
    """The mapping from CommonSecurityLog columns (registered as `r` with the columns `map_rows` has
    `tabular.apply_mapping` derive: `<time>__ts`, `<url>__host`, `<address>__ip` / `__ip_ok`) to
    canonical conn rows."""
    return _SQL.replace("{allow}", _ALLOW).replace("{deny}", _DENY).replace("{source}", source_id)


def map_rows(con: duckdb.DuckDBPyConnection, rows: tabular.Rows, source_id: str, path: Path, ctx: ReadContext,
             tally: tabular.Tally) -> pa.Table:
    """CommonSecurityLog-named rows -> canonical conn rows (rejects and skips reported)."""
    return tabular.apply_mapping(con, rows, conn_sql(source_id), ctx, tally, times=TIMES,
                                 zone="DeviceTimeZone", ref=tabular.file_time(path),
                                 hosts=("RequestURL", "DestinationHostName"), addresses=("SourceIP", "DestinationIP"))


class CommonSecurityLogSource(Source):
    id = "commonsecuritylog"
    description = "Microsoft Sentinel CommonSecurityLog export (CSV / JSON)"
    tables = ("conn",)

    def sniff(self, head: bytes, path: Path) -> int:
        cols = tabular.head_columns(head)
        if not {"DeviceVendor", "DeviceProduct"} <= cols:
            return 0
        if {"SourceIP", "DestinationIP"} & cols:
            return 95
        return 40

    def read(self, path: Path, ctx: ReadContext) -> Iterator[Batch]:
        con = tabular.connect()
        tally = tabular.Tally()
        try:
            for rows in tabular.read_rows(path, ctx, FIELDS, REQUIRED):
                table = map_rows(con, rows, self.id, path, ctx, tally)
                if table.num_rows:
                    yield Batch("conn", table)
        finally:
            tally.flush(ctx)
            con.close()
