"""C2 beaconing: an internal host (a process, where the telemetry names one) calls the same destination
at a regular rhythm, with jitter, missing beats and gaps.

The published Sentinel rule counts connections per process, remote IP and port (at least 12 over 30
minutes at 4-120 per hour, ports 80/443/53 and nine busy processes dropped) and grades by count: it
measures no rhythm, so any chatty pair fires, and C2 on 443 or inside an excluded process is never seen.
This detection keys pairs by entity (host + process, else host / address) and destination (the server
name when known, so CDN-fronted C2 with rotating addresses stays one pair; the real target for proxied
connections), reduces them in the engine to candidate pairs with their connection times
(beacon_query.py), and tests each pair's rhythm in numpy against random arrivals with the same count and
span (bothunt.periodicity, via beacon_refine.py): a shortest-half spread of log-intervals that missing
beats and gaps do not disturb, and a phase test for fixed-clock schedulers. The score is regularity times
confidence (a calibrated p-value), supported by byte-size regularity; fleet-wide rhythms, known services
and allow-list entries lower the severity and say so (beacon_report.py). The window is whatever the data
spans, so a 4-hour beacon over three days (18 check-ins) is testable. `profile: sentinel-kql` reproduces
the published rule instead (beacon_kql.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.config import Settings
from bothunt.detections import beacon_kql, beacon_query, beacon_refine, beacon_report
from bothunt.detections.base import DetectionInfo, param
from bothunt.engine import Tables
from bothunt.schema import Finding

ID = "beacon"

INFO = DetectionInfo(
    id=ID,
    title="C2 beaconing: an internal process calls one destination at a regular rhythm",
    techniques=("T1583.005", "T1071", "T1071.001", "T1573"),
    summary=("An internal host or process connects to the same destination over and over at a steady rhythm "
             "(with jitter, missed beats and gaps), far more regularly than random use would: the check-in "
             "loop of a bot or implant asking its command-and-control server for work. Failed attempts count: "
             "an implant retrying a dead server beacons too."),
    false_positives=(
        "OS, browser and productivity telemetry, update and licence checks: periodic by design and usually "
        "fleet-wide; a destination contacted periodically by a large share of hosts is reported once, at "
        "low, as a fleet service.",
        "Monitoring and APM agents (Datadog, New Relic, Dynatrace, ...) and time sync: matched by the known "
        "services list or `service_ports` and shown at info.",
        "Backup, sync, VPN and chat clients polling their servers; CDN heartbeats; load-balancer health "
        "checks. Allow-list their domains or processes (the finding names the entry that lowered it).",
    ),
    triage=(
        "Who: the process and command line. A signed system binary (svchost.exe, rundll32.exe) calling a "
        "rare domain is injection; an unknown binary in a user folder is an implant.",
        "Where: the destination name and its addresses. A young or odd domain, many rotating addresses behind "
        "one name (CDN fronting), or a bare address on an odd port.",
        "How regular: jitter under 20% and a tiny p-value over hundreds of check-ins is a program, not a "
        "person; a fixed-clock phase lock points to a scheduler.",
        "How many: one or two hosts is targeted; a fleet-wide rhythm is a service (or a worm).",
        "Failed share: many refused or unanswered attempts at a steady rhythm is an implant whose server is "
        "down or sinkholed.",
    ),
    references=(
        "https://attack.mitre.org/techniques/T1583/005/",
        "https://attack.mitre.org/techniques/T1071/001/",
        "https://github.com/activecm/rita (beacon scoring compared in docs/beacon.md)",
    ),
)

KQL_EXCLUDED_PROCESSES = ("svchost.exe", "Teams.exe", "chrome.exe", "msedge.exe", "firefox.exe",
                          "OneDrive.exe", "OUTLOOK.EXE", "MsSense.exe", "SenseNdr.exe")


@dataclass(frozen=True)
class Params:
    min_connections: int = param(6, "Check-ins (connections after merging bursts) a pair needs before its "
                                    "rhythm is tested: a 4-hour beacon needs a day of data, a 6-hour one 36 "
                                    "hours. Few check-ins can only reach a low confidence.")
    min_span_minutes: float = param(30.0, "Time from a pair's first to its last connection before it is tested.")
    burst_seconds: float = param(2.0, "Connections of a pair closer together than this are one check-in (a "
                                      "beacon that opens several connections per beat counts once).")
    min_period_seconds: float = param(5.0, "Shortest period reported: merging bursts leaves a pile-up of "
                                           "intervals just above burst_seconds in bursty traffic, not a rhythm.")
    max_p_value: float = param(1e-3, "Largest chance that random connections with the same count and span look "
                                     "this regular that is still reported.")
    min_regularity: float = param(0.3, "Smallest regularity reported: 1 - (spread of the middle half of "
                                       "log-intervals) / (that spread for random arrivals).")
    confidence_p_none: float = param(1e-2, "p-value at which the score's confidence is 0.")
    confidence_p_full: float = param(1e-8, "p-value at which the score's confidence is 1 (linear in log p "
                                           "between).")
    phase_min_events: int = param(20, "Check-ins a pair needs for the fixed-clock phase test (fewer are "
                                      "tested on intervals alone: the phase search is not calibrated below).")
    phase_prefilter_p: float = param(0.05, "Interval-test p-value below which a pair also gets the phase test.")
    bytes_weight: float = param(0.1, "Score added (times confidence) for beacons whose sizes are regular.")
    fleet_min_hosts: int = param(5, "Hosts with a periodic pair to one destination before it can be a fleet "
                                    "service.")
    fleet_min_share: float = param(0.3, "Share of all hosts seen with a periodic pair to one destination that "
                                        "makes it a fleet service: reported once, at low at most.")
    service_ports: tuple[str, ...] = param(("udp/123",), "proto/port whose periodic traffic is an expected "
                                                          "service (NTP); such findings drop to info.")
    proxy_ports: tuple[int, ...] = param((3128, 3129, 8080, 8081, 8118, 8888, 9090, 8000),
                                         "Internal connections to these ports that name their real destination "
                                         "(CONNECT / SNI) count for that destination.")
    top: int = param(10, "How many addresses, ports and hosts a finding lists.")
    kql_sources: tuple[str, ...] = param(("defender",), "sentinel-kql profile: source formats that stand for "
                                                        "DeviceNetworkEvents (empty: every source).")
    kql_window_hours: float = param(24.0, "sentinel-kql profile: look-back from the last event.")
    kql_min_connections: int = param(12, "sentinel-kql profile: connections per device, process, remote IP "
                                         "and port.")
    kql_min_minutes: float = param(30.0, "sentinel-kql profile: first-to-last time of those connections.")
    kql_rate_per_hour: tuple[float, float] = param((4.0, 120.0), "sentinel-kql profile: connections per hour "
                                                                 "over that time, inclusive range.")
    kql_excluded_ports: tuple[int, ...] = param((80, 443, 53), "sentinel-kql profile: remote ports dropped.")
    kql_excluded_processes: tuple[str, ...] = param(KQL_EXCLUDED_PROCESSES, "sentinel-kql profile: initiating "
                                                                            "process names dropped.")
    kql_grades: tuple[int, int, int] = param((12, 50, 100), "sentinel-kql profile: connection counts graded "
                                                            "low, medium and high.")


def detect(tables: Tables, settings: Settings) -> list[Finding]:
    p = settings.params(Params, ID)
    if settings.profile == "sentinel-kql":
        return beacon_kql.detect(tables, settings, p)
    base = beacon_query.outbound(tables.conn, p.proxy_ports)
    cand = tables.to_arrow(beacon_query.candidates(base, p.min_connections))
    if cand.num_rows == 0:
        return []
    scored = beacon_refine.refine(cand, p)
    total_hosts, unsure = int(cand["hosts"][0].as_py() or 0), int(cand["unsure"][0].as_py() or 0)
    del cand
    if not scored.periodic.any():
        return []
    if unsure:
        total_hosts = int(tables.to_arrow(beacon_query.hosts_total(base))["n"][0].as_py() or 0)
    rhythm, contact, per_pair = beacon_refine.prevalence(scored.pairs, scored.periodic)
    fleet = {d for d, n in rhythm.items()
             if n >= p.fleet_min_hosts and contact.get(d, 0) >= p.fleet_min_share * max(total_hosts, 1)}
    members = {dest: np.flatnonzero(scored.periodic & _is(scored, [dest])) for dest in sorted(fleet)}
    in_fleet = _is(scored, sorted(fleet))
    chosen = _chosen(scored, in_fleet, members, p.top)
    raw = scored.raw_keys
    keys = raw.filter(pc.is_in(raw["pair"], pa.array(chosen, pa.int64())))
    rows = tables.to_arrow(beacon_query.details(base, keys))
    described = beacon_report.describe(rows, p.top)
    ctx = beacon_report.Context(scored=scored, described=described, prevalence=per_pair, contact=contact,
                                total_hosts=total_hosts, params=p, settings=settings)
    findings = [beacon_report.pair_finding(ctx, i) for i in chosen if not in_fleet[i]]
    findings += [beacon_report.fleet_finding(ctx, dest, idx) for dest, idx in members.items()]
    return findings


def _is(scored: beacon_refine.Scored, dests: list[str]) -> np.ndarray:
    """Whether each pair's destination is one of `dests`, as a numpy bool array."""
    hit = pc.is_in(scored.pairs.column("dk"), pa.array(dests, pa.string()))
    return hit.to_numpy(zero_copy_only=False).astype(bool)


def _chosen(scored: beacon_refine.Scored, in_fleet: np.ndarray, members: dict[str, np.ndarray],
            top: int) -> list[int]:
    """Periodic pairs to report: all outside fleet destinations, the `top` strongest of each fleet one
    (enough to describe the service without fetching every host's telemetry)."""
    out = [int(i) for i in np.flatnonzero(scored.periodic & ~in_fleet)]
    for idx in members.values():
        out += [int(i) for i in idx[np.argsort(-scored.score[idx], kind="stable")][:top]]
    return sorted(out)
