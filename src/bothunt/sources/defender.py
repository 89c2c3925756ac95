"""Microsoft Defender for Endpoint DeviceNetworkEvents: Advanced Hunting exports (CSV, JSON array or
JSON lines of flat records, API responses `{"Results": [...]}`), the Sentinel copy of the table
(`TimeGenerated` for `Timestamp`) and streamed records (`{"records": [{"time", "category",
"properties": {...}}]}` from Event Hub, or one `{"properties": {...}}` a line from a storage account).

Column names are Microsoft's published schema. Mapping decisions:
- ts = Timestamp (the streamed envelope's `time` when the record has none); host = DeviceName.
- Outbound events (ConnectionSuccess, ConnectionFailed, ConnectionAttempt, ConnectionRequest,
  ConnectionFound, ConnectionAcknowledged, ...): src = LocalIP:LocalPort, dst = RemoteIP:RemotePort;
  direction stays null so the pipeline decides it from the configured internal networks.
- InboundConnectionAccepted: the remote side opened the connection, so src = RemoteIP:RemotePort,
  dst = LocalIP:LocalPort, direction = "inbound", and process / user are the listener's.
- state: ConnectionSuccess, ConnectionAcknowledged, InboundConnectionAccepted -> established;
  ConnectionFailed -> rejected; ConnectionAttempt, ConnectionRequest -> attempted; else other.
  action = ActionType as given.
- proto from Protocol (Tcp, TcpV4, TcpV6 -> tcp; Udp... -> udp; Icmp... -> icmp).
- process = InitiatingProcessFileName (case kept), pid = InitiatingProcessId, cmdline =
  InitiatingProcessCommandLine exactly as written (trailing blanks too), user =
  InitiatingProcessAccountDomain\\InitiatingProcessAccountName (the name alone when no domain).
- server_name = the host of RemoteUrl, lower-case, without scheme, path, port or trailing dot (null
  when empty or an IP literal). remote_ip_type = RemoteIPType as Defender wrote it.
- Addresses are lower-case, and IPv4-mapped IPv6 (`::ffff:10.1.2.3`, common in LocalIP of dual-stack
  sockets) becomes the IPv4 address, so one host has one address across sources.
- uid = DeviceId:ReportId (ReportId repeats across devices; DeviceName when there is no DeviceId).

Skipped (counted, not rejected): ListeningConnectionCreated (a socket opened for listening, not a
connection); the network-protection inspection records (*ConnectionInspected,
NetworkSignatureInspected), which describe a connection Defender already records as a connection
event, so keeping them would count each connection twice; events of other tables in a mixed export
or stream (no address at all and not a connection ActionType, or a streamed `category` of another
table).

Rejected: records without a parsable Timestamp, ActionType, RemoteIP or LocalIP, with an address that
is not one, or a port outside 0..65535. A CSV whose header lacks Timestamp, ActionType, LocalIP,
RemoteIP or RemotePort is not a DeviceNetworkEvents export: InputError.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bothunt.sources import tabular
from bothunt.sources.base import Batch, ReadContext, Source

FIELDS: dict[str, tuple[str, ...]] = {
    "Timestamp": ("Timestamp", "TimeGenerated"),
    "DeviceId": ("DeviceId",),
    "DeviceName": ("DeviceName",),
    "ActionType": ("ActionType",),
    "RemoteIP": ("RemoteIP",),
    "RemotePort": ("RemotePort",),
    "RemoteUrl": ("RemoteUrl",),
    "LocalIP": ("LocalIP",),
    "LocalPort": ("LocalPort",),
    "Protocol": ("Protocol",),
    "RemoteIPType": ("RemoteIPType",),
    "InitiatingProcessFileName": ("InitiatingProcessFileName",),
    "InitiatingProcessId": ("InitiatingProcessId",),
    "InitiatingProcessCommandLine": ("InitiatingProcessCommandLine",),
    "InitiatingProcessAccountName": ("InitiatingProcessAccountName",),
    "InitiatingProcessAccountDomain": ("InitiatingProcessAccountDomain",),
    "ReportId": ("ReportId",),
}
REQUIRED = ("Timestamp", "ActionType", "LocalIP", "RemoteIP", "RemotePort")

# Columns only DeviceNetworkEvents has together; used to recognise an export by its content.
_SIGNATURE = ("ActionType", "RemoteIP", "RemotePort", "LocalIP")
_DEVICE = ("DeviceName", "DeviceId")

_SQL = """
WITH s AS (
  SELECT _i, _line,
    coalesce(bh_str(Timestamp), bh_str(_time)) AS t_raw, coalesce(Timestamp__ts, _time__ts) AS ts,
    bh_str(ActionType) AS action, bh_str(_category) AS category,
    bh_str(RemoteIP) AS rip_raw, bh_ip(bh_str(RemoteIP)) AS rip,
    bh_str(LocalIP) AS lip_raw, bh_ip(bh_str(LocalIP)) AS lip,
    bh_str(RemotePort) AS rport_raw, bh_port(bh_str(RemotePort)) AS rport,
    bh_str(LocalPort) AS lport_raw, bh_port(bh_str(LocalPort)) AS lport,
    bh_str(InitiatingProcessAccountName) AS account, bh_str(InitiatingProcessAccountDomain) AS domain,
    bh_str(ReportId) AS report, coalesce(bh_str(DeviceId), bh_str(DeviceName)) AS device,
    bh_str(DeviceName) AS host, bh_proto(bh_str(Protocol)) AS proto,
    bh_str(InitiatingProcessFileName) AS process, bh_count(bh_str(InitiatingProcessId)) AS pid,
    bh_str(InitiatingProcessCommandLine) AS cmdline, RemoteUrl__host AS server_name,
    bh_str(RemoteIPType) AS remote_ip_type
  FROM r
), m AS (
  SELECT *, coalesce(action = 'InboundConnectionAccepted', false) AS inbound
  FROM s
)
SELECT _i, _line,
  CASE
    WHEN category IS NOT NULL AND NOT ends_with(lower(category), 'devicenetworkevents')
      THEN 'streamed records of another table (' || category || ')'
    WHEN action = 'ListeningConnectionCreated'
      THEN 'ListeningConnectionCreated: a socket opened for listening, not a connection'
    WHEN ends_with(action, 'Inspected')
      THEN action || ': protocol inspection of a connection already recorded as a connection event'
    WHEN rip IS NULL AND lip IS NULL AND action NOT LIKE '%Connection%'
      THEN 'ActionType ' || action || ': not a network connection event'
  END AS _skip,
  CASE
    WHEN t_raw IS NULL THEN 'missing Timestamp'
    WHEN ts IS NULL THEN 'bad Timestamp: ' || t_raw
    WHEN action IS NULL THEN 'missing ActionType'
    WHEN rip IS NULL THEN 'missing RemoteIP'
    WHEN NOT bh_ip_ok(rip) THEN 'bad RemoteIP: ' || rip_raw
    WHEN lip IS NULL THEN 'missing LocalIP'
    WHEN NOT bh_ip_ok(lip) THEN 'bad LocalIP: ' || lip_raw
    WHEN rport_raw IS NOT NULL AND rport IS NULL THEN 'bad RemotePort: ' || rport_raw
    WHEN lport_raw IS NOT NULL AND lport IS NULL THEN 'bad LocalPort: ' || lport_raw
  END AS _reject,
  ts,
  CASE WHEN inbound THEN rip ELSE lip END AS src_ip,
  CASE WHEN inbound THEN lip ELSE rip END AS dst_ip,
  CASE WHEN inbound THEN rport ELSE lport END AS src_port,
  CASE WHEN inbound THEN lport ELSE rport END AS dst_port,
  proto,
  CASE WHEN inbound THEN 'inbound' END AS direction,
  CASE
    WHEN action IN ('ConnectionSuccess', 'ConnectionAcknowledged', 'InboundConnectionAccepted') THEN 'established'
    WHEN action = 'ConnectionFailed' THEN 'rejected'
    WHEN action IN ('ConnectionAttempt', 'ConnectionRequest') THEN 'attempted'
    ELSE 'other'
  END AS state,
  action, host,
  CASE WHEN domain IS NOT NULL AND account IS NOT NULL THEN domain || '\\' || account ELSE account END AS user,
  process, pid, cmdline, server_name, remote_ip_type,
  'defender' AS source,
  CASE WHEN report IS NOT NULL THEN coalesce(device, '') || ':' || report END AS uid
FROM m
"""


class DefenderSource(Source):
    id = "defender"
    description = "Microsoft Defender for Endpoint DeviceNetworkEvents (CSV / JSON export or stream)"
    tables = ("conn",)

    def sniff(self, head: bytes, path: Path) -> int:
        cols = tabular.head_columns(head)
        if not all(c in cols for c in _SIGNATURE):
            return 0
        if b"AdvancedHunting-DeviceNetworkEvents" in head:
            return 100
        return 95 if any(c in cols for c in _DEVICE) else 70

    def read(self, path: Path, ctx: ReadContext) -> Iterator[Batch]:
        con = tabular.connect()
        tally = tabular.Tally()
        try:
            for rows in tabular.read_rows(path, ctx, FIELDS, REQUIRED):
                table = tabular.apply_mapping(con, rows, _SQL, ctx, tally, times=("Timestamp", "_time"),
                                               hosts=("RemoteUrl",), verbatim=("InitiatingProcessCommandLine",))
                if table.num_rows:
                    yield Batch("conn", table)
        finally:
            tally.flush(ctx)
            con.close()
