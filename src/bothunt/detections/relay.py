"""ORB relay nodes: an internal device that accepts sessions from the Internet and, within seconds and
while they are open, opens sessions to *other* Internet hosts.

The published rule joins every inbound-accepted event of a device with every outbound event of the same
device in the next 5 minutes (outbound not to 80/443/53, another address), and alerts at 3 pairs per
device and process. The join is quadratic, 443 is where relays hide, and any busy server that both
serves and calls out fires by coincidence. This detection joins each outbound leg only with the device's
inbound sessions a few seconds around it (relay_join.py), and separates relaying from coincidence by
comparing, per device, how many outbound legs start just *after* an inbound session with how many start
just *before* one (alike under coincidence), alongside the rate-based expectation, lag, byte and
duration symmetry of the two legs, the same process on both legs, fan-in and fan-out, and ports.
`profile: sentinel-kql` reproduces the published rule instead (relay_kql.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from bothunt.config import Settings
from bothunt.detections import relay_kql, relay_report
from bothunt.detections.base import DetectionInfo, param
from bothunt.detections.flood_queries import US, materialized
from bothunt.detections.relay_join import device_counts, device_totals, inbound_legs, nearest, outbound_legs, pairs
from bothunt.engine import Tables
from bothunt.schema import Finding

ID = "relay"

INFO = DetectionInfo(
    id=ID,
    title="ORB relay node: Internet sessions relayed through an internal device",
    techniques=("T1583.005", "T1090", "T1090.003", "T1584.008"),
    summary=("An internal device accepts sessions from Internet addresses (the operators or the previous hop) "
             "and, within seconds and while those sessions are open, opens sessions to other Internet hosts "
             "(the targets), far more often right after an inbound session than right before one. The device "
             "is a node of an Operational Relay Box network: a compromised server, SOHO router or IoT device "
             "rented out as a proxy hop (T1090.003). A network appliance in that role is also T1584.008."),
    false_positives=(
        "Reverse proxies and load balancers forward every request at once with matching bytes: they relay by "
        "design. Their outbound legs mostly go to internal backends (the finding says so and scores low); "
        "list them in `known_relays` with the reason.",
        "VPN gateways carry users' traffic to the Internet; the tunnels are long and their starts do not "
        "line up with the outbound legs, but list the gateway in `known_relays` all the same.",
        "Web applications that call one external API per request (payments, SaaS back ends): many clients, "
        "one or two targets; the fan-out is what the score weighs.",
        "Mail relays (inbound SMTP followed by outbound SMTP to the next hop) and peer-to-peer clients.",
    ),
    triage=(
        "Look at the operators (inbound sources): a handful of VPS or residential addresses feeding one device "
        "is the ORB shape; thousands of clients is a service.",
        "Look at the targets: many unrelated Internet hosts, often on 443, is relaying for someone else.",
        "On Defender data, check the process on both legs and its binary: an unknown listener on an odd high "
        "port that also opens the outbound legs is a proxy implant.",
        "Byte symmetry near 1 between the legs means the device forwards the traffic unchanged.",
    ),
    references=(
        "https://attack.mitre.org/techniques/T1090/003/",
        "https://attack.mitre.org/techniques/T1584/008/",
        "https://cloud.google.com/blog/topics/threat-intelligence/china-nexus-espionage-orb-networks",
    ),
)


@dataclass(frozen=True)
class Params:
    window_seconds: float = param(5.0, "Join window W: an outbound leg pairs with the device's inbound sessions "
                                       "that started at most this long before it (and, for the coincidence "
                                       "control, after it).")
    lag_scales: tuple[float, ...] = param((0.1, 0.5, 2.0), "Lags (seconds, below W) at which legs after an "
                                                           "inbound session are compared with legs before one.")
    grace_seconds: float = param(1.0, "An outbound leg counts as opened while the inbound session was open up "
                                      "to this long after the inbound one ended.")
    ignore_outbound_ports: tuple[int, ...] = param((53, 123, 5353), "Outbound ports never counted as a relayed "
                                                                    "leg (the device's own DNS and time).")
    min_pairs: int = param(3, "Outbound legs to public targets within W after an inbound session a device "
                              "needs (the published rule's 3).")
    max_p_value: float = param(1e-3, "Largest chance of the observed after-inbound excess under coincidence "
                                     "(Poisson, Bonferroni over the lag scales) that is still reported.")
    report_coincidence: bool = param(False, "Also report, at info, devices with enough pairs whose excess is "
                                            "explained by coincidence (what the published rule would raise).")
    proxy_ports: tuple[int, ...] = param((1080, 1081, 3128, 3129, 8080, 8081, 8118, 8888, 9050, 9150, 8000),
                                         "Inbound ports of SOCKS and HTTP proxies.")
    known_relays: tuple[str, ...] = param((), "Devices that relay by design, as 'host, address or CIDR = "
                                              "reason' (load balancers, reverse proxies, VPN gateways); their "
                                              "findings drop to info and show the reason.")
    top: int = param(10, "How many operators, targets and ports a finding lists.")
    max_pairs_fetched: int = param(200_000, "Cap on forward pairs brought into numpy per run for the evidence.")
    kql_sources: tuple[str, ...] = param(("defender",), "sentinel-kql profile: source formats that stand for "
                                                        "DeviceNetworkEvents (empty: every source).")
    kql_window_minutes: float = param(5.0, "sentinel-kql profile: the join window after an inbound event.")
    kql_excluded_ports: tuple[int, ...] = param((80, 443, 53), "sentinel-kql profile: outbound ports the "
                                                               "published rule drops.")
    kql_min_events: int = param(3, "sentinel-kql profile: pairs per device and process to alert.")


def detect(tables: Tables, settings: Settings) -> list[Finding]:
    p = settings.params(Params, ID)
    if settings.profile == "sentinel-kql":
        return relay_kql.detect(tables, settings, p)
    inb = inbound_legs(tables.conn)
    out = outbound_legs(tables.conn, p.ignore_outbound_ports)
    scales = [s for s in sorted(set(p.lag_scales)) if 0 < s < p.window_seconds] + [p.window_seconds]
    with materialized(tables, pairs(inb, out, p.window_seconds)) as pr:
        counts = tables.to_arrow(device_counts(nearest(pr), [int(s * US) for s in scales]))
        if counts.num_rows == 0:
            return []
        totals = tables.to_arrow(device_totals(inb, out, counts["dev"].to_pylist()))
        devices = relay_report.significance(counts, totals, scales, p)
        chosen = [d for d in devices if d["prev_pub"] >= p.min_pairs
                  and (d["p_value"] <= p.max_p_value or p.report_coincidence)]
        if not chosen:
            return []
        fwd = pr.filter(pr.dev.isin([d["dev"] for d in chosen]) & (pr.lag >= 0) & (pr.lag <= max(scales) * US))
        # a total order with nulls filled, so the cap cuts the same rows on every engine
        keys = [fwd.dev, fwd.t_out, fwd.tgt, fwd.out_port.fill_null(-1), fwd.out_sport.fill_null(-1), fwd.lag,
                fwd.origin, fwd.t_in]
        fwd = tables.to_arrow(fwd.order_by(keys).limit(p.max_pairs_fetched))
    return relay_report.findings(fwd, chosen, p, settings)
