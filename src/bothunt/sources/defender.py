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

DNS: network protection's inspection writes each DNS transaction it sees as a DnsConnectionInspected
row whose AdditionalFields holds Zeek's dns.log fields, every value a string (`answers` and `TTLs` are
JSON arrays written as strings; `ts` is a FILETIME and is not used). AdditionalFields arrives as a JSON
object, as a JSON string holding one (streams carry both), or as JSON text in a CSV cell; all three read
the same. These rows go to the `dns` table, never to `conn`:
- ts = Timestamp; src_ip = the client, dst_ip = the server: direction "Out" (the device asked) gives
  LocalIP -> RemoteIP, "In" (the device answered, as a DNS server) gives RemoteIP -> LocalIP; without a
  direction, a LocalPort of 53 facing another port means "In".
- host = DeviceName for "Out"; null for "In", because the named device is then the server, and the
  DNS detections take host as the name of the device that asked.
- query lower-case without a trailing dot (as the Zeek source); qtype = qtype_name (else qtype),
  rcode = rcode_name (else rcode); answers -> list<string>, TTLs -> list<float64>, null when absent.
- uid = DeviceId:ReportId as for connections (the inspection's own Zeek `uid` is not kept).

Skipped (counted, not rejected): ListeningConnectionCreated (a socket opened for listening, not a
connection); the other network-protection inspection records (Http/Ssl/Icmp/Ssh/Ntlm...
ConnectionInspected, NetworkSignatureInspected), which describe a connection Defender already records
as a connection event, so keeping them would count each connection twice; DnsConnectionInspected rows
without AdditionalFields or without a `query` in it (nothing to hunt on); events of other tables in a
mixed export or stream (no address at all and not a connection ActionType, or a streamed `category` of
another table).

Rejected: records without a parsable Timestamp, ActionType, RemoteIP or LocalIP, with an address that
is not one, or a port outside 0..65535; DnsConnectionInspected rows whose AdditionalFields is not a
JSON object, or whose `answers` / `TTLs` is not a JSON array (of numbers, for TTLs). A CSV whose header
lacks Timestamp, ActionType, LocalIP, RemoteIP or RemotePort is not a DeviceNetworkEvents export:
InputError.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc

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
    "AdditionalFields": ("AdditionalFields",),
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
    bh_str(RemoteIP) AS rip_raw, RemoteIP__ip AS rip, RemoteIP__ip_ok AS rip_ok,
    bh_str(LocalIP) AS lip_raw, LocalIP__ip AS lip, LocalIP__ip_ok AS lip_ok,
    bh_str(RemotePort) AS rport_raw, bh_port(bh_str(RemotePort)) AS rport,
    bh_str(LocalPort) AS lport_raw, bh_port(bh_str(LocalPort)) AS lport,
    bh_str(InitiatingProcessAccountName) AS account, bh_str(InitiatingProcessAccountDomain) AS domain,
    bh_str(ReportId) AS report, coalesce(bh_str(DeviceId), bh_str(DeviceName)) AS device,
    bh_str(DeviceName) AS host, bh_proto(bh_str(Protocol)) AS proto,
    bh_str(InitiatingProcessFileName) AS process, bh_count(bh_str(InitiatingProcessId)) AS pid,
    bh_str(InitiatingProcessCommandLine) AS cmdline, RemoteUrl__host AS server_name,
    bh_str(RemoteIPType) AS remote_ip_type, bh_str(AdditionalFields) AS af_raw
  FROM r
), m AS (
  SELECT *, coalesce(action = 'InboundConnectionAccepted', false) AS inbound,
    coalesce(action = 'DnsConnectionInspected', false) AS dns
  FROM s
), d AS (  -- AdditionalFields is parsed for DNS rows only; af[i] is the value at the i-th path
  SELECT *, CASE WHEN dns THEN bh_json_object(af_raw,
    ['$.direction', '$.query', '$.qtype', '$.qtype_name', '$.rcode', '$.rcode_name', '$.answers', '$.TTLs']) END AS af
  FROM m
), q AS (
  SELECT *, bh_str(af[2]) AS q_raw, lower(bh_str(af[2])) AS q_low, bh_str(af[7]) AS ans_raw,
    bh_str(af[8]) AS ttl_raw, coalesce(bh_str(af[4]), bh_str(af[3])) AS qtype,
    coalesce(bh_str(af[6]), bh_str(af[5])) AS rcode,
    CASE lower(af[1]) WHEN 'in' THEN true WHEN 'out' THEN false
      ELSE coalesce(lport = 53 AND rport IS DISTINCT FROM 53, false) END AS answered
  FROM d
), l AS (
  SELECT *,
    bh_json_array(ans_raw, '["VARCHAR"]') AS answers, bh_json_array(ttl_raw, '["DOUBLE"]') AS ttls,
    dns AND answered AS dns_in
  FROM q
)
SELECT _i, _line,
  CASE
    WHEN category IS NOT NULL AND NOT ends_with(lower(category), 'devicenetworkevents')
      THEN 'streamed records of another table (' || category || ')'
    WHEN action = 'ListeningConnectionCreated'
      THEN 'ListeningConnectionCreated: a socket opened for listening, not a connection'
    WHEN ends_with(action, 'Inspected') AND NOT dns
      THEN action || ': protocol inspection of a connection already recorded as a connection event'
    WHEN dns AND af_raw IS NULL
      THEN 'DnsConnectionInspected without AdditionalFields: no query to read'
    WHEN dns AND af IS NOT NULL AND q_raw IS NULL
      THEN 'DnsConnectionInspected without a query in AdditionalFields'
    WHEN rip IS NULL AND lip IS NULL AND action NOT LIKE '%Connection%'
      THEN 'ActionType ' || action || ': not a network connection event'
  END AS _skip,
  CASE
    WHEN t_raw IS NULL THEN 'missing Timestamp'
    WHEN ts IS NULL THEN 'bad Timestamp: ' || t_raw
    WHEN action IS NULL THEN 'missing ActionType'
    WHEN rip IS NULL THEN 'missing RemoteIP'
    WHEN NOT rip_ok THEN 'bad RemoteIP: ' || rip_raw
    WHEN lip IS NULL THEN 'missing LocalIP'
    WHEN NOT lip_ok THEN 'bad LocalIP: ' || lip_raw
    WHEN rport_raw IS NOT NULL AND rport IS NULL THEN 'bad RemotePort: ' || rport_raw
    WHEN lport_raw IS NOT NULL AND lport IS NULL THEN 'bad LocalPort: ' || lport_raw
    WHEN dns AND af IS NULL THEN 'bad AdditionalFields: not a JSON object'
    WHEN dns AND ans_raw IS NOT NULL AND (answers IS NULL OR list_count(answers) < len(answers))
      THEN 'bad answers in AdditionalFields: ' || left(ans_raw, 200)
    WHEN dns AND ttl_raw IS NOT NULL AND (ttls IS NULL OR list_count(ttls) < len(ttls))
      THEN 'bad TTLs in AdditionalFields: ' || left(ttl_raw, 200)
  END AS _reject,
  dns AS _dns,
  ts,
  CASE WHEN inbound OR dns_in THEN rip ELSE lip END AS src_ip,
  CASE WHEN inbound OR dns_in THEN lip ELSE rip END AS dst_ip,
  CASE WHEN inbound OR dns_in THEN rport ELSE lport END AS src_port,
  CASE WHEN inbound OR dns_in THEN lport ELSE rport END AS dst_port,
  proto,
  CASE WHEN inbound THEN 'inbound' END AS direction,
  CASE
    WHEN action IN ('ConnectionSuccess', 'ConnectionAcknowledged', 'InboundConnectionAccepted') THEN 'established'
    WHEN action = 'ConnectionFailed' THEN 'rejected'
    WHEN action IN ('ConnectionAttempt', 'ConnectionRequest') THEN 'attempted'
    ELSE 'other'
  END AS state,
  action,
  CASE WHEN NOT dns_in THEN host END AS host,
  CASE WHEN domain IS NOT NULL AND account IS NOT NULL THEN domain || '\\' || account ELSE account END AS user,
  process, pid, cmdline, server_name, remote_ip_type,
  CASE WHEN ends_with(q_low, '.') THEN left(q_low, -1) ELSE q_low END AS query,
  qtype, rcode,
  answers, ttls,
  'defender' AS source,
  CASE WHEN report IS NOT NULL THEN coalesce(device, '') || ':' || report END AS uid
FROM l
"""
_CONN_COLUMNS = ["ts", "src_ip", "dst_ip", "src_port", "dst_port", "proto", "direction", "state", "action", "host",
                 "user", "process", "pid", "cmdline", "server_name", "remote_ip_type", "source", "uid"]
_DNS_COLUMNS = ["ts", "src_ip", "host", "dst_ip", "query", "qtype", "rcode", "answers", "ttls", "source", "uid"]


class DefenderSource(Source):
    id = "defender"
    description = "Microsoft Defender for Endpoint DeviceNetworkEvents (CSV / JSON export or stream)"
    tables = ("conn", "dns")

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
                                               hosts=("RemoteUrl",), verbatim=("InitiatingProcessCommandLine",),
                                               addresses=("RemoteIP", "LocalIP"))
                is_dns = table["_dns"].combine_chunks()
                conn = table.select(_CONN_COLUMNS)  # before filtering, so unused columns are not copied
                conn = conn.filter(pc.invert(is_dns)) if is_dns.true_count else conn
                if conn.num_rows:
                    yield Batch("conn", conn)
                if is_dns.true_count:
                    yield Batch("dns", table.select(_DNS_COLUMNS).filter(is_dns))
        finally:
            tally.flush(ctx)
            con.close()
