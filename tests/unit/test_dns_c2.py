"""dns_c2 on small numpy-built lookups (DuckDB in-process): a TXT tunnel, fast flux seen by two hosts,
periodic lookups of one name, and the look-alikes that must stay below medium (anti-virus and DNSBL
lookups, CDN names, NTP pools, ordinary subdomains, lookups at random times)."""

from __future__ import annotations

import base64

import numpy as np
import pyarrow as pa
import pytest

from bothunt import dga_model
from bothunt.config import Allowlist, Settings
from bothunt.detections import dns_c2
from bothunt.detections.dns_tunnel import entropy
from bothunt.engine import tables_from_arrow
from bothunt.schema import severity_rank

T0 = 1772409600.0  # 2026-03-02T00:00:00Z
TUNNEL, FLUX_A, FLUX_B, TIMER, USER, MAIL = "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.10"


class Dns:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, ts, src, names, rcode="NOERROR", answers=None, ttl=300.0, qtype="A", host=None):
        ts = np.broadcast_to(np.asarray(ts, dtype=float), (len(names),))
        for i, (t, name) in enumerate(zip(ts.tolist(), names, strict=True)):
            ans = answers(i) if callable(answers) else (answers or [])
            ans = ans if rcode == "NOERROR" else []
            self.rows.append({"ts": int(t * 1e6), "src_ip": src, "host": host, "dst_ip": "10.0.0.53", "query": name,
                              "qtype": qtype[i] if isinstance(qtype, list) else qtype, "rcode": rcode,
                              "answers": ans, "ttls": [float(ttl)] * len(ans), "source": "zeek"})
        return self

    def table(self) -> pa.Table:
        t = pa.Table.from_pylist(self.rows)
        return t.set_column(0, "ts", t["ts"].cast(pa.timestamp("us", tz="UTC")))


@pytest.fixture(autouse=True)
def scores(monkeypatch):
    """Controlled per-label scores: long base32/hex-looking labels are generated, words are not."""
    def score(names):
        return np.asarray([0.97 if len(n or "") >= 12 and sum(c.isdigit() for c in n) >= 2 else 0.1 for n in names],
                          np.float32)
    monkeypatch.setattr(dga_model, "score_names", score)
    monkeypatch.setattr(dga_model, "thresholds", lambda: {"fpr_0.01": 0.9})


def b32(rng: np.random.Generator, nbytes: int) -> str:
    return base64.b32encode(rng.bytes(nbytes)).decode().lower().rstrip("=")


def tunnel(d: Dns, rng: np.random.Generator, n: int = 600) -> list[str]:
    names = [f"{i:05d}{b32(rng, 30)}.{b32(rng, 15)}.t.evil-sync.com" for i in range(n)]
    qtype = ["TXT" if x < 0.75 else "A" for x in rng.random(n)]
    d.add(T0 + np.sort(rng.uniform(0, 7200, n)), TUNNEL, names, answers=lambda i: [b32(rng, 40)], qtype=qtype)
    return qtype


def flux(d: Dns, rng: np.random.Generator, name: str = "secure-docs.top", ttl: float = 120.0, nets: int = 40,
         addresses: int = 100) -> list[str]:
    prefixes = [f"{a}.{b}" for a, b in zip(rng.choice(np.arange(11, 220), nets, replace=False),
                                           rng.integers(0, 255, nets), strict=True)]
    pool = [f"{prefixes[i % nets]}.{rng.integers(0, 255)}.{rng.integers(1, 254)}" for i in range(addresses)]
    for src in (FLUX_A, FLUX_B):
        ts = T0 + np.sort(rng.uniform(0, 86400, 60))
        d.add(ts, src, [name] * 60, answers=lambda i: [pool[(i * 5 + k) % addresses] for k in range(5)], ttl=ttl)
    return pool


def common(d: Dns, rng: np.random.Generator) -> None:
    hashes = ["".join(f"{x:02x}" for x in rng.integers(0, 256, 16)) for _ in range(300)]
    d.add(T0 + np.sort(rng.uniform(0, 86400, 300)), USER, [f"{h}.p.sophosxl.net" for h in hashes],
          answers=["127.0.0.1"])
    octets = rng.integers(1, 255, (500, 4))
    d.add(T0 + np.sort(rng.uniform(0, 86400, 500)), MAIL,
          [f"{a}.{b}.{c}.{e}.zen.spamhaus.org" for a, b, c, e in octets], "NXDOMAIN")
    subs = ["www", "mail", "api", "cdn", "static", "login", "img", "docs"]
    names = [f"{subs[i % 8]}.{w}.com" for i, w in enumerate(["alpha", "bravo", "delta", "lima", "oscar"] * 16)]
    d.add(T0 + np.sort(rng.uniform(0, 86400, len(names))), USER, names, answers=["151.101.1.1"])
    cdn = [f"{rng.integers(50, 60)}.{rng.integers(0, 255)}.{rng.integers(0, 255)}.9" for _ in range(30)]
    d.add(T0 + np.sort(rng.uniform(0, 86400, 100)), USER, ["d3abc7xyz.cloudfront.net"] * 100,
          answers=lambda i: [cdn[i % 30], cdn[(i + 1) % 30]], ttl=60)
    ntp = [f"{rng.integers(60, 200)}.{rng.integers(0, 255)}.1.{i}" for i in range(40)]
    d.add(T0 + np.sort(rng.uniform(0, 86400, 80)), USER, ["pool.ntp.org"] * 80,
          answers=lambda i: [ntp[(4 * i + k) % 40] for k in range(4)], ttl=150)
    # random-time lookups of a rare name: no rhythm
    d.add(T0 + np.sort(rng.uniform(0, 86400, 40)), USER, ["shop.rare-store.com"] * 40, answers=["151.101.9.9"])


def run(d: Dns, settings: Settings | None = None):
    return dns_c2.detect(tables_from_arrow(dns=d.table()), settings or Settings())


def kinds(findings):
    return {(f.evidence["kind"], f.domain): f for f in findings}


def test_tunnel_flux_and_look_alikes():
    rng = np.random.default_rng(1)
    d = Dns()
    qtype = tunnel(d, rng)
    pool = flux(d, rng)
    common(d, rng)
    found = kinds(run(d))
    t = found[("tunnel", "evil-sync.com")]
    assert t.src_ip == TUNNEL and t.severity in ("high", "critical")
    assert t.evidence["unique_names"] == 600 and t.evidence["queries"] == 600
    assert t.evidence["txt_null_queries"] == qtype.count("TXT")
    assert t.evidence["mean_entropy_bits"] > 4.0 and t.evidence["mean_subdomain_length"] > 70
    assert t.techniques[:3] == ("T1583.005", "T1071.004", "T1572")
    f = found[("fast_flux", "secure-docs.top")]
    assert f.evidence["addresses"] == len(set(pool)) and f.evidence["networks_16"] == len({".".join(a.split(".")[:2])
                                                                                             for a in pool})
    assert f.evidence["host_count"] == 2 and {h["src_ip"] for h in f.evidence["hosts"]} == {FLUX_A, FLUX_B}
    assert f.evidence["ttl"] == 120 and f.severity in ("high", "critical")
    assert f.techniques[:2] == ("T1583.005", "T1568.001")
    # look-alikes: reputation lookups and the NTP pool are kept visible at info, nothing else fires
    av = found[("tunnel", "sophosxl.net")]
    assert av.severity == "info" and av.evidence["allowlisted_by"] == ["reputation_service:*.sophosxl.net"]
    ntp = found[("fast_flux", "ntp.org")]
    assert ntp.severity == "info" and "known_service:*.ntp.org" in ntp.evidence["allowlisted_by"]
    rest = {k for k in found if k not in {("tunnel", "evil-sync.com"), ("fast_flux", "secure-docs.top"),
                                          ("tunnel", "sophosxl.net"), ("fast_flux", "ntp.org")}}
    assert all(found[k].severity == "info" for k in rest), rest
    assert all(severity_rank(x.severity) < severity_rank("medium") for k, x in found.items()
               if k[1] not in ("evil-sync.com", "secure-docs.top"))


def test_cdn_name_with_many_networks_is_info():
    rng = np.random.default_rng(2)
    d = Dns()
    flux(d, rng, name="d1x2y3.cloudfront.net", ttl=60)
    (f,) = run(d)
    assert f.domain == "cloudfront.net" and f.severity == "info"
    assert f.evidence["allowlisted_by"] == ["cdn:*.cloudfront.net"]


def test_flux_needs_many_networks_and_a_low_ttl():
    rng = np.random.default_rng(3)
    d = Dns()
    flux(d, rng, name="few-nets.com", nets=3)
    flux(d, rng, name="long-ttl.com", ttl=86400)
    assert run(d) == []


def test_short_subdomains_under_one_domain_are_not_a_tunnel():
    d = Dns()
    d.add(T0 + np.arange(400.0), USER, [f"host{i}.corp-example.com" for i in range(400)], answers=["10.1.1.1"])
    assert run(d) == []


def timer_lookups(d: Dns, rng: np.random.Generator, name: str, period: float = 300.0, n: int = 72, **kw) -> None:
    ts = T0 + np.cumsum(period * (1 + rng.uniform(-0.02, 0.02, n)))
    d.add(ts, TIMER, [name] * n, **kw)
    d.add(ts + 0.01, TIMER, [name] * n, **{**kw, "qtype": "AAAA"})  # the AAAA of the same lookup


def test_periodic_lookups_alone_are_info_oddities_raise_them():
    rng = np.random.default_rng(5)
    d = Dns()
    timer_lookups(d, rng, "updates.plain-vendor.com", answers=["151.101.3.3"])
    timer_lookups(d, rng, "q7x2k9m4w8z1.com", period=600, answers=["45.137.1.1"], qtype="TXT")
    d.add(T0 + np.sort(rng.uniform(0, 86400, 60)), TIMER, ["random.plain-vendor.org"] * 60, answers=["151.101.3.4"])
    found = kinds(run(d))
    plain = found[("periodic_lookups", "plain-vendor.com")]
    assert plain.severity == "info" and plain.src_ip == TIMER
    (name,) = plain.evidence["names"]
    assert name["lookups"] == 72  # A + AAAA of one lookup count once
    assert name["period_s"] == pytest.approx(300, rel=0.03)
    odd = found[("periodic_lookups", "q7x2k9m4w8z1.com")]
    assert severity_rank(odd.severity) >= severity_rank("medium")
    assert odd.evidence["score_parts"]["generated_domain"] == 1.0
    assert ("periodic_lookups", "plain-vendor.org") not in found


def test_periodic_name_shared_by_many_hosts_is_not_examined():
    d = Dns()
    for i in range(5):
        d.add(T0 + i + np.arange(72) * 300.0, f"10.2.0.{i}", ["telemetry.vendor-x.com"] * 72, answers=["151.101.3.3"])
    assert run(d) == []


def test_allowlisted_tunnel_domain_is_info():
    rng = np.random.default_rng(7)
    d = Dns()
    tunnel(d, rng, n=200)
    (f,) = run(d, Settings(allowlist=Allowlist(domains=("*.evil-sync.com",))))
    assert f.severity == "info" and f.evidence["allowlisted_by"] == ["domain:*.evil-sync.com"]


def test_entropy_is_bits_per_character():
    assert entropy(["aaaa", "abab", "abcd", ""]).tolist() == [0.0, 1.0, 2.0, 0.0]


def test_flux_counts_asns_when_intel_is_configured(tmp_path):
    """With an IP-to-ASN table the spread is measured in ASNs: forty /16s of one AS is a CDN, not a botnet."""
    rng = np.random.default_rng(8)
    d = Dns()
    botnet = flux(d, rng, name="flux-botnet.top")
    one_as = flux(d, rng, name="big-cloud-app.com")
    rows = []
    for i, prefix in enumerate(sorted({".".join(a.split(".")[:2]) for a in botnet})):
        rows.append(f"{prefix}.0.0\t{prefix}.255.255\t{64500 + i}\tZZ\tRESIDENTIAL-ISP-{i}")
    for prefix in sorted({".".join(a.split(".")[:2]) for a in one_as} - {r.split(".0.0")[0] for r in rows}):
        rows.append(f"{prefix}.0.0\t{prefix}.255.255\t16509\tUS\tAMAZON-02")
    table = tmp_path / "ip2asn-v4.tsv"
    table.write_text("\n".join(sorted(rows, key=lambda r: tuple(int(x) for x in r.split("\t")[0].split(".")))) + "\n")
    found = kinds(run(d, Settings(intel={"asn_files": [str(table)]})))
    bot = found[("fast_flux", "flux-botnet.top")]
    assert bot.evidence["asns"] == bot.evidence["networks_16"] == 40
    assert bot.severity in ("high", "critical")
    cloud = found[("fast_flux", "big-cloud-app.com")]
    assert cloud.evidence["asns"] == 1 and cloud.evidence["networks_16"] == 40
    assert cloud.evidence["address_classes"] == {"cloud": 100}  # AS16509 in the built-in ASN table
    assert cloud.severity == "low" and cloud.evidence["score_parts"]["networks"] == 0.0


def test_no_dns_data_means_no_findings():
    """A workspace with connections only (Defender, CEF, Argus) has an empty dns table."""
    from bothunt.detections import dga

    empty = tables_from_arrow()
    assert dns_c2.detect(empty, Settings()) == [] and dga.detect(empty, Settings()) == []
    d = Dns()
    d.add(T0 + np.arange(20.0), USER, [f"probe{i}" for i in range(20)], "NXDOMAIN")  # single labels only
    assert run(d) == [] and dga.detect(tables_from_arrow(dns=d.table()), Settings()) == []


def test_keep_values_uses_a_join_for_long_lists():
    from bothunt.detections.dns_names import ISIN_MAX, keep_values

    d = Dns()
    d.add(T0 + np.arange(700.0), USER, [f"n{i}.example.org" for i in range(700)])
    t = tables_from_arrow(dns=d.table())
    for k in (10, ISIN_MAX + 100):
        wanted = [f"n{i}.example.org" for i in range(0, 2 * k, 2)]
        got = t.to_arrow(keep_values(t.dns, "query", wanted).select("query"))["query"].to_pylist()
        assert sorted(got) == sorted(wanted)
