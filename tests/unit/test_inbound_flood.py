"""inbound_flood on small numpy-built inputs: campaigns against history and floors, low-and-slow, denied
traffic, single sources, sweeps and scans, allow-lists, and the Sentinel-KQL profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from bothunt.config import Allowlist, Settings
from bothunt.detections import flood_baseline, inbound_flood
from bothunt.engine import tables_from_arrow
from bothunt.errors import ConfigError
from bothunt.schema import SEVERITIES

T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC
DAY = 86400.0
WEB, BASTION, RDGW = "10.0.0.5", "10.0.0.6", "10.0.0.7"


def ips(prefix: str, k: int) -> np.ndarray:
    return np.array([f"{prefix}.{i // 250}.{i % 250 + 1}" for i in range(k)], dtype=object)


class Conn:
    """Collects inbound connection rows as numpy columns and builds one canonical Arrow table."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, ts, src, dst, port, state="established", duration=1.0, action=None, nbytes=5000.0):
        ts = np.asarray(ts, dtype=float)
        n = ts.size

        def col(v, dtype=object):
            return np.broadcast_to(np.asarray(v, dtype=dtype), (n,)).copy()

        self.parts.append({"ts": ts, "src": col(src), "dst": col(dst), "port": col(port, np.int32),
                           "state": col(state), "dur": col(duration, float), "action": col(action),
                           "bytes": col(nbytes, float)})
        return self

    def table(self) -> pa.Table:
        c = {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}
        n = c["ts"].size
        return pa.table({
            "ts": pa.array((c["ts"] * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC")),
            "src_ip": c["src"].tolist(), "dst_ip": c["dst"].tolist(), "dst_port": pa.array(c["port"], pa.int32()),
            "proto": ["tcp"] * n, "direction": ["inbound"] * n, "state": c["state"].tolist(),
            "action": c["action"].tolist(), "duration": pa.array(c["dur"], pa.float64(), mask=np.isnan(c["dur"])),
            "bytes_out": pa.array(c["bytes"] / 2, pa.float64(), mask=np.isnan(c["bytes"])).cast(pa.int64()),
            "bytes_in": pa.array(c["bytes"] / 2, pa.float64(), mask=np.isnan(c["bytes"])).cast(pa.int64()),
            "source": ["cef"] * n,
        })


def steady_web(conn: Conn, rng: np.random.Generator, days: float = 2.0, per_bin: float = 30.0) -> None:
    """Visitors: a few connections each, all day, from a large pool."""
    n = rng.poisson(days * DAY / 300 * per_bin)
    conn.add(T0 + np.sort(rng.uniform(0, days * DAY, n)), ips("73.1", 5000)[rng.integers(0, 5000, n)], WEB, 443)


def run(conn: Conn, **settings) -> list:
    return inbound_flood.detect(tables_from_arrow(conn.table()), Settings(**settings))


def by_category(findings, category: str) -> list:
    return [f for f in findings if f.evidence["category"] == category]


def rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- distributed bursts --------------------------------------------------------------------------


def test_http_flood_against_history_is_one_campaign_with_its_time_range_and_top_sources():
    rng = np.random.default_rng(1)
    conn = Conn()
    steady_web(conn, rng)
    start = T0 + DAY + 10 * 3600
    bots = ips("45.137", 80)
    flood = start + np.sort(rng.uniform(0, 1200, 12000))
    conn.add(flood, bots[rng.integers(0, 80, flood.size)], WEB, 443)
    findings = run(conn)
    [f] = by_category(findings, "http_flood")
    assert (f.dst_ip, f.dst_port, f.src_ip, f.domain) == (WEB, 443, None, None)
    assert at(start) <= when(f.first_seen) < at(start + 60)
    assert at(start + 1140) < when(f.last_seen) <= at(start + 1200)
    assert rank(f.severity) >= rank("high")
    ev = f.evidence
    assert ev["judged_by"] == "history" and ev["anomalous_bins"] == 4
    assert ev["baseline"]["history_bins"] == 288
    assert 20 <= ev["baseline"]["median_requests"] <= 40  # the steady 30 per bin
    assert ev["peak"]["requests"] > 2500
    assert ev["top_sources"][0]["ip"] in set(bots)
    assert abs(sum(s["share"] for s in ev["top_sources"]) - sum(s["attempts"] for s in ev["top_sources"])
               / ev["attempts"]) < 1e-3
    assert ev["outcomes"]["accepted"] == ev["attempts"]
    assert f.techniques[0] == "T1583.005" and "T1499" in f.techniques
    # the bots are the campaign's sources, not 80 findings of their own
    assert not by_category(findings, "hammering")


def test_legitimate_surge_stays_below_medium_and_says_why():
    rng = np.random.default_rng(2)
    conn = Conn()
    # visitors make ~4 connections each in a visit; the surge is ten times as many visitors, same behaviour
    for lo, hi, rate in ((0, 2 * DAY, 8), (DAY + 36000, DAY + 39600, 80)):
        k = rng.poisson((hi - lo) / 300 * rate)
        visits = T0 + lo + rng.uniform(0, hi - lo, k)
        who = ips("73.1", 20000)[rng.integers(0, 20000, k)]
        reps = 1 + rng.geometric(0.3, k)
        conn.add(np.repeat(visits, reps) + rng.uniform(0, 20, reps.sum()), np.repeat(who, reps), WEB, 443)
    findings = run(conn)
    assert findings, "a tenfold surge is anomalous and is reported"
    for f in findings:
        assert f.evidence["category"] == "http_flood"
        assert rank(f.severity) < rank("medium"), f.explanation
        assert f.evidence["score_parts"]["per_source_intensity"] < 0.2
    assert "Benign if a planned launch" in findings[0].explanation


def test_service_that_is_always_above_the_published_thresholds_is_not_a_flood():
    rng = np.random.default_rng(3)
    conn = Conn()
    steady_web(conn, rng, per_bin=700.0)  # > 500 requests and > 50 sources in every bin, for two days
    assert run(conn) == []


def test_capture_of_a_flood_without_history_is_judged_by_the_published_floors():
    rng = np.random.default_rng(4)
    conn = Conn()
    start = T0 + 3600
    ts = start + np.sort(rng.uniform(0, 600, 1400))  # two bins of about 700 from about 300 sources each
    src = ips("91.92", 300)[rng.integers(0, 300, 1400)]
    conn.add(ts, src, BASTION, 22, duration=2.0)
    [f] = run(conn)
    assert f.evidence["category"] == "credential_stuffing"
    assert f.evidence["judged_by"] == "floors"
    assert rank(f.severity) >= rank("high")
    assert "T1110.004" in f.techniques
    assert f.evidence["distinct_sources"] == len(set(src.tolist()))
    # at the floors and not above them: nothing (500 requests per bin is not > 500)
    below = start + np.repeat([0.0, 300.0], 500) + np.tile(np.linspace(0, 299, 500), 2)
    conn2 = Conn().add(below, ips("91.92", 300)[np.arange(1000) % 300], BASTION, 22, duration=2.0)
    assert run(conn2) == []


def test_distinct_sources_and_attempts_are_counted_exactly():
    rng = np.random.default_rng(5)
    src = ips("91.92", 300)[rng.integers(0, 300, 1600)]
    ts = T0 + 600 + np.sort(rng.uniform(0, 600, 1600))
    [f] = run(Conn().add(ts, src, BASTION, 22, duration=2.0))
    assert f.evidence["distinct_sources"] == len(set(src.tolist()))
    assert f.evidence["attempts"] == 1600
    # the busiest source first, ties broken by address
    top_n, top_ip = min((-int((src == ip).sum()), ip) for ip in set(src.tolist()))
    assert (f.evidence["top_sources"][0]["ip"], f.evidence["top_sources"][0]["attempts"]) == (top_ip, -top_n)


def test_denied_traffic_is_evidence_here_and_dropped_by_the_published_rule():
    rng = np.random.default_rng(6)
    ts = T0 + 600 + np.sort(rng.uniform(0, 300, 900))
    src = ips("45.155", 120)[rng.integers(0, 120, 900)]
    conn = Conn().add(ts, src, WEB, 8443, state="rejected", action="deny")
    [f] = run(conn)
    assert f.evidence["category"] == "http_flood"
    assert f.evidence["outcomes"]["denied_by_firewall"] == 900
    assert f.evidence["outcomes"]["allowed_by_firewall"] == 0
    assert run(conn, profile="sentinel-kql") == []


def test_bursts_one_quiet_bin_apart_merge_and_three_bins_apart_do_not():
    rng = np.random.default_rng(7)

    def burst(conn, at):
        ts = T0 + at + np.sort(rng.uniform(0, 300, 800))
        conn.add(ts, ips("91.92", 200)[rng.integers(0, 200, 800)], BASTION, 22, duration=2.0)

    near = Conn()
    burst(near, 3600)
    burst(near, 3600 + 600)  # bins 12 and 14: one quiet bin between
    assert len(run(near)) == 1
    far = Conn()
    burst(far, 3600)
    burst(far, 3600 + 1200)  # bins 12 and 16
    assert len(run(far)) == 2


# --- low and slow --------------------------------------------------------------------------------


def test_low_and_slow_stuffing_found_where_no_bin_crosses_the_published_thresholds():
    rng = np.random.default_rng(8)
    conn = Conn()
    # two admins all day on RDP with long sessions
    k = 40
    admin_ts = T0 + np.sort(rng.uniform(0, DAY, k))
    admins = ips("24.30", 2)[rng.integers(0, 2, k)]
    conn.add(admin_ts, admins, RDGW, 3389, duration=1500.0, nbytes=400000.0)
    src = ips("185.220", 200)
    order = np.concatenate([rng.permutation(200), rng.permutation(200)])
    ts = T0 + 7200 + np.sort(rng.uniform(0, 10 * 3600, 400))
    conn.add(ts, src[order], RDGW, 3389, duration=3.0, nbytes=6000.0)
    # independent check of the premise: every 5-minute bin stays far below 500 requests / 50 sources
    bins = np.floor(ts / 300)
    assert np.unique(bins, return_counts=True)[1].max() < 50
    findings = run(conn)
    [f] = by_category(findings, "low_and_slow_stuffing")
    assert f.evidence["pattern"] == "low_and_slow" and f.evidence["distributed"] is True
    # the campaign is whole hours: the admins active in those hours are among its sources too
    lo = np.floor(when(f.first_seen).timestamp() / 3600) * 3600
    hi = np.ceil(when(f.last_seen).timestamp() / 3600) * 3600
    in_window = set(admins[(admin_ts >= lo) & (admin_ts < hi)].tolist())
    assert f.evidence["distinct_sources"] == 200 + len(in_window)
    assert at(T0 + 7200) <= when(f.first_seen) < at(T0 + 7200 + 3600)
    assert at(T0 + 7200 + 9 * 3600) < when(f.last_seen) <= at(T0 + 7200 + 10 * 3600)
    assert rank(f.severity) >= rank("high")
    assert f.evidence["attempts_per_source"]["median"] == 2.0
    assert "T1110.003" in f.techniques
    assert run(conn, profile="sentinel-kql") == []


def test_low_and_slow_hidden_among_many_regular_users_shows_in_new_sources():
    rng = np.random.default_rng(18)
    conn = Conn()
    k = 3 * 24 * 150  # three days of 300 staff, ~150 logins an hour (about 120 distinct users an hour)
    conn.add(T0 + np.sort(rng.uniform(0, 3 * DAY, k)), ips("24.30", 300)[rng.integers(0, 300, k)], BASTION, 22,
             duration=900.0, nbytes=200000.0)
    start = T0 + 2 * DAY + 6 * 3600  # on day three: two days of history
    src = ips("185.220", 300)
    ts = start + np.sort(rng.uniform(0, 6 * 3600, 600))
    conn.add(ts, src[np.concatenate([rng.permutation(300), rng.permutation(300)])], BASTION, 22, duration=3.0)
    findings = run(conn)
    [f] = findings
    assert f.evidence["category"] == "low_and_slow_stuffing" and f.evidence["judged_by"] == "history"
    assert f.evidence["baseline"]["median_new_sources"] == 0
    # the campaign's sources did not even double the hourly sources: only their novelty stands out
    assert max(b["sources"] for b in f.evidence["bins"]) < 2 * f.evidence["baseline"]["median_sources"]
    assert at(start) <= when(f.first_seen) < at(start + 3600)
    assert "new to it per hour" in f.explanation


def test_steady_logins_of_real_users_are_not_low_and_slow():
    rng = np.random.default_rng(9)
    conn = Conn()
    k = 2000  # forty remote workers, long sessions, two days
    conn.add(T0 + np.sort(rng.uniform(0, 2 * DAY, k)), ips("24.30", 40)[rng.integers(0, 40, k)], RDGW, 3389,
             duration=1800.0, nbytes=500000.0)
    assert run(conn) == []


def test_steady_mail_from_many_servers_is_not_a_spam_run():
    rng = np.random.default_rng(10)
    k = 2 * 24 * 25
    conn = Conn().add(T0 + np.sort(rng.uniform(0, 2 * DAY, k)), ips("81.2", 300)[rng.integers(0, 300, k)],
                      "10.0.0.12", 25, duration=1.5, nbytes=25000.0)
    assert run(conn) == []


# --- single sources ------------------------------------------------------------------------------


def test_single_source_brute_force_is_reported_below_a_distributed_campaign():
    rng = np.random.default_rng(11)
    conn = Conn()
    conn.add(T0 + 50000 + np.sort(rng.uniform(0, 1800, 200)), "5.188.1.1", BASTION, 22, duration=2.0)
    ts = T0 + 3600 + np.sort(rng.uniform(0, 600, 1600))
    conn.add(ts, ips("91.92", 300)[rng.integers(0, 300, 1600)], BASTION, 22, duration=2.0)
    findings = run(conn)
    [single] = by_category(findings, "brute_force")
    [campaign] = by_category(findings, "credential_stuffing")
    assert (single.src_ip, single.dst_ip, single.dst_port) == ("5.188.1.1", BASTION, 22)
    assert single.evidence["attempts"] == 200 and single.evidence["distributed"] is False
    assert rank(single.severity) <= rank("medium") < rank(campaign.severity)
    assert "T1110.001" in single.techniques


def test_a_partner_calling_an_api_all_day_is_not_hammering():
    rng = np.random.default_rng(12)
    k = 2000  # 2000 accepted connections a day, about seven per 5 minutes
    conn = Conn().add(T0 + np.sort(rng.uniform(0, DAY, k)), "34.117.1.1", WEB, 443)
    assert run(conn) == []


def test_sweep_of_one_slash24_names_the_prefix_and_of_many_leaves_dst_empty():
    one = Conn().add(T0 + 100 + np.arange(30) * 0.01, "46.166.151.160", [f"10.0.1.{i}" for i in range(1, 31)],
                     3389, state="attempted")
    [f] = run(one)
    assert f.evidence["category"] == "sweep"
    assert (f.src_ip, f.dst_ip, f.dst_port) == ("46.166.151.160", "10.0.1.0/24", 3389)
    assert f.evidence["hosts"] == 30
    hosts = [f"10.0.{i % 3}.{i}" for i in range(1, 31)]
    many = Conn().add(T0 + 100 + np.arange(30) * 0.01, "46.166.151.160", hosts, 3389, state="attempted")
    [g] = run(many)
    assert g.dst_ip is None and g.dst_port == 3389
    assert g.evidence["prefixes"] == {"10.0.0.0/24": 10, "10.0.1.0/24": 10, "10.0.2.0/24": 10}


def test_a_crawler_visiting_many_sites_over_days_is_not_a_sweep():
    hosts = [f"10.0.1.{i}" for i in range(1, 13)]
    slow = Conn().add(T0 + np.arange(12) * 4 * 3600.0, "66.249.66.1", hosts, 443)  # one site every 4 hours
    assert run(slow) == []
    fast = Conn().add(T0 + np.arange(12) * 60.0, "66.249.66.1", hosts, 443)  # all twelve within the hour
    [f] = run(fast)
    assert f.evidence["category"] == "sweep" and f.evidence["most_hosts_in_window"] == 12


def test_an_admin_touching_many_servers_is_not_brute_force():
    rng = np.random.default_rng(17)
    k = 1500  # forty SSH servers, long sessions, ~37 each a day; 15 attempts within the busiest 5 minutes overall
    servers = np.array([f"10.0.2.{i}" for i in range(1, 41)], dtype=object)
    ts = T0 + np.concatenate([np.sort(rng.uniform(0, DAY, k - 15)), DAY / 2 + np.arange(15) * 10.0])
    conn = Conn().add(ts, "24.30.0.9", np.concatenate([servers[rng.integers(0, 40, k - 15)], servers[:15]]), 22,
                      duration=900.0, nbytes=200000.0)
    assert run(conn) == []


def test_port_scan_of_one_host():
    ports = np.arange(1, 201)
    conn = Conn().add(T0 + 100 + ports * 0.5, "171.244.9.9", WEB, ports, state="rejected")
    [f] = run(conn)
    assert f.evidence["category"] == "port_scan"
    assert (f.src_ip, f.dst_ip, f.dst_port) == ("171.244.9.9", WEB, None)
    assert f.evidence["ports"] == 200


# --- allow-lists, params, profile ----------------------------------------------------------------


def test_allowlist_lowers_to_info_and_names_the_entry():
    rng = np.random.default_rng(13)
    ts = T0 + 600 + np.sort(rng.uniform(0, 600, 1800))
    conn = Conn().add(ts, ips("45.155", 200)[rng.integers(0, 200, 1800)], BASTION, 22, duration=2.0)
    conn.add(T0 + 9000 + np.arange(100) * 5.0, "5.188.1.1", BASTION, 22, duration=2.0)
    # the attacked service allow-listed (a honeypot), and the single source (a hired pentester)
    al = Allowlist(cidrs=(f"{BASTION}/32", "5.188.1.0/24"))
    findings = run(conn, allowlist=al)
    assert {f.severity for f in findings} == {"info"}
    hits = {h for f in findings for h in f.evidence["allowlisted_by"]}
    assert hits == {f"cidr:{BASTION}/32", "cidr:5.188.1.0/24"}
    # a load test: allow-listed sources carrying most of the attempts
    [f] = [f for f in run(conn, allowlist=Allowlist(cidrs=("45.155.0.0/16",))) if f.src_ip is None]
    assert f.severity == "info" and f.evidence["allowlisted_by"][0].startswith("cidr:45.155.0.0/16")


def test_params_override_and_unknown_setting():
    rng = np.random.default_rng(14)
    conn = Conn().add(T0 + 50000 + np.sort(rng.uniform(0, 1800, 15)), "5.188.1.1", BASTION, 22, duration=2.0)
    assert run(conn) == []
    assert len(run(conn, detections={"inbound_flood": {"single_min_attempts": 10}})) == 1
    with pytest.raises(ConfigError, match="single_min_attempts"):
        run(conn, detections={"inbound_flood": {"single_min_attempt": 10}})


def test_no_inbound_rows_no_findings():
    t = pa.table({"ts": pa.array([0], pa.timestamp("us", tz="UTC")), "src_ip": ["10.0.0.1"], "dst_ip": ["8.8.8.8"],
                  "direction": ["outbound"]})
    assert inbound_flood.detect(tables_from_arrow(t), Settings()) == []


def test_kql_profile_reproduces_the_published_thresholds_window_and_categories():
    rng = np.random.default_rng(15)
    end = T0 + 5 * 3600
    conn = Conn()

    def burst(at, sources, events, port, action=None):
        src = ips("45.137", sources)[np.arange(events) % sources]
        conn.add(at + np.sort(rng.uniform(0, 290, events)), src, WEB, port, action=action)

    burst(end - 3000, 51, 501, 443)  # just over: fires, HTTP Flood
    burst(end - 2400, 50, 900, 22)  # 50 sources is not > 50
    burst(end - 1800, 80, 500, 25)  # 500 events is not > 500
    burst(end - 1200, 60, 600, 3389)  # Credential Stuffing / Brute Force
    burst(end - 600, 60, 600, 9999, action="Drop")  # denied: dropped by the rule
    burst(end - 2 * 3600, 200, 2000, 80)  # older than the last hour
    conn.add([end], "1.1.1.1", WEB, 1234)  # the end of the data
    findings = run(conn, profile="sentinel-kql", detections={"inbound_flood": {"kql_sources": ()}})
    got = sorted((f.dst_port, f.evidence["category"], f.evidence["distinct_sources"]) for f in findings)
    assert got == [(443, "HTTP Flood", 51), (3389, "Credential Stuffing / Brute Force", 60)]
    # CommonSecurityLog only by default: these rows are CEF, so the default profile sees the same
    assert len(run(conn, profile="sentinel-kql")) == 2
    until = datetime.fromtimestamp(end - 3600, UTC)
    older = run(conn, profile="sentinel-kql", until=until)
    assert [f.dst_port for f in older] == [80]


# --- numpy helpers -------------------------------------------------------------------------------


def test_trailing_stats_match_a_plain_loop():
    rng = np.random.default_rng(16)
    values = rng.poisson(20, 200).astype(float)
    at = np.array([0, 1, 5, 50, 199])
    hist, med, mad = flood_baseline.trailing_stats(values, at, window=24)
    for i, t in enumerate(at):
        w = values[max(0, t - 24): t]
        assert hist[i] == w.size
        if w.size:
            assert med[i] == np.median(w)
            assert mad[i] == np.median(np.abs(w - np.median(w)))
        else:
            assert np.isnan(med[i])


def test_runs_and_extend():
    flags = np.zeros(20, dtype=bool)
    flags[[2, 3, 5, 9, 10]] = True
    assert flood_baseline.runs(flags, max_gap=1) == [(2, 5), (9, 10)]
    assert flood_baseline.runs(flags, max_gap=0) == [(2, 3), (5, 5), (9, 10)]
    values = np.array([0, 5, 9, 9, 0, 9, 0, 0, 0, 9, 9, 6, 6, 1, 0, 0, 0, 0, 0, 0], dtype=float)
    assert flood_baseline.extend(flags, values, 9, 10, level=4.0) == (9, 12)
    assert flood_baseline.extend(flags, values, 2, 5, level=4.0) == (1, 5)


def test_threshold_is_never_zero_for_a_silent_service():
    thr = flood_baseline.robust_threshold(np.array([0.0, 100.0]), np.array([0.0, 2.0]), k=6, min_ratio=2)
    assert thr[0] == 6.0  # a Poisson deviation of at least 1
    assert thr[1] == 200.0  # at least twice the median


def test_params_are_documented():
    from bothunt.detections.base import params_doc

    docs = params_doc(inbound_flood.Params)
    assert all(doc for _, _, doc in docs)
    assert inbound_flood.INFO.techniques[0] == "T1583.005"
    assert timedelta(minutes=inbound_flood.Params().bin_minutes) == timedelta(minutes=5)
