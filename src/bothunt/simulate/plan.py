"""What gets planted: the attack catalogue for a run (it depends on the span: slow beacons need days) and
the benign traps, each written to truth so an evaluation can tell a trap hit from a detection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bothunt.errors import ConfigError
from bothunt.simulate import net
from bothunt.simulate.attacks import Beacon, Planted, Relay, iso_ts
from bothunt.simulate.attacks_dns import Dga, DnsTunnel, FastFlux
from bothunt.simulate.attacks_inbound import InboundFlood, PortSweep
from bothunt.simulate.benign_edge import surge_window
from bothunt.simulate.context import DAY, Sim
from bothunt.simulate.frames import BACKGROUND
from bothunt.simulate.rand import rng_for
from bothunt.simulate.truth import ALL_FORMATS, DNS_FORMATS, NAMED_FORMATS, TruthItem

TRAP_ROLES = ("p2p", "backup", "licence", "misconfigured", "file_servers", "backends")

Scenario = Beacon | Relay | InboundFlood | PortSweep | Dga | DnsTunnel | FastFlux


def _victims(sim: Sim, role: str) -> list[int]:
    """Devices of a role that are not a benign trap, in a seed-determined order."""
    trap = set(np.concatenate([sim.roles[r] for r in TRAP_ROLES]).tolist())
    pool = [int(d) for d in sim.roles[role] if int(d) not in trap]
    return [pool[i] for i in rng_for(sim.seed, 4).permutation(len(pool))]


def catalogue(sim: Sim) -> list[Scenario]:
    ws, srv = _victims(sim, "ws"), _victims(sim, "srv")
    days = sim.span / DAY
    h = 3600.0
    out: list[Scenario] = [
        Beacon("beacon-01", ws[0], 10.0, window=(0.10, 0.35)),
        Beacon("beacon-02", srv[0], 60.0, 0.2, 0.1, process="AdobeARMhelper.exe", domain="cdn-telemetry-sync.com"),
        Beacon("beacon-03", ws[1], 300.0, 0.5, 0.2, port=8443, process="rundll32.exe"),
        Beacon("beacon-04", ws[2], 900.0, 0.1, business_hours=True, process="svchost.exe#c2",
               domain="settings-sync-win.com"),
        Beacon("beacon-05", ws[3], 120.0, 0.3, 0.05, process="msedge.exe", domain="d2x8kq4v7ztm1p.cloudfront.net",
               addresses=6, ttl=60),
        Beacon("beacon-06", ws[4], 30.0, 0.05, 0.3, port=4444, process="powershell.exe", window=(0.05, 0.6),
               outage=(0.4, 0.6), service=""),
        Beacon("beacon-07", srv[1], 4 * h, 0.1, port=443, process="AdobeARMhelper.exe", window=(0.0, 1.0)),
        Beacon("beacon-09", ws[5], h, 0.6, business_hours=True, port=8080, process="rundll32.exe", service="http"),
    ]
    if days >= 2:
        out.append(Beacon("beacon-08", srv[2], 6 * h, 0.05, port=443, process="msupdate.exe"))
    out += [
        Relay("relay-01", srv[3]),
        Relay("relay-02", ws[6], listen_port=8081, out_ports=(31337, 9001, 4433), sessions=150, window=(0.3, 0.8)),
        InboundFlood("flood-http", "http_flood", "web-01", 80, "http", 1500, 20.0, 600.0, 0.55),
        InboundFlood("stuff-ssh-fast", "ssh_stuffing", "bastion-01", 22, "ssh", 400, 15.0, 1200.0, 0.15),
        InboundFlood("stuff-rdp-fast", "rdp_stuffing", "rdgw-01", 3389, "rdp", 250, 12.0, 1800.0, 0.65),
        InboundFlood("stuff-ssh-slow", "ssh_stuffing", "bastion-01", 22, "ssh", 300, 2, 6 * h, 0.30, True),
        InboundFlood("stuff-rdp-slow", "rdp_stuffing", "rdgw-01", 3389, "rdp", 300, 2, 6 * h, 0.05, True),
        InboundFlood("spam-burst", "spam", "mail-01", 25, "smtp", 800, 6.0, 1800.0, 0.72),
        InboundFlood("brute-ssh-single", "ssh_bruteforce", "bastion-01", 22, "ssh", 1, 2000.0, 1800.0, 0.80),
        PortSweep("sweep-single", "vpn-01"),
        Dga("dga-random", ws[7], "random"),
        Dga("dga-dict", ws[8], "dict", bursts=7, burst_size=(30, 60), interval=3 * h, resolve_burst=1),
        DnsTunnel("dns-tunnel", ws[9]),
        FastFlux("fast-flux", (ws[10], ws[11])),
    ]
    return out


def family(s: Scenario) -> str:
    """The scenario family a planted item belongs to (the `scenario` field of its truth record, with
    both DGA styles under `dga`)."""
    if isinstance(s, InboundFlood):
        return s.scenario
    return {Beacon: "beacon", Relay: "relay", PortSweep: "port_sweep", Dga: "dga", DnsTunnel: "dns_tunnel",
            FastFlux: "fast_flux"}[type(s)]


def select(scenarios: list[Scenario], only: Sequence[str] | None) -> list[Scenario]:
    """Keep the scenarios named by id or by family; an unknown name is a ConfigError."""
    if only is None:
        return scenarios
    known = {s.id for s in scenarios} | {family(s) for s in scenarios}
    unknown = sorted(set(only) - known)
    if unknown:
        raise ConfigError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [s for s in scenarios if s.id in only or family(s) in only]


def build(sim: Sim, only: Sequence[str] | None = None) -> tuple[list[Planted], dict[str, int]]:
    """Register every scenario's infrastructure in the DNS world, freeze it, and generate the scenarios
    (all, or those named in `only`). Returns the planted items that are observable in the span and the
    scenario code of every name."""
    scenarios = catalogue(sim)
    chosen = {id(s) for s in select(scenarios, only)}
    taken = set(sim.world.addr.tolist()) if sim.world.frozen else {int(a) for arr in sim.world._addrs
                                                                     for a in arr.tolist()}
    rng = rng_for(sim.seed, 5)
    for s in scenarios:
        s.register(sim, taken, rng)
    sim.world.freeze()
    codes = {name: i for i, name in enumerate(BACKGROUND)}
    planted: list[Planted] = []
    for i, s in enumerate(scenarios):
        if id(s) not in chosen:
            continue
        code = len(BACKGROUND) + i
        p = s.generate(sim, code)
        if p is not None:
            codes[s.id] = code
            planted.append(p)
    return planted, codes


def _ips(sim: Sim, names: list[str]) -> list[str]:
    w = sim.world
    out: list[str] = []
    for n in names:
        d = w.index[n]
        out.extend(net.ip_text(a) for a in w.addr[w.addr_off[d]: w.addr_off[d] + w.addr_n[d]].tolist())
    return out


def traps(sim: Sim) -> list[TruthItem]:
    """Benign behaviour that looks like an attack, one record per (trap, detection it could fool)."""
    a, b = iso_ts(sim.t_start), iso_ts(sim.t_end)
    ips = lambda devs: [net.ip_text(sim.org.ips[d]) for d in devs]  # noqa: E731
    items: list[TruthItem] = []

    def add(tid: str, scenario: str, detection: str, match: dict[str, Any], formats: tuple[str, ...],
            start: str = a, end: str = b, **params: Any) -> None:
        items.append(TruthItem(tid, "benign", scenario, detection, match, start, end, params, formats))

    beacon_like = {
        "telemetry": ["settings-win.data.microsoft.com", "v10.events.data.microsoft.com"],
        "update": ["slscr.update.microsoft.com"],
        "monitoring": ["app.datadoghq.com", "collector.newrelic.com", "xyz83612.live.dynatrace.com"],
        "licence": ["licensing.flexnetoperations.com"],
        "chat": ["presence.teams.microsoft.com", "wss-primary.slack.com"],
        "backup": ["f001.backblazeb2.com"],
    }
    for kind, names in beacon_like.items():
        add(f"trap-{kind}", kind, "beacon", {"domain": names}, NAMED_FORMATS)
        add(f"trap-{kind}-ip", kind, "beacon", {"dst_ip": _ips(sim, names)}, ALL_FORMATS)
    add("trap-ntp", "ntp", "beacon", {"dst_port": 123}, ALL_FORMATS)
    add("trap-p2p-beacon", "p2p", "beacon", {"src_ip": ips(sim.roles["p2p"])}, ALL_FORMATS)
    add("trap-p2p-relay", "p2p", "relay", {"src_ip": ips(sim.roles["p2p"])}, ALL_FORMATS)
    add("trap-vpn-relay", "vpn", "relay", {"src_ip": ips([sim.dev("vpn-01")])}, ALL_FORMATS)
    add("trap-rproxy-relay", "rproxy", "relay", {"src_ip": ips([sim.dev("rproxy-01")])}, ALL_FORMATS)
    s0, s1 = surge_window(sim)
    add("trap-web-surge", "web_surge", "inbound_flood", {"dst_ip": ips([sim.dev("web-01")])}, ALL_FORMATS,
        iso_ts(s0), iso_ts(s1), sources=3000)
    add("trap-nxdomain", "nxdomain", "dga", {"src_ip": ips(sim.roles["misconfigured"])}, DNS_FORMATS)
    add("trap-chrome-probe", "chrome_probe", "dga", {"src_ip": ips(sim.roles["ws"])}, DNS_FORMATS)
    cdn = ["cloudfront.net", "akamaiedge.net", "azureedge.net"]
    add("trap-cdn-dga", "cdn", "dga", {"domain": cdn}, DNS_FORMATS)
    add("trap-cdn-flux", "cdn", "dns_c2", {"domain": [*cdn, "pool.ntp.org", "windowsupdate.com"]}, DNS_FORMATS)
    add("trap-av-lookup", "av_lookup", "dns_c2", {"domain": "sophosxl.net"}, DNS_FORMATS)
    add("trap-dnsbl", "dnsbl", "dns_c2", {"domain": "spamhaus.org"}, DNS_FORMATS)
    add("trap-reverse", "reverse", "dns_c2", {"domain": "in-addr.arpa"}, DNS_FORMATS)
    add("trap-reverse-dga", "reverse", "dga", {"domain": "in-addr.arpa"}, DNS_FORMATS)
    return items
