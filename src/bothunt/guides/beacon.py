"""Guide for `beacon` findings: one host (process) calling one destination at a rhythm, or a rhythm shared
by much of the fleet."""

from __future__ import annotations

from bothunt.guides import Guide
from bothunt.guides.common import dur, listing, pct
from bothunt.schema import Finding

PAIR = Guide(
    key="beacon",
    summary=("{who} ({process}) called {destination} about every {period} with {jitter} jitter from {first_seen} "
             "to {last_seen}: the check-in loop of an implant until shown to be a known service."),
    check_first=(
        "Which program: on {who}, find the process that opened the connections ({process}, command line: "
        "{cmdline}), its path, signer, parent and start time. A signed system binary (svchost.exe, rundll32.exe, "
        "powershell.exe) calling a rare destination points to injection or a living-off-the-land loader; an "
        "unsigned binary in a user-writable folder (AppData, Temp, ProgramData) points to an implant.",
        "Which destination: look up {destination} (addresses seen: {dst_ips}): domain age and registrar, "
        "reputation, hosting provider, TLS certificate (self-signed, a fresh free certificate on a young "
        "domain), and how many other hosts talk to it ({prevalence}).",
        "How regular: {connections} connections over {span}, {failed} of them failed. A program keeps a rhythm "
        "through nights and weekends while nobody is logged on; a person does not.",
        "What started it: a download, an e-mail attachment, a new service or scheduled task, or a new logon on "
        "{who} shortly before {first_seen}.",
    ),
    false_positives=(
        "Update, telemetry and licence checks: the destination belongs to the software's vendor, the process is "
        "the vendor's signed agent, and many hosts share the rhythm. Allow-list the domain or the process.",
        "Monitoring, APM, backup, sync and VPN agents (Datadog, New Relic, Dynatrace, OneDrive, ...): the "
        "destination is the server named in the agent's configuration and the binary sits in its install folder.",
        "A browser tab that polls (web mail, dashboards, chat): the process is a browser, the destination a "
        "well-known SaaS, and the rhythm stops when the user logs off or closes the tab.",
        "Not benign: a rhythm that runs while the user is logged off, from a non-browser process, to a "
        "destination no other host contacts, or with many failed attempts (an implant retrying a dead server).",
    ),
    collect=(
        "The process tree of {process} on {who}: parent, command line, start time, signer, SHA-256, and the "
        "binary itself for a sandbox or reverse engineer.",
        "Every connection between {who} and {destination} from {first_seen} to {last_seen} (pivot queries "
        "below), the DNS answers for the name, proxy logs with URLs and user agents, and TLS fingerprints "
        "(JA3/JA4, certificate) where the sensor records them.",
        "Persistence on {who} created around {first_seen}: services, scheduled tasks, Run keys, WMI "
        "subscriptions, startup folders.",
        "A memory image of {who} before any reboot when injection is suspected (a system process calling out).",
    ),
    contain=(
        "Isolate {who} with the EDR (network containment keeps the EDR channel open); do not power it off "
        "before the memory image is taken.",
        "Block {destination} at the proxy, the DNS resolver (sinkhole the name) and the firewall (addresses: "
        "{dst_ips}); any other host that then hits the block is infected too.",
        "Reset the password of {user} and of every account that signed in to {who} since {first_seen}; revoke "
        "their sessions and tokens.",
        "Remove the implant and its persistence only after collection; rebuild {who} from a known-good image "
        "when the implant is confirmed.",
    ),
    escalate=(
        "To incident response when the process is unknown, unsigned or injected, or the destination is rare, "
        "young or on a bare address.",
        "Immediately when {who} also appears in DGA, DNS C2 or relay findings (see the host view), holds "
        "privileged credentials, or is a server; or when other hosts show the same destination or rhythm.",
    ),
)

FLEET = Guide(
    key="beacon/fleet",
    summary=("{fleet_hosts} hosts call {destination} at the same rhythm (about every {period}): usually a "
             "service installed across the fleet; a spreading infection if that software is not expected."),
    check_first=(
        "Which software: the processes making the calls ({processes}) and whether IT deployed it to these hosts.",
        "Which destination: is {destination} the vendor's documented endpoint (its documentation, the agent's "
        "configuration)? A young or unrelated domain is not a vendor service.",
        "Which hosts: {hosts_sample}. Hosts outside the software's deployment group are the ones to look at.",
    ),
    false_positives=(
        "OS, browser and productivity telemetry, update and licence services are fleet-wide by design: "
        "allow-list the domain so the finding drops to info.",
        "Not benign: a process that is not in the software inventory, or a destination that changed recently "
        "across all hosts at once (a supply-chain compromise looks fleet-wide too).",
    ),
    collect=(
        "The software inventory entry and deployment record for the process, and the list of all hosts "
        "contacting {destination} (pivot queries below).",
    ),
    contain=(
        "If the software is not sanctioned: block {destination} at the proxy and DNS, and remove the software "
        "with the deployment tool on all hosts at once.",
    ),
    escalate=(
        "When the software is unknown to IT, or the vendor confirms the endpoint is not theirs: treat as a "
        "fleet-wide incident.",
    ),
)


def guide(f: Finding) -> Guide:
    return FLEET if f.evidence.get("fleet") else PAIR


def values(f: Finding) -> dict[str, str]:
    ev = f.evidence
    prev = ev.get("prevalence") or {}
    period = ev.get("period_s") or ev.get("median_period_s") or ev.get("median_interval_s")
    jitter = ev.get("jitter_pct") if ev.get("jitter_pct") is not None else ev.get("median_jitter_pct")
    out = {
        "period": dur(period),
        "jitter": "" if jitter is None else f"{float(jitter):.0f}%",
        "span": dur(float(ev["span_hours"]) * 3600) if ev.get("span_hours") is not None else "",
        "connections": str(ev.get("connections", "")),
        "failed": pct(ev.get("failed_share")),
        "dst_ips": listing(ev.get("dst_ips") or [f.dst_ip]),
        "prevalence": (f"{prev.get('hosts')} of {prev.get('total_hosts')} hosts contact it at a rhythm"
                       if prev.get("hosts") is not None else ""),
        "fleet_hosts": str(prev.get("hosts", "")),
        "processes": listing(ev.get("processes") or []),
        "hosts_sample": listing(ev.get("hosts_sample") or [], 8),
    }
    return {k: v for k, v in out.items() if v}
