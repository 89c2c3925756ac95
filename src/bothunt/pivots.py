"""Pivot queries per finding: the KQL a Sentinel / Defender user pastes to see the events behind it, and
the SQL that reads the same events from the bothunt workspace with DuckDB.

Every value taken from a finding goes through `kql_str` / `sql_str` (string literals), `_port` /
`_seconds` (numbers) or `kql_time` / `sql_time` (parsed datetimes, re-formatted), so a domain, host name
or command line an attacker chose can only ever be the content of a literal: it cannot end the literal,
start a comment or add a clause.
Comments carry only the finding id and detection, stripped to `[A-Za-z0-9_.-]`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bothunt.hostview import parse_time
from bothunt.schema import Finding

PAD = timedelta(hours=1)
MAX_LIST = 10
DEFENDER = "Microsoft Defender XDR / Sentinel (advanced hunting)"
SENTINEL = "Microsoft Sentinel (Log Analytics)"
WORKSPACE = "bothunt workspace (DuckDB)"
_KQL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}
_SAFE_COMMENT = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Pivot:
    title: str
    platform: str
    language: str  # "kql" or "sql"
    query: str


def _clean(ch: str) -> str:
    """Characters a literal cannot carry (other control characters, bidi and line/paragraph separators,
    which can reorder how a pasted query reads) become U+FFFD: such a query can only miss, never break out."""
    return "\ufffd" if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch


def kql_str(value: Any) -> str:
    """A KQL double-quoted string literal holding exactly `value`."""
    return '"' + "".join(_KQL_ESCAPES.get(ch) or _clean(ch) for ch in str(value)) + '"'


def sql_str(value: Any) -> str:
    """A standard SQL (DuckDB) single-quoted literal: quotes doubled, backslash has no meaning."""
    return "'" + "".join("''" if ch == "'" else ch if ch in "\n\t" else _clean(ch) for ch in str(value)) + "'"


def kql_list(values: list[Any]) -> str:
    return "(" + ", ".join(kql_str(v) for v in values[:MAX_LIST]) + ")"


def sql_list(values: list[Any]) -> str:
    return "(" + ", ".join(sql_str(v) for v in values[:MAX_LIST]) + ")"


def _comment(f: Finding, prefix: str, what: str) -> str:
    det = _SAFE_COMMENT.sub("", f.detection)[:40]
    fid = _SAFE_COMMENT.sub("", f.id)[:40]
    return f"{prefix} bothunt {det} finding {fid}: {what}"


def _port(value: Any) -> int | None:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return None
    return port if 0 <= port <= 65535 else None


def _seconds(value: Any, default: float) -> float:
    """A number of seconds from evidence (a window or bin width), within 0.1 s .. 1 day."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return default
    return min(max(x, 0.1), 86400.0) if x == x else default


def _window(f: Finding) -> tuple[datetime, datetime] | None:
    lo, hi = parse_time(f.first_seen), parse_time(f.last_seen)
    if lo is None and hi is None:
        return None
    lo, hi = lo or hi, hi or lo
    return (lo - PAD).astimezone(UTC), (hi + PAD).astimezone(UTC)  # type: ignore[operator]


def kql_time(f: Finding, column: str = "Timestamp") -> str:
    w = _window(f)
    if w is None:
        return f"| where {column} > ago(30d)"
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return f"| where {column} between (datetime({w[0].strftime(fmt)}) .. datetime({w[1].strftime(fmt)}))"


def sql_time(f: Finding) -> str:
    w = _window(f)
    if w is None:
        return "TRUE"
    fmt = "%Y-%m-%d %H:%M:%S+00"
    return f"ts BETWEEN TIMESTAMPTZ '{w[0].strftime(fmt)}' AND TIMESTAMPTZ '{w[1].strftime(fmt)}'"


def source(workspace: str | None, table: str) -> str:
    root = (workspace or "WS").rstrip("/")
    return f"read_parquet({sql_str(f'{root}/{table}/*/*.parquet')}, union_by_name = true)"


# -- entity filters --------------------------------------------------------------------------------


def kql_device(f: Finding) -> str | None:
    """Defender's DeviceName is often the FQDN; match the bare name and its FQDNs."""
    if f.host:
        return f"| where DeviceName =~ {kql_str(f.host)} or DeviceName startswith {kql_str(f.host + '.')}"
    if f.src_ip:
        return f"| where LocalIP == {kql_str(f.src_ip)}"
    return None


def sql_device(f: Finding, ip_column: str = "src_ip") -> str:
    parts = []
    if f.host:
        parts.append(f"lower(host) = lower({sql_str(f.host)})")
    if f.src_ip:
        parts.append(f"{ip_column} = {sql_str(f.src_ip)}")
    return "(" + " OR ".join(parts) + ")" if parts else "TRUE"


def remote_ips(f: Finding) -> list[str]:
    ips = [x for x in (f.evidence.get("dst_ips") or []) if isinstance(x, str)]
    if f.dst_ip and f.dst_ip not in ips:
        ips.insert(0, f.dst_ip)
    return ips[:MAX_LIST]


def kql_remote(f: Finding) -> str | None:
    parts = []
    if f.domain:
        parts.append(f"RemoteUrl contains {kql_str(f.domain)}")
    ips = remote_ips(f)
    if ips:
        parts.append(f"RemoteIP in {kql_list(ips)}")
    return "| where " + " or ".join(parts) if parts else None


def sql_remote(f: Finding) -> str:
    parts = []
    if f.domain:
        parts.append(f"(server_name = {sql_str(f.domain)} OR ends_with(server_name, {sql_str('.' + f.domain)}))")
    ips = remote_ips(f)
    if ips:
        parts.append(f"dst_ip IN {sql_list(ips)}")
    return "(" + " OR ".join(parts) + ")" if parts else "TRUE"


def lines(*parts: str | None) -> str:
    return "\n".join(p for p in parts if p)


def pivots(f: Finding, workspace: str | None = None) -> list[Pivot]:
    """The pivot queries for one finding (the detection's own set, else the generic connection view)."""
    return BUILDERS.get(f.detection, generic)(f, workspace)


# -- per detection ---------------------------------------------------------------------------------

CONN_COLS = "ts, host, src_ip, process, cmdline, dst_ip, dst_port, server_name, bytes_out, bytes_in, state"


def beacon(f: Finding, ws: str | None) -> list[Pivot]:
    dev, rem = kql_device(f), kql_remote(f)
    proc = f"| where InitiatingProcessFileName =~ {kql_str(f.process)}" if f.process else None
    out = [Pivot("The pair's connections and the gap before each", DEFENDER, "kql", lines(
        _comment(f, "//", "connections of the pair"), "DeviceNetworkEvents", kql_time(f), dev, proc, rem,
        "| project Timestamp, DeviceName, InitiatingProcessFileName, InitiatingProcessCommandLine, "
        "InitiatingProcessAccountName, RemoteIP, RemotePort, RemoteUrl, ActionType",
        "| order by Timestamp asc",
        '| extend GapSeconds = datetime_diff("second", Timestamp, prev(Timestamp))'))]
    if rem:
        out.append(Pivot("Every device that contacts the destination", DEFENDER, "kql", lines(
            _comment(f, "//", "prevalence of the destination"), "DeviceNetworkEvents", kql_time(f), rem,
            "| summarize Connections = count(), First = min(Timestamp), Last = max(Timestamp), "
            "Processes = make_set(InitiatingProcessFileName, 10) by DeviceName",
            "| order by Connections desc")))
    if f.process and dev:
        out.append(Pivot("How the process started on the host", DEFENDER, "kql", lines(
            _comment(f, "//", "process launches"), "DeviceProcessEvents", "| where Timestamp > ago(30d)", dev,
            f"| where FileName =~ {kql_str(f.process)}",
            "| project Timestamp, DeviceName, FileName, FolderPath, ProcessCommandLine, SHA256, AccountName, "
            "InitiatingProcessFileName, InitiatingProcessCommandLine", "| order by Timestamp asc")))
    proc_sql = f"AND lower(process) = lower({sql_str(f.process)})" if f.process else None
    out.append(Pivot("The pair's connections and the gap before each", WORKSPACE, "sql", lines(
        _comment(f, "--", "connections of the pair"),
        f"SELECT {CONN_COLS},", "       epoch(ts) - epoch(lag(ts) OVER (ORDER BY ts)) AS gap_s",
        f"FROM {source(ws, 'conn')}", f"WHERE {sql_time(f)}", f"  AND {sql_device(f)}", proc_sql and "  " + proc_sql,
        f"  AND {sql_remote(f)}", "ORDER BY ts;")))
    out.append(Pivot("Every host that contacts the destination", WORKSPACE, "sql", lines(
        _comment(f, "--", "prevalence of the destination"),
        "SELECT coalesce(host, src_ip) AS who, count(*) AS connections, min(ts) AS first, max(ts) AS last,",
        "       list(DISTINCT process) AS processes", f"FROM {source(ws, 'conn')}",
        f"WHERE {sql_time(f)} AND {sql_remote(f)}", "GROUP BY ALL ORDER BY connections DESC;")))
    return out


def _width(seconds: int) -> str:
    return f"{seconds // 60}-minute" if seconds % 60 == 0 else f"{seconds}-second"


def _sources(f: Finding) -> list[str]:
    top = f.evidence.get("top_sources") or []
    ips = [t.get("ip") for t in top if isinstance(t, dict) and isinstance(t.get("ip"), str)]
    return ([f.src_ip] if f.src_ip else []) + ips


def inbound_flood(f: Finding, ws: str | None) -> list[Pivot]:
    port = _port(f.dst_port)
    bin_s = int(_seconds(f.evidence.get("bin_seconds"), 300.0)) or 300
    k_where = [f"DestinationIP == {kql_str(f.dst_ip)}" if f.dst_ip else None,
               f"DestinationPort == {port}" if port is not None else None,
               f"SourceIP == {kql_str(f.src_ip)}" if f.src_ip else None]
    k_filter = "| where " + " and ".join(w for w in k_where if w) if any(k_where) else None
    s_where = [f"dst_ip = {sql_str(f.dst_ip)}" if f.dst_ip else None,
               f"dst_port = {port}" if port is not None else None,
               f"src_ip = {sql_str(f.src_ip)}" if f.src_ip else None]
    s_filter = " AND ".join(["direction = 'inbound'", sql_time(f)] + [w for w in s_where if w])
    out = [
        Pivot(f"Attempts and sources per {_width(bin_s)} bin", SENTINEL, "kql", lines(
            _comment(f, "//", "campaign per bin"), "CommonSecurityLog", kql_time(f, "TimeGenerated"), k_filter,
            "| summarize Attempts = count(), Sources = dcount(SourceIP), "
            'Denied = countif(DeviceAction in~ ("deny", "drop", "block", "denied", "blocked")) '
            f"by bin(TimeGenerated, {bin_s}s)", "| order by TimeGenerated asc")),
        Pivot("The busiest sources", SENTINEL, "kql", lines(
            _comment(f, "//", "top sources"), "CommonSecurityLog", kql_time(f, "TimeGenerated"), k_filter,
            "| summarize Attempts = count(), Actions = make_set(DeviceAction, 5), First = min(TimeGenerated), "
            "Last = max(TimeGenerated) by SourceIP", "| top 50 by Attempts")),
    ]
    srcs = _sources(f)
    if srcs:
        out.append(Pivot("Successful logons from the campaign's sources", DEFENDER, "kql", lines(
            _comment(f, "//", "logons from the sources"), "DeviceLogonEvents", kql_time(f),
            f"| where RemoteIP in {kql_list(srcs)}", '| where ActionType == "LogonSuccess"',
            "| project Timestamp, DeviceName, AccountDomain, AccountName, LogonType, RemoteIP, Protocol")))
    out.append(Pivot(f"Attempts and sources per {_width(bin_s)} bin", WORKSPACE, "sql", lines(
        _comment(f, "--", "campaign per bin"),
        f"SELECT time_bucket(INTERVAL '{bin_s} seconds', ts) AS bin, count(*) AS attempts,",
        "       count(DISTINCT src_ip) AS sources, count(*) FILTER (WHERE state = 'established') AS accepted",
        f"FROM {source(ws, 'conn')}", f"WHERE {s_filter}", "GROUP BY bin ORDER BY bin;")))
    out.append(Pivot("The busiest sources and their outcomes", WORKSPACE, "sql", lines(
        _comment(f, "--", "top sources"),
        "SELECT src_ip, count(*) AS attempts, count(DISTINCT dst_ip) AS hosts,",
        "       count(*) FILTER (WHERE state = 'established') AS accepted, min(ts) AS first, max(ts) AS last",
        f"FROM {source(ws, 'conn')}", f"WHERE {s_filter}", "GROUP BY src_ip ORDER BY attempts DESC LIMIT 50;")))
    return out


def relay(f: Finding, ws: str | None) -> list[Pivot]:
    coincidence = f.evidence.get("coincidence")
    window = _seconds(coincidence.get("scale") if isinstance(coincidence, dict) else None, 5.0)
    dev = kql_device(f) or "| where false"
    kql = lines(
        _comment(f, "//", "inbound sessions paired with the outbound legs that followed"),
        "let inbound = DeviceNetworkEvents", kql_time(f), dev, '| where ActionType == "InboundConnectionAccepted"',
        "| project InTime = Timestamp, DeviceId, Operator = RemoteIP, LocalPort, "
        "InProcess = InitiatingProcessFileName;",
        "let outbound = DeviceNetworkEvents", kql_time(f), dev,
        '| where ActionType in ("ConnectionSuccess", "ConnectionAttempt") and RemoteIPType == "Public"',
        "| project OutTime = Timestamp, DeviceId, Target = RemoteIP, RemotePort, RemoteUrl, "
        "OutProcess = InitiatingProcessFileName;",
        "inbound | join kind=inner outbound on DeviceId",
        '| extend LagSeconds = datetime_diff("millisecond", OutTime, InTime) / 1000.0',
        f"| where LagSeconds between (0.0 .. {window:g}) and Target != Operator",
        "| project InTime, OutTime, LagSeconds, Operator, LocalPort, Target, RemotePort, RemoteUrl, InProcess, "
        "OutProcess", "| order by InTime asc")
    sql = lines(
        _comment(f, "--", "inbound sessions paired with the outbound legs that followed"),
        f"WITH c AS (SELECT * FROM {source(ws, 'conn')} WHERE {sql_time(f)}),",
        "inb AS (SELECT ts AS in_ts, src_ip AS operator, dst_port AS in_port, process AS in_process,",
        "               bytes_out + bytes_in AS in_bytes FROM c",
        f"        WHERE direction = 'inbound' AND state = 'established' AND {sql_device(f, 'dst_ip')}),",
        "outb AS (SELECT ts AS out_ts, dst_ip AS target, dst_port AS out_port, server_name, process AS out_process,",
        "                bytes_out + bytes_in AS out_bytes FROM c",
        f"         WHERE direction = 'outbound' AND {sql_device(f)})",
        "SELECT in_ts, out_ts, epoch(out_ts) - epoch(in_ts) AS lag_s, operator, in_port, target, out_port,",
        "       server_name, in_bytes, out_bytes, in_process, out_process",
        f"FROM inb JOIN outb ON out_ts BETWEEN in_ts AND in_ts + INTERVAL '{window:g} seconds'",
        "                  AND target <> operator", "ORDER BY in_ts, out_ts;")
    return [Pivot("Inbound sessions and the outbound legs that followed", DEFENDER, "kql", kql),
            Pivot("Inbound sessions and the outbound legs that followed", WORKSPACE, "sql", sql)]


def _dns_client(f: Finding, kql: bool) -> str:
    parts = []
    if f.src_ip:
        parts.append(f"ClientIP == {kql_str(f.src_ip)}" if kql else f"src_ip = {sql_str(f.src_ip)}")
    if f.host:
        parts.append(f"Computer =~ {kql_str(f.host)}" if kql else f"lower(host) = lower({sql_str(f.host)})")
    if not parts:
        return "" if kql else "TRUE"
    return ("| where " + " or ".join(parts)) if kql else "(" + " OR ".join(parts) + ")"


def dga(f: Finding, ws: str | None) -> list[Pivot]:
    names = [s.get("name") or s.get("domain") for s in f.evidence.get("sample_names") or [] if isinstance(s, dict)]
    names = [n for n in names if isinstance(n, str)][:MAX_LIST]
    out = [Pivot("Failed lookups of the host per minute", SENTINEL, "kql", lines(
        _comment(f, "//", "NXDOMAIN bursts"), "DnsEvents", kql_time(f, "TimeGenerated"), _dns_client(f, True),
        "| where ResultCode == 3",
        "| summarize Failed = count(), Names = dcount(Name), Sample = make_set(Name, 20) by bin(TimeGenerated, 1m)",
        "| order by TimeGenerated asc"))]
    dev = kql_device(f)
    if names and dev:
        out.append(Pivot("Connections of the host to any of the sample names", DEFENDER, "kql", lines(
            _comment(f, "//", "generated names contacted"), "DeviceNetworkEvents", kql_time(f), dev,
            f"| where RemoteUrl in~ {kql_list(names)}",
            "| project Timestamp, InitiatingProcessFileName, InitiatingProcessCommandLine, RemoteUrl, RemoteIP, "
            "RemotePort")))
    out.append(Pivot("Failed lookups of the host per minute", WORKSPACE, "sql", lines(
        _comment(f, "--", "NXDOMAIN bursts"),
        "SELECT time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS failed,",
        "       count(DISTINCT query) AS names, list(DISTINCT query)[1:20] AS sample",
        f"FROM {source(ws, 'dns')}", f"WHERE {sql_time(f)} AND {_dns_client(f, False)}",
        "  AND upper(rcode) IN ('NXDOMAIN', '3')", "GROUP BY minute ORDER BY minute;")))
    if names:
        out.append(Pivot("Who else looked up the sample names", WORKSPACE, "sql", lines(
            _comment(f, "--", "prevalence of the names"),
            "SELECT query, count(DISTINCT src_ip) AS hosts, count(*) AS lookups, list(DISTINCT rcode) AS rcodes",
            f"FROM {source(ws, 'dns')}", f"WHERE query IN {sql_list(names)}", "GROUP BY query ORDER BY hosts DESC;")))
    return out


def dns_c2(f: Finding, ws: str | None) -> list[Pivot]:
    dom = f.domain or ""
    kind = f.evidence.get("kind")
    k_name = f"| where Name =~ {kql_str(dom)} or Name endswith {kql_str('.' + dom)}" if dom else None
    s_name = f"(query = {sql_str(dom)} OR ends_with(query, {sql_str('.' + dom)}))" if dom else "TRUE"
    who = "" if kind == "fast_flux" else _dns_client(f, True)
    s_who = "TRUE" if kind == "fast_flux" else _dns_client(f, False)
    kql = lines(_comment(f, "//", f"lookups under the domain ({_SAFE_COMMENT.sub('', str(kind))})"), "DnsEvents",
                kql_time(f, "TimeGenerated"), who, k_name,
                "| extend Length = strlen(Name)",
                "| summarize Lookups = count(), Names = dcount(Name), MeanLength = avg(Length), "
                "Types = make_set(QueryType, 5), Answers = make_set(IPAddresses, 20) by ClientIP, "
                "bin(TimeGenerated, 10m)", "| order by TimeGenerated asc")
    sql = lines(_comment(f, "--", "lookups under the domain"),
                "SELECT ts, src_ip, host, query, qtype, rcode, length(query) AS length, answers, ttls",
                f"FROM {source(ws, 'dns')}", f"WHERE {sql_time(f)} AND {s_name} AND {s_who}", "ORDER BY ts;")
    return [Pivot("Lookups under the domain", SENTINEL, "kql", kql),
            Pivot("Lookups under the domain", WORKSPACE, "sql", sql)]


def generic(f: Finding, ws: str | None) -> list[Pivot]:
    dev = kql_device(f)
    out = []
    if dev:
        out.append(Pivot("The host's connections in the finding's window", DEFENDER, "kql", lines(
            _comment(f, "//", "connections of the host"), "DeviceNetworkEvents", kql_time(f), dev, kql_remote(f),
            "| project Timestamp, DeviceName, InitiatingProcessFileName, RemoteIP, RemotePort, RemoteUrl, "
            "ActionType", "| order by Timestamp asc")))
    out.append(Pivot("The host's connections in the finding's window", WORKSPACE, "sql", lines(
        _comment(f, "--", "connections of the host"), f"SELECT {CONN_COLS}", f"FROM {source(ws, 'conn')}",
        f"WHERE {sql_time(f)} AND {sql_device(f)} AND {sql_remote(f)}", "ORDER BY ts;")))
    return out


BUILDERS = {"beacon": beacon, "inbound_flood": inbound_flood, "relay": relay, "dga": dga, "dns_c2": dns_c2}
