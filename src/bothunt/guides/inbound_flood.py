"""Guide for `inbound_flood` findings: distributed floods, credential stuffing and spam runs, single
sources brute-forcing or hammering a service, and scans. The variant follows `evidence.category`."""

from __future__ import annotations

from bothunt.guides import Guide
from bothunt.guides.common import pct, top_values
from bothunt.schema import Finding

_BLOCK_ALLOWED = ("Before blocking, check the sources against your own scanners, monitoring services and "
                  "partners (allowlist.cidrs) so the block does not cut off a hired test.")

STUFFING = Guide(
    key="inbound_flood/stuffing",
    summary=("{sources} sources made {attempts} login attempts against {service} from {first_seen} to "
             "{last_seen}: credential stuffing or password spraying from a botnet."),
    check_first=(
        "Did any attempt succeed? Outcomes: {outcomes}. Accepted sessions on a login port mean some attempts "
        "reached authentication: search the service's own logs (sshd, RDP/Windows 4624/4625, VPN, web login) "
        "for successful logins from the campaign's sources ({top_sources}).",
        "Which accounts were tried: many accounts with one or two passwords each is spraying; many "
        "username/password pairs is stuffing with leaked credentials.",
        "Is {service} meant to be reachable from the Internet at all? An exposed RDP, SSH or database port is "
        "the finding's real cause.",
    ),
    false_positives=(
        "A penetration test or a vulnerability scan you ordered: the sources match the tester's published "
        "addresses and the timing matches the engagement.",
        "Many legitimate users arriving at once (a migration, a new VPN portal): attempts per source stay near "
        "the service's baseline and logins succeed on the first try.",
    ),
    collect=(
        "The service's authentication log for {first_seen} to {last_seen}: accounts tried, successes, source "
        "addresses; the firewall log for the sources (pivot queries below).",
        "For every account with a success from a campaign source: its sign-in history and activity since.",
    ),
    contain=(
        "Reset the password of every account that logged in from a campaign source, revoke its sessions, and "
        "require MFA on {service}.",
        "Rate-limit or geo-restrict the login; put {service} behind the VPN if it does not need to be public.",
        "Block the busiest sources at the edge ({top_sources}); a botnet rotates addresses, so blocking by "
        "reputation list or rate limit outlasts single-address blocks. " + _BLOCK_ALLOWED,
    ),
    escalate=(
        "Immediately when any campaign source logged in successfully, or {target} later shows beacon, relay or "
        "DNS findings (a brute-forced device turned into a relay is the ORB pattern).",
        "When the service is a domain controller, VPN or mail gateway: accounts there reach everything.",
    ),
)

FLOOD = Guide(
    key="inbound_flood/flood",
    summary=("{sources} sources sent {attempts} connections to {service} from {first_seen} to {last_seen}, far "
             "above the service's own history: a flood from a botnet."),
    check_first=(
        "Is the service degraded? Check availability and latency of {service} during the campaign; the peak "
        "bin is in the evidence.",
        "How the sources behave: attempts per source far above the baseline, one URL or request repeated, odd "
        "user agents, and many failures are bots; visitors after a launch or a news mention browse normally.",
        "Outcomes: {outcomes}.",
    ),
    false_positives=(
        "A launch, a campaign or a news mention: new sources, but each makes about as many requests as usual "
        "and nothing fails.",
        "A load test you ordered, or a monitoring service polling from many regions: allow-list its addresses.",
    ),
    collect=(
        "Web server, load balancer or WAF logs for the campaign window with URLs, user agents and response "
        "codes; the per-bin counts and top sources (pivot queries below).",
    ),
    contain=(
        "Turn on the WAF's or CDN's rate limiting / bot protection for {service}; ask the upstream provider "
        "for scrubbing if the link is saturated.",
        "Block or challenge the busiest sources ({top_sources}). " + _BLOCK_ALLOWED,
    ),
    escalate=(
        "When the service is degraded or down, when the flood coincides with other attacks on the same host "
        "(a flood can cover an intrusion), or when it returns after blocking.",
    ),
)

SPAM = Guide(
    key="inbound_flood/spam",
    summary=("{sources} sources delivered {attempts} connections to the mail service {service} from "
             "{first_seen} to {last_seen}: a spam or phishing run from a botnet."),
    check_first=(
        "What got through: the mail gateway's verdicts for these sources; accepted messages and their "
        "recipients. Outcomes: {outcomes}.",
        "Payloads: links and attachments in the accepted messages; did anyone click or open them?",
    ),
    false_positives=(
        "A partner's bulk delivery or a wave of replies to a newsletter: the senders are known domains with "
        "valid SPF/DKIM and the messages are expected.",
    ),
    collect=(
        "Message trace for the campaign sources (senders, subjects, recipients, verdicts) and the URLs and "
        "attachments in delivered messages.",
    ),
    contain=(
        "Purge delivered messages from mailboxes, block the sending addresses and domains at the gateway, and "
        "block the URLs at the proxy. " + _BLOCK_ALLOWED,
    ),
    escalate=(
        "When a recipient clicked a link or opened an attachment, or the messages impersonate your own "
        "organisation.",
    ),
)

SINGLE = Guide(
    key="inbound_flood/single",
    summary=("{attacker} made {attempts} attempts against {service} from {first_seen} to {last_seen}: one "
             "source brute-forcing or hammering a service."),
    check_first=(
        "Did it get in? Outcomes: {outcomes}. Search the service's authentication log for a success from "
        "{attacker}.",
        "Who is {attacker}: reputation, hosting provider or residential ISP, and whether it also appears in "
        "other findings (a bot of a larger campaign).",
    ),
    false_positives=(
        "Your own automation, a partner integration with a wrong password, or a scanner you hired: the address "
        "is yours or known; allow-list it.",
    ),
    collect=(
        "Authentication and firewall logs for {attacker} against {target} (pivot queries below).",
    ),
    contain=(
        "Block {attacker} at the edge. " + _BLOCK_ALLOWED,
        "If a login succeeded: reset that account, revoke its sessions, and look at what it did.",
    ),
    escalate=(
        "When a login from {attacker} succeeded, or {target} later shows beacon, relay or DNS findings.",
    ),
)

SCAN = Guide(
    key="inbound_flood/scan",
    summary=("{attacker} scanned {target} ({attempts} attempts) from {first_seen} to {last_seen}: "
             "reconnaissance that usually precedes brute force or exploitation."),
    check_first=(
        "What answered: the ports or hosts that accepted connections are what the scanner will attack next; "
        "check they are meant to be exposed and patched.",
        "Who is {attacker}: a research scanner (Shodan, Censys) or a botnet node; look for follow-up brute "
        "force from the same address or network.",
    ),
    false_positives=(
        "Vulnerability scanners you run or hired, and Internet-wide research scanners: allow-list your own; "
        "research scanners are noise but show what is exposed.",
    ),
    collect=(
        "The list of answered ports/hosts and the firewall log for {attacker} (pivot queries below).",
    ),
    contain=(
        "Close or restrict every answered port that does not need to be public; block {attacker}. "
        + _BLOCK_ALLOWED,
    ),
    escalate=(
        "When a scanned service is unpatched or follow-up brute force from the same source succeeds.",
    ),
)

_VARIANT = {
    "credential_stuffing": STUFFING, "low_and_slow_stuffing": STUFFING, "http_flood": FLOOD,
    "volumetric_flood": FLOOD, "spam": SPAM, "low_and_slow_spam": SPAM, "brute_force": SINGLE,
    "hammering": SINGLE, "spam_source": SINGLE, "sweep": SCAN, "port_scan": SCAN,
}


def guide(f: Finding) -> Guide:
    category = f.evidence.get("category")
    if category in _VARIANT:
        return _VARIANT[category]
    return FLOOD if f.evidence.get("distributed", f.src_ip is None) else SINGLE


def _outcomes(ev: dict) -> str:
    o = ev.get("outcomes")
    if not isinstance(o, dict):
        return ""
    parts = [f"{o.get(k)} {word}" for k, word in (("accepted", "accepted"), ("refused", "refused"),
                                                  ("unanswered", "unanswered"),
                                                  ("denied_by_firewall", "denied by the firewall"))
             if o.get(k) is not None]
    return ", ".join(parts)


def _port_name(port: object) -> str | None:
    from bothunt.detections.flood_ports import AUTH_PORTS

    return AUTH_PORTS.get(port) if isinstance(port, int) else None


def values(f: Finding) -> dict[str, str]:
    ev = dict(f.evidence)
    svc = ev.get("service") if isinstance(ev.get("service"), dict) else {}
    port = f.dst_port if f.dst_port is not None else svc.get("dst_port")
    target = f.dst_ip or svc.get("dst_ip") or ev.get("dst_scope")
    service = f"{target}:{port}" if target and port is not None else (target or "")
    words = [w for w in svc.get("sensor_services") or [] if isinstance(w, str) and w]
    name = _port_name(port) or (words[0] if words else None) or (svc.get("kind") if svc.get("kind") != "other"
                                                                 else None)
    out = {
        "service": service + (f" ({name})" if name else ""),
        "target": str(target or ""),
        "attacker": f.src_ip or "",
        "sources": str(ev.get("distinct_sources", "")),
        "attempts": str(ev.get("attempts", "")),
        "top_sources": top_values(ev.get("top_sources"), "ip"),
        "outcomes": _outcomes(ev),
        "failed": pct(ev.get("failed_share")),
    }
    return {k: v for k, v in out.items() if v}
