"""Hand-made findings with realistic evidence, one builder per detection, for the report's tests, its
browser test and bench/bench_report.py. The evidence follows the plot-data contract (html_plots), so
every picture is exercised; `EVIL_*` are attacker-written strings that must render as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from bothunt.detections.base import severity_from_score
from bothunt.schema import Finding, iso

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
EVIL_DOMAIN = "x<script>document.title='PWNED';window.__pwned=1</script>\"'.evil.example"
EVIL_CMDLINE = ("powershell -w hidden -c \"<img src=x onerror=\"document.title='PWNED'\">\" '; DROP TABLE conn; --"
                " </script><script>window.__pwned=1</script> \u2028 & &amp;")
EVIL_PROCESS = "<svg onload=alert(1)>.exe"


def _iso(t: float) -> str:
    return iso(T0 + timedelta(seconds=float(t)))  # type: ignore[return-value]


def _eps(t: np.ndarray) -> list[float]:
    return np.round(T0.timestamp() + np.asarray(t, dtype=np.float64), 3).tolist()


def beacon(rng: np.random.Generator, host: str, ip: str, *, domain: str = "cdn-upd4te.example",
           process: str = "updater.exe", cmdline: str = r"C:\Users\ann\AppData\Roaming\updater.exe -k",
           period: float = 300.0, n: int = 288) -> Finding:
    gaps = period * (1 + rng.uniform(-0.1, 0.1, n))
    gaps[rng.random(n) < 0.05] *= 2  # missed beats
    t = np.cumsum(gaps)
    score = float(rng.uniform(0.7, 0.95))
    ev = {
        "connections": n, "check_ins": n, "span_hours": round(float(t[-1] - t[0]) / 3600, 3),
        "median_interval_s": round(float(np.median(gaps)), 3), "period_s": period, "jitter_pct": 10.0,
        "p_value": 1e-40, "regularity": 0.92, "confidence": 1.0, "failed": 3, "failed_share": 0.01,
        "bytes": {"out_median": 512.0, "in_median": 128.0, "regularity": 0.97},
        "prevalence": {"hosts": 1, "total_hosts": 150, "share": 0.0067}, "process_sample": process,
        "cmdline_sample": cmdline, "user": "ann", "src_ips": [ip], "destination": domain,
        "dst_ips": ["203.0.113.50", "203.0.113.51"], "dst_addresses": 2, "dst_ports": [443], "proxy": None,
        "sources": ["defender"], "timeline": _eps(t[:2000]),
    }
    return Finding(detection="beacon", title=f"Beacon: {host} {process} -> {domain} every ~5 min (jitter 10%)",
                   severity=severity_from_score(score), score=score, first_seen=_iso(t[0]), last_seen=_iso(t[-1]),
                   explanation=f"{host} connected to {domain} {n} times at a steady rhythm.", host=host,
                   src_ip=ip, user="ann", process=process, dst_ip="203.0.113.50", dst_port=443, domain=domain,
                   techniques=("T1583.005", "T1071", "T1071.001", "T1573"), evidence=ev)


def flood(rng: np.random.Generator, target: str, port: int = 22) -> Finding:
    bins = []
    for i in range(24):
        req = int(rng.integers(600, 1500)) if 6 <= i < 18 else int(rng.integers(20, 60))
        bins.append({"start": _iso(i * 300), "requests": req, "sources": int(req / rng.uniform(4, 8)),
                     "accepted": int(req * 0.05), "failed": int(req * 0.9), "denied": 0})
    tops = [{"ip": f"198.51.100.{i}", "attempts": 400 - i * 20, "share": round((400 - i * 20) / 12000, 4)}
            for i in range(1, 11)]
    ev = {
        "category": "credential_stuffing", "pattern": "burst", "distributed": True,
        "service": {"dst_ip": target, "dst_port": port, "kind": "auth", "sensor_services": ["ssh"]},
        "bin_seconds": 300, "judged_by": "history",
        "baseline": {"history_bins": 288, "median_requests": 40.0, "threshold_requests": 180.0,
                     "median_sources": 6.0, "threshold_sources": 30.0},
        "peak": {"start": _iso(3600), "requests": 1500, "sources": 300}, "anomalous_bins": 12, "bins": bins,
        "attempts": 12000, "distinct_sources": 2300, "attempts_per_source": {"median": 4.0, "max": 400},
        "outcomes": {"accepted": 600, "refused": 10000, "unanswered": 1400, "other_or_unknown": 0,
                     "denied_by_firewall": 0, "allowed_by_firewall": 12000},
        "failed_share": 0.95, "top_sources": tops,
    }
    return Finding(detection="inbound_flood", title=f"Credential stuffing against {target}:{port} (ssh) from 2300 "
                   "sources", severity="high", score=0.82, first_seen=_iso(1800), last_seen=_iso(5400),
                   explanation="2300 distinct sources made 12000 connections.", dst_ip=target, dst_port=port,
                   techniques=("T1583.005", "T1110.004", "T1110.003"), evidence=ev)


def relay(rng: np.random.Generator, host: str, ip: str, *, with_pairs: bool = True) -> Finding:
    ops = ["45.77.1.10", "45.77.1.11", "139.180.2.3"]
    tgts = [f"192.0.2.{i}" for i in range(1, 30)]
    k = np.arange(200)
    b = rng.uniform(2e3, 2e5, k.size)
    cols = zip(_eps(k * 30), rng.integers(0, 29, k.size).tolist(), np.round(rng.exponential(0.15, k.size), 3).tolist(),
               np.round(b).tolist(), np.round(b * rng.uniform(0.9, 1.1, k.size)).tolist(), strict=True)
    pairs = [{"t": t, "inbound_src": ops[i % 3], "outbound_dst": tgts[j], "lag_s": lag, "bytes_in": bi,
              "bytes_out": bo} for i, (t, j, lag, bi, bo) in enumerate(cols)]
    ev: dict[str, Any] = {
        "coincidence": {"p_value": 1e-30, "scale": 0.5, "inbound_sessions": 220, "outbound_public": 240,
                        "outbound_rate_per_hour": 48.0,
                        "by_scale": [{"within_s": s, "after_inbound": a, "before_inbound": b, "expected_from_rate": e}
                                     for s, a, b, e in ((0.1, 120, 2, 0.4), (0.5, 190, 5, 1.9), (5.0, 200, 9, 19.0))]},
        "legs_to": "public", "legs_public": 200, "legs_internal": 0, "public_share": 1.0,
        "operators": [{"value": o, "legs": 67, "share": 0.33} for o in ops], "operator_count": 3,
        "targets": [{"value": t, "legs": 7, "share": 0.035} for t in tgts[:10]], "target_count": 29,
        "inbound_ports": [{"value": 8443, "legs": 200, "share": 1.0}], "lag_seconds": {"median": 0.12},
        "byte_symmetry_median": 0.95, "same_process_share": 1.0,
        "processes": [{"value": "nginx", "legs": 200, "share": 1.0}],
    }
    if with_pairs:
        ev["pairs"] = pairs
    return Finding(detection="relay", title=f"Relay: {host} forwards Internet sessions from 3 address(es) to 29 "
                   "Internet host(s)", severity="critical", score=0.88, first_seen=_iso(0), last_seen=_iso(6000),
                   explanation=f"{host} accepted sessions and relayed them.", host=host, src_ip=ip, process="nginx",
                   dst_ip="192.0.2.1", dst_port=443, techniques=("T1583.005", "T1090", "T1090.003"), evidence=ev)


def dga(rng: np.random.Generator, host: str, ip: str, *, name: str | None = None) -> Finding:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    names = ["".join(rng.choice(letters, 10)) + ".com" for _ in range(12)]
    if name:
        names[0] = name
    samples = [{"domain": n, "name": n, "score": round(float(rng.uniform(0.75, 0.99)), 3), "lookups": 1,
                "nxdomain": 0 if i == 11 else 1, "resolved": i == 11, "first_seen": _iso(60 * i)}
               for i, n in enumerate(names)]
    bursts = [{"start": _iso(k * 3600), "end": _iso(k * 3600 + 50), "failed_domains": int(rng.integers(20, 60)),
               "sample": names[:3]} for k in range(4)]
    ev = {"failed_rare_domains": 160, "generated_looking": 150, "score_threshold": 0.62, "mean_score": 0.88,
          "nxdomain_ratio": 0.97, "domains_in_bursts": 150, "bursts": 4, "burst_times": bursts,
          "sample_names": samples, "host_lookups": 900, "host_nxdomain": 170,
          "live_c2": [{"domain": names[11], "name": names[11],
                       "connection": {"dst_ip": "203.0.113.9", "dst_port": 443, "delay_s": 2.0}}]}
    return Finding(detection="dga", title=f"DGA bot: {host} failed to resolve 160 rare domains, then connected to "
                   f"generated domain {names[11]}", severity="high", score=0.8, first_seen=_iso(0),
                   last_seen=_iso(4 * 3600), explanation="Generated names in bursts.", host=host, src_ip=ip,
                   domain=names[11], dst_ip="203.0.113.9", dst_port=443, techniques=("T1583.005", "T1568.002"),
                   evidence=ev)


def dns_tunnel(rng: np.random.Generator, host: str, ip: str, domain: str = "t.exfil-example.net") -> Finding:
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz234567"))
    names = ["".join(rng.choice(alphabet, 48)) + "." + domain for _ in range(10)]
    lengths = rng.integers(40, 63, 400).tolist()
    lookups = [{"t": t, "length": n, "qtype": "TXT" if k % 3 else "A", "ttl": 0.0 if k % 3 else 60.0}
               for k, (t, n) in enumerate(zip(_eps(np.arange(400) * 7.0), lengths, strict=True))]
    ev = {"kind": "tunnel", "queries": 4000, "unique_names": 3900, "mean_subdomain_length": 52.0,
          "max_subdomain_length": 63, "encoded_bytes_estimate": 200000, "txt_null_queries": 2600,
          "sample_names": names, "lookups": lookups}
    return Finding(detection="dns_c2", title=f"DNS tunnel: {host} sent 3900 unique names under {domain}",
                   severity="high", score=0.78, first_seen=_iso(0), last_seen=_iso(2800), explanation="Tunnel.",
                   host=host, src_ip=ip, domain=domain, techniques=("T1583.005", "T1071.004", "T1572"), evidence=ev)


def dns_periodic(rng: np.random.Generator, host: str, ip: str, name: str = "cfg.rare-example.org") -> Finding:
    t = np.cumsum(600 * (1 + rng.uniform(-0.05, 0.05, 100)))
    ev = {"kind": "periodic_lookups", "names": [{"name": name, "lookups": 100, "period_s": 600.0, "jitter": 0.05,
                                                  "p_value": 1e-12, "min_ttl": 3600.0}],
          "timeline": _eps(t), "period_s": 600.0, "jitter_pct": 5.0}
    return Finding(detection="dns_c2", title=f"Periodic DNS lookups: {host} resolves {name} every 600 s",
                   severity="low", score=0.35, first_seen=_iso(t[0]), last_seen=_iso(t[-1]), explanation="Timer.",
                   host=host, src_ip=ip, domain="rare-example.org", techniques=("T1583.005", "T1071.004"),
                   evidence=ev)


def one_each(evil: bool = False, seed: int = 7) -> list[Finding]:
    """One finding per detection (two for relay: with and without `pairs`; one periodic dns_c2), on three
    hosts so the host view has something to combine."""
    rng = np.random.default_rng(seed)
    kw: dict[str, Any] = {"domain": EVIL_DOMAIN, "process": EVIL_PROCESS, "cmdline": EVIL_CMDLINE} if evil else {}
    return [
        beacon(rng, "ws-017", "10.1.2.17", **kw),
        flood(rng, "10.9.0.5"),
        relay(rng, "edge-fw-02", "10.9.0.5"),
        relay(rng, "nas-01", "10.1.5.40", with_pairs=False),
        dga(rng, "ws-017", "10.1.2.17", name=EVIL_DOMAIN if evil else None),
        dns_tunnel(rng, "ws-022", "10.1.2.22"),
        dns_periodic(rng, "ws-017", "10.1.2.17"),
    ]


def many(n: int, seed: int = 1, hosts: int = 2000) -> list[Finding]:
    """`n` findings spread over `hosts` internal hosts, every detection and picture represented."""
    rng = np.random.default_rng(seed)
    out = []
    builders = ("beacon", "flood", "relay", "dga", "dns_tunnel", "dns_periodic")
    for k in range(n):
        h = int(rng.integers(0, hosts))
        host, ip = f"ws-{h:04d}", f"10.{h // 250}.{h % 250}.{(k % 200) + 1}"
        kind = builders[k % len(builders)]
        if kind == "beacon":
            f = beacon(rng, host, ip, domain=f"c{k}.example.net", n=int(rng.integers(20, 400)))
        elif kind == "flood":
            f = flood(rng, ip, port=int(rng.choice([22, 443, 3389])))
        elif kind == "relay":
            f = relay(rng, host, ip)
        elif kind == "dga":
            f = dga(rng, host, ip)
        elif kind == "dns_tunnel":
            f = dns_tunnel(rng, host, ip, domain=f"t{k}.example.org")
        else:
            f = dns_periodic(rng, host, ip, name=f"cfg{k}.example.com")
        out.append(_unique(f, k))
    return out


def _unique(f: Finding, k: int) -> Finding:
    from dataclasses import replace

    return replace(f, id=f"{f.id[:12]}{k:08d}")
