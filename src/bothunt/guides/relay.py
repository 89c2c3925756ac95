"""Guide for `relay` findings: an internal device that forwards Internet sessions to other Internet hosts
(a node of an Operational Relay Box network)."""

from __future__ import annotations

from bothunt.guides import Guide
from bothunt.guides.common import top_values
from bothunt.schema import Finding

RELAY = Guide(
    key="relay",
    summary=("{who} accepted sessions from {operator_count} Internet address(es) and, seconds later, opened "
             "sessions to {target_count} other Internet host(s), from {first_seen} to {last_seen}: it relays "
             "traffic for someone else (an ORB / proxy node)."),
    check_first=(
        "What {who} is: a reverse proxy, load balancer, VPN gateway or mail relay forwards by design; a "
        "workstation, a NAS, a camera, a router or an ordinary server does not.",
        "Which program listens and forwards: {process} on the inbound port(s) {inbound_ports}. An unknown "
        "listener on an odd high port that also opens the outbound legs is a proxy implant (SOCKS, frp, "
        "a modified dropbear, a router backdoor).",
        "Who feeds it and where it goes: operators {operators}; targets {targets}. A handful of VPS or "
        "residential operators feeding many unrelated targets is the ORB shape; thousands of clients to one "
        "origin is a service.",
        "How it got there: the device's exposure (open management ports, default or reused credentials, an "
        "unpatched edge appliance) and any inbound brute force against it before {first_seen}.",
    ),
    false_positives=(
        "Reverse proxies and load balancers: outbound legs go mostly to internal back ends with matching "
        "bytes, and the device is documented as one; add it to known_relays with the reason.",
        "VPN gateways and mail relays: long tunnels or SMTP in, SMTP out to the next hop; add to known_relays.",
        "Web applications calling one external API per request: many clients, one or two targets; the "
        "fan-out to many unrelated targets is what a benign application does not show.",
    ),
    collect=(
        "The listening process, its binary, configuration and start time on {who}; for an appliance, its "
        "configuration, firmware version and admin login history.",
        "The paired inbound and outbound sessions with lags and bytes (pivot queries below), and who the "
        "targets are: other organisations' addresses mean {who} attacked or scanned them on someone's behalf.",
        "Authentication logs of {who} for the weeks before {first_seen}: how the operators got access.",
    ),
    contain=(
        "Isolate {who} or block its inbound exposure at the edge; block the operator addresses ({operators}).",
        "Reset every credential stored on or used to manage {who}; for an appliance, apply the vendor's "
        "compromise guidance (factory reset, firmware re-flash from a trusted image).",
        "Tell the owners of the targets when the relayed traffic was an attack on them (through your CERT).",
    ),
    escalate=(
        "Always when the device is not a documented relay: your infrastructure is being rented out as attack "
        "infrastructure, which carries legal and reputational exposure.",
        "Immediately when {who} also beacons or holds credentials to other systems, or the targets are "
        "government, defence or critical-infrastructure networks (nation-state ORB use).",
    ),
)


def guide(f: Finding) -> Guide:
    return RELAY


def values(f: Finding) -> dict[str, str]:
    ev = f.evidence
    out = {
        "operator_count": str(ev.get("operator_count", "")),
        "target_count": str(ev.get("target_count", "")),
        "operators": top_values(ev.get("operators")),
        "targets": top_values(ev.get("target_names")) or top_values(ev.get("targets")),
        "inbound_ports": top_values(ev.get("inbound_ports")),
    }
    return {k: v for k, v in out.items() if v}
