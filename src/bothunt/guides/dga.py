"""Guide for `dga` findings: a host cycling through machine-generated domains, perhaps with the live C2
it found."""

from __future__ import annotations

from bothunt.guides import Guide
from bothunt.guides.common import listing
from bothunt.schema import Finding

DGA = Guide(
    key="dga",
    summary=("{who} failed to resolve {failed_domains} rare domains that look machine-generated, in {bursts} "
             "burst(s) from {first_seen} to {last_seen}: a bot's domain-generation algorithm looking for its "
             "command server. Live C2: {live_c2}."),
    check_first=(
        "Which process makes the lookups on {who}: Sysmon event 22, the EDR's DNS events, or the DNS client "
        "log; a browser rarely fails on dozens of random names in a minute, an implant does.",
        "The names: {sample_names}. The same length and alphabet, or word pairs, in every burst is an "
        "algorithm; a few typos are not.",
        "Did one resolve and get used? Live C2: {live_c2}. A generated name that resolved and that {who} then "
        "connected to is the active command server.",
    ),
    false_positives=(
        "Mail servers checking the sender domains of a spam run, crawlers, link checkers and security tools "
        "that resolve lists of domains: the host's role explains it and the names are real domains that "
        "expired, not random strings. Allow-list the host's address.",
        "A resolver or proxy logged as the source of its clients' lookups: hunt on the client-side logs.",
        "Misconfigured search suffixes fail steadily for a handful of names, never in bursts of new ones.",
    ),
    collect=(
        "The process that made the lookups (path, signer, hash, parent) and the binary; its persistence.",
        "All DNS lookups of {who} around the bursts (pivot queries below) and the connections it made right "
        "after any successful lookup.",
    ),
    contain=(
        "Isolate {who} with the EDR once the process is identified.",
        "Sinkhole or block the live C2 domain and its addresses ({live_c2}); block the algorithm's future "
        "domains with a DGA-aware DNS filter if the family is known.",
        "Reset the credentials of accounts used on {who} since {first_seen}.",
    ),
    escalate=(
        "Immediately when a live C2 was found (the bot reached its operator), when {who} also beacons or "
        "relays, or when other hosts fail on the same names (more infected hosts).",
    ),
)


def guide(f: Finding) -> Guide:
    return DGA


def values(f: Finding) -> dict[str, str]:
    ev = f.evidence
    names = [s.get("name") or s.get("domain") for s in ev.get("sample_names") or [] if isinstance(s, dict)]
    live = ev.get("live_c2") or []
    live_text = listing([c.get("domain") or c.get("name") for c in live if isinstance(c, dict)]) if live else ""
    if live_text and f.dst_ip:
        live_text += f" (connected to {f.dst_ip}" + (f":{f.dst_port})" if f.dst_port is not None else ")")
    out = {
        "failed_domains": str(ev.get("failed_rare_domains", "")),
        "bursts": str(ev.get("bursts", "")),
        "sample_names": listing(names, 6),
        "live_c2": live_text or "none found",
    }
    return {k: v for k, v in out.items() if v}
