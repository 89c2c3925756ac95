"""Inbound floods, credential stuffing and spam runs from many sources, their low-and-slow variants, and
single sources hammering or sweeping a service.

The published Sentinel rule counts, per destination and port per 5-minute bin of the last hour, distinct
sources > 50 and requests > 500 among connections the firewall did not deny. It cannot see a service
that is always that busy (it fires every bin), a campaign that stays under 500 per bin, or one the
firewall blocked. This detection instead compares every service's bins with that service's own trailing
history (median / MAD), keeps the published numbers as floors for a service without history, merges
anomalous bins into campaigns, finds low-and-slow campaigns on authentication ports over hours, counts
denied traffic as evidence, and reports single sources that hammer one host or sweep many.
`profile: sentinel-kql` reproduces the published rule instead (see flood_kql.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from bothunt.config import Settings
from bothunt.detections import flood_campaigns, flood_kql, flood_report, flood_single
from bothunt.detections.base import DetectionInfo, param
from bothunt.detections.flood_queries import annotate, materialized, span
from bothunt.engine import Tables
from bothunt.schema import Finding

ID = "inbound_flood"

INFO = DetectionInfo(
    id=ID,
    title="Inbound flood, credential stuffing or spam from a botnet",
    techniques=("T1583.005", "T1498", "T1499", "T1499.002", "T1110.004", "T1110.003", "T1110.001",
                "T1566", "T1595.001"),
    summary=("Many distinct Internet sources hitting one internal service well above that service's own "
             "history (HTTP floods, credential stuffing, spam runs), the same spread thin over hours on "
             "authentication ports (low-and-slow), and single sources brute-forcing one host or sweeping "
             "many hosts on one port. Consecutive anomalous 5-minute bins become one campaign with its "
             "start, end, peak, outcome mix and top sources."),
    false_positives=(
        "A legitimate surge (a product launch, a news mention): many new sources, but each behaves like a "
        "normal visitor; such campaigns score low and say so (attempts per source close to the baseline, "
        "no failures).",
        "Load tests and external monitoring (uptime checkers, vulnerability scanners you hired): allow-list "
        "their addresses (allowlist.cidrs).",
        "A service that moved to a new address has no history there: the first hours are judged by the "
        "floors (the published thresholds) only.",
        "Mail servers receive from many sources all day; only a rise over the server's own history counts.",
    ),
    triage=(
        "Check the outcome mix: accepted sessions on an authentication port during stuffing mean some "
        "attempts reached the login; look for successful logins from the top sources in the service's logs.",
        "Compare attempts per source with the baseline: bots usually send far more per source than visitors.",
        "For low-and-slow campaigns, the sources' attempts are few each; block by reputation or rate-limit "
        "the login, not by single address.",
        "A sweep from one address of many hosts on one port is reconnaissance for brute force: check whether "
        "any swept host answered.",
    ),
    references=(
        "https://attack.mitre.org/techniques/T1583/005/",
        "https://attack.mitre.org/techniques/T1110/004/",
        "https://attack.mitre.org/techniques/T1499/002/",
    ),
)


@dataclass(frozen=True)
class Params:
    bin_minutes: int = param(5, "Width of a bin in minutes (the published rule uses 5).")
    baseline_hours: float = param(24.0, "Trailing history a 5-minute bin is compared with.")
    min_history_hours: float = param(1.0, "Less history than this and a bin is judged by the floors only.")
    deviation: float = param(6.0, "How many robust deviations (1.4826 x MAD, at least sqrt(median)) above "
                                  "the trailing median a bin must be.")
    min_ratio: float = param(2.0, "A bin must also be at least this many times the trailing median.")
    min_sources: int = param(20, "Distinct sources a bin needs before it can be part of a distributed "
                                 "campaign, with or without history.")
    min_requests: int = param(200, "Connections a bin needs before it can be part of a distributed campaign.")
    floor_sources: int = param(50, "Without history: distinct sources a bin must exceed (published rule: 50).")
    floor_requests: int = param(500, "Without history: connections a bin must exceed (published rule: 500).")
    merge_gap_bins: int = param(1, "Quiet bins allowed inside one campaign before it is split in two.")
    short_session_seconds: float = param(10.0, "An accepted session shorter than this counts as a suspect "
                                               "login attempt (an SSH or RDP guess lasts seconds).")
    short_session_bytes: int = param(10_000, "Where the sensor has no duration (CEF): an accepted session "
                                             "with fewer bytes (both ways) than this counts as suspect.")
    slow_hours: float = param(1.0, "Bin width (hours) for low-and-slow campaigns on authentication ports.")
    slow_baseline_hours: float = param(168.0, "Trailing history an hourly bin is compared with.")
    slow_min_history_hours: float = param(24.0, "Less history than this and an hour is judged by floors.")
    slow_min_sources_per_hour: int = param(4, "Distinct sources an hour needs to count towards a "
                                              "low-and-slow campaign.")
    slow_max_attempts_per_source: float = param(6.0, "Mean attempts per source in an hour above which the "
                                                     "hour is not 'slow' (heavy sources are single-source "
                                                     "findings).")
    slow_min_suspect_share: float = param(0.5, "Without history, on a login port: share of failed or short "
                                               "attempts that flags an hour even at the service's usual "
                                               "level (logins of real users are long sessions).")
    slow_min_hours: int = param(3, "Flagged hours a low-and-slow campaign needs.")
    slow_merge_gap_hours: int = param(2, "Quiet hours allowed inside one low-and-slow campaign.")
    slow_min_sources: int = param(20, "Distinct sources a low-and-slow campaign needs in total.")
    single_min_attempts: int = param(20, "Attempts from one source on one host and port before it is a "
                                         "brute force or hammering candidate.")
    single_min_peak_auth: int = param(10, "On an authentication port: attempts in one bin from one source "
                                          "against one host that count as brute force even when sessions were "
                                          "accepted.")
    single_min_peak: int = param(60, "On other ports: attempts in one bin from one source against one host "
                                     "that count as hammering when most were accepted.")
    sweep_min_hosts: int = param(10, "Hosts one source must touch on one port within one sweep window to be a "
                                     "sweep.")
    sweep_window_minutes: float = param(60.0, "Window for sweep_min_hosts: a crawler visiting ten of your "
                                              "sites over two days is not a sweep.")
    sweep_max_per_host: float = param(3.0, "Mean attempts per host above which many hosts are not a sweep "
                                           "(a monitoring service polls each host all day).")
    scan_min_ports: int = param(25, "Distinct ports one source must touch on one host to be a port scan.")
    top_sources: int = param(10, "How many top sources a finding lists with their share.")
    max_bins_listed: int = param(72, "How many bins a finding lists in its evidence.")
    kql_sources: tuple[str, ...] = param(("cef", "commonsecuritylog"), "sentinel-kql profile: the source "
                                         "formats that stand for CommonSecurityLog (empty: every source).")
    kql_window_minutes: int = param(60, "sentinel-kql profile: the look-back before the end of the data "
                                        "(or --until); the published rule reads the last hour.")
    kql_denied_actions: tuple[str, ...] = param(("deny", "drop", "block", "denied", "dropped", "blocked",
                                                 "reject"), "sentinel-kql profile: DeviceAction words the "
                                                "rule drops (compared in lower case).")


def detect(tables: Tables, settings: Settings) -> list[Finding]:
    p = settings.params(Params, ID)
    if settings.profile == "sentinel-kql":
        return flood_kql.detect(tables, settings, p)
    with materialized(tables, annotate(tables.conn, p.bin_minutes * 60, p.short_session_seconds,
                                       p.short_session_bytes)) as inb:
        lo, hi = span(tables, inb)
        if lo is None or hi is None:
            return []
        campaigns = flood_campaigns.find(tables, inb, p, lo, hi)
        sources = flood_report.source_rows(tables, inb, campaigns)
        findings = flood_report.findings(campaigns, sources, p, settings)
        findings += flood_single.findings(tables, inb, campaigns, sources, p, settings)
        findings += flood_single.scan_findings(tables, inb, p, settings)
    return findings
