"""Benign background and its traps: strict periodicity, Poisson polling, diurnal browsing, monitoring
agents, Chrome probes, search-suffix NXDOMAIN noise, AV lookups, the web surge, the reverse proxy and
VPN gateway relaying, and a device on every connection."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bothunt.simulate import prepare
from bothunt.simulate.benign import background
from bothunt.simulate.benign_edge import surge_window
from bothunt.simulate.frames import BG, UDP, concat
from bothunt.simulate.net import is_internal
from bothunt.simulate.org import PROCS, ROLE_SERVER

HOUR = 3600.0


@pytest.fixture(scope="module")
def day():  # type: ignore[no-untyped-def]
    sim, _, _ = prepare(seed=9, hosts=60, days=1.0, scale=0.2)
    parts = [background(sim, sim.t_start + h * HOUR, sim.t_start + (h + 1) * HOUR) for h in range(24)]
    return sim, concat([p[0] for p in parts], "conn"), concat([p[1] for p in parts], "dns")


def rows(frame, kind: str):  # type: ignore[no-untyped-def]
    return frame.take(frame["scen"] == BG[kind])


def per_device_intervals(c, sni: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    sel = c.take(c["sni"] == sni)
    return [np.diff(np.sort(sel["ts"][sel["dev"] == d])) for d in np.unique(sel["dev"])]


def test_every_connection_belongs_to_a_device(day) -> None:  # type: ignore[no-untyped-def]
    sim, c, q = day
    assert (c["dev"] >= 0).all() and (q["dev"] >= 0).all()
    dev_ip = sim.org.ips[c["dev"]]
    assert ((dev_ip == c["src"]) | (dev_ip == c["dst"])).all()


def test_os_telemetry_is_strictly_periodic_on_most_hosts(day) -> None:  # type: ignore[no-untyped-def]
    sim, c, _ = day
    settings = sim.world.index["settings-win.data.microsoft.com"]
    ivs = per_device_intervals(c, settings)
    assert len(ivs) >= len(sim.roles["windows"]) - 1
    flat = np.concatenate(ivs)
    assert np.abs(flat - 1800).max() < 1800 * 0.002 * 2 * np.sqrt(3)
    ntp = c.take((c["dport"] == 123) & (c["proto"] == UDP) & np.isin(c["dev"], sim.roles["ws"]))
    for d in np.unique(ntp["dev"])[:10]:
        assert np.allclose(np.diff(np.sort(ntp["ts"][ntp["dev"] == d])), 3600, atol=1e-3)


def test_monitoring_agents_heartbeat_from_servers(day) -> None:  # type: ignore[no-untyped-def]
    sim, c, _ = day
    m = rows(c, "monitoring")
    assert (sim.org.roles[m["dev"]] == ROLE_SERVER).all()
    names = {sim.world.names[i] for i in np.unique(m["sni"])}
    assert names == {"app.datadoghq.com", "collector.newrelic.com", "xyz83612.live.dynatrace.com"}
    procs = {PROCS[i].file for i in np.unique(m["proc"])}
    assert procs == {"datadog-agent.exe", "newrelic-infra.exe", "oneagentwatchdog.exe"}
    for iv in per_device_intervals(c, sim.world.index["app.datadoghq.com"]):
        assert np.median(iv) == pytest.approx(20.0, abs=0.5)


def test_chat_polling_is_poisson_like(day) -> None:  # type: ignore[no-untyped-def]
    sim, c, _ = day
    teams = sim.world.index["presence.teams.microsoft.com"]
    sel = c.take(c["sni"] == teams)
    office = (np.mod(sel["ts"], 86400) >= 9 * HOUR) & (np.mod(sel["ts"], 86400) < 12 * HOUR)
    sel = sel.take(office)
    ivs = np.concatenate([np.diff(np.sort(sel["ts"][sel["dev"] == d])) for d in np.unique(sel["dev"])])
    assert np.mean(ivs) == pytest.approx(60, rel=0.15)
    assert np.std(ivs) / np.mean(ivs) == pytest.approx(1.0, abs=0.15)  # exponential, not periodic


def test_browsing_is_diurnal_and_heavy_tailed(day) -> None:  # type: ignore[no-untyped-def]
    _, c, _ = day
    b = rows(c, "browse")
    hour = (np.mod(b["ts"], 86400) // HOUR).astype(int)
    per_hour = np.bincount(hour, minlength=24)
    assert per_hour[10] > 20 * max(per_hour[3], 1)
    counts = np.sort(np.unique(b["sni"], return_counts=True)[1])[::-1]
    assert counts[:10].sum() > 0.2 * counts.sum() and counts.size > 300  # a head and a long tail
    assert {PROCS[i].file for i in np.unique(b["proc"])} == {"chrome.exe", "msedge.exe"}


def test_dns_noise_that_looks_like_dga_or_tunnelling(day) -> None:  # type: ignore[no-untyped-def]
    sim, _, q = day
    probes = rows(q, "chrome_probe")
    names = probes["query"].to_pylist()
    assert len(names) >= 3 * len(sim.roles["ws"])
    assert all(re.fullmatch(r"[a-z]{10}", n) for n in names) and (probes["rcode"] == 3).all()
    noise = rows(q, "nxdomain")
    assert set(np.unique(noise["dev"])) <= set(sim.roles["misconfigured"].tolist()) and (noise["rcode"] == 3).all()
    assert "intranet.corp.example.com.corp.local" in noise["query"].to_pylist()
    av = rows(q, "av_lookup")["query"].to_pylist()
    assert av and all(re.fullmatch(r"[0-9a-f]{32}\.p\.sophosxl\.net", n) for n in av)
    assert all(n.endswith(".zen.spamhaus.org") for n in rows(q, "dnsbl")["query"].to_pylist())
    assert all(n.endswith(".in-addr.arpa") for n in rows(q, "reverse")["query"].to_pylist())


def test_web_surge_many_sources_normal_behaviour(day) -> None:  # type: ignore[no-untyped-def]
    sim, c, _ = day
    s = rows(c, "web_surge")
    a, b = surge_window(sim)
    assert (s["ts"] >= a).all() and (s["ts"] < b + 120).all()
    assert len(np.unique(s["src"])) > 400 and (s["cstate"] == 0).all()
    assert set(np.unique(s["dst"])) == {sim.org.ip_of("web-01")}


def test_reverse_proxy_and_vpn_relay_legitimately(day) -> None:  # type: ignore[no-untyped-def]
    sim, c, _ = day
    rp = rows(c, "rproxy")
    ip = sim.org.ip_of("rproxy-01")
    inbound, outbound = rp.take(rp["dst"] == ip), rp.take(rp["src"] == ip)
    assert len(inbound) == len(outbound) > 0
    assert np.array_equal(outbound["bout"] - inbound["bout"], np.full(len(inbound), 310))
    public = ~is_internal(outbound["dst"])
    assert 0.1 < public.mean() < 0.3 and len(np.unique(outbound["dst"][public])) <= 2
    vpn = rows(c, "vpn")
    gw = sim.org.ip_of("vpn-01")
    assert (vpn["dport"][vpn["dst"] == gw] == 1194).all() and (~is_internal(vpn["dst"][vpn["src"] == gw])).all()
    p2p = rows(c, "p2p")
    assert (is_internal(p2p["dst"]) & ~is_internal(p2p["src"])).any() and (is_internal(p2p["src"])).any()


def test_scale_multiplies_human_volume_not_periodic_services() -> None:
    sim1, _, _ = prepare(seed=9, hosts=60, days=1.0, scale=0.5)
    sim2, _, _ = prepare(seed=9, hosts=60, days=1.0, scale=1.0)
    t0 = sim1.t_start + 9 * HOUR
    c1 = concat([background(sim1, t0 + h * HOUR, t0 + (h + 1) * HOUR)[0] for h in range(3)], "conn")
    c2 = concat([background(sim2, t0 + h * HOUR, t0 + (h + 1) * HOUR)[0] for h in range(3)], "conn")
    assert len(rows(c2, "browse")) / len(rows(c1, "browse")) == pytest.approx(2.0, rel=0.15)
    assert len(rows(c2, "telemetry")) == len(rows(c1, "telemetry"))
