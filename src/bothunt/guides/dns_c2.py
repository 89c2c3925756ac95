"""Guide for `dns_c2` findings: DNS tunnelling, fast flux, and periodic lookups of one name. The variant
follows `evidence.kind`."""

from __future__ import annotations

from bothunt.guides import Guide
from bothunt.guides.common import dur, listing, pct
from bothunt.schema import Finding

TUNNEL = Guide(
    key="dns_c2/tunnel",
    summary=("{who} sent {unique_names} unique names under {domain} ({queries} queries, subdomains of "
             "{sub_length} characters on average) from {first_seen} to {last_seen}: data carried through DNS."),
    check_first=(
        "Which process on {who} makes the queries (Sysmon event 22, EDR DNS events); a tunnel client "
        "(iodine, dnscat2, a custom implant) is rarely a signed business application.",
        "Decode a few names ({sample_names}): base32, base64url or hex that decodes to structured data is a "
        "tunnel; hashes of files or addresses under a vendor domain are reputation lookups.",
        "Who owns {domain}: registration age, name servers, and whether it belongs to a security vendor.",
    ),
    false_positives=(
        "Anti-virus and reputation clouds and DNS blocklists encode hashes and addresses in names under the "
        "vendor's domain: the domain is the vendor's and the process is the security agent. Allow-list it.",
        "CDNs and telemetry that encode identifiers in names: one vendor domain, modest volume, resolving "
        "answers.",
    ),
    collect=(
        "All queries of {who} under {domain} with types and sizes (pivot queries below), to estimate what was "
        "sent ({encoded} characters encoded).",
        "The querying process and its binary; the TXT answers if the resolver logs them (commands come back "
        "in answers).",
    ),
    contain=(
        "Block {domain} at the resolver (sinkhole) and force all DNS through the internal resolvers; isolate "
        "{who}.",
        "Reset credentials used on {who}; treat data the process could read as exfiltrated.",
    ),
    escalate=(
        "Always for a confirmed tunnel: it is a covert channel out of the network; immediately when the "
        "volume is large or {who} holds sensitive data.",
    ),
)

FLUX = Guide(
    key="dns_c2/fast_flux",
    summary=("{domain} was answered with {addresses} addresses in {networks} networks with TTLs down to {ttl} "
             "({first_seen} to {last_seen}), looked up by {resolvers}: a fast-flux name hiding its real server."),
    check_first=(
        "Who owns the addresses ({sample_addresses}): residential ISPs in many countries is a botnet; one cloud "
        "or CDN provider is not.",
        "Which internal hosts resolved it ({resolvers}) and what they did next: connections to those addresses "
        "after the lookup.",
    ),
    false_positives=(
        "CDNs, NTP pools and large cloud services rotate addresses with short TTLs: the domain is a known "
        "service and the addresses belong to one or two providers. Allow-list the domain (cdn_domains).",
    ),
    collect=(
        "All lookups of names under {domain} with their answers, and connections from internal hosts to the "
        "answered addresses (pivot queries below).",
    ),
    contain=(
        "Sinkhole {domain} at the resolver; look for each resolving host's process and isolate the ones "
        "that connected.",
    ),
    escalate=(
        "When an internal host connected to the flux addresses, or the domain hosts phishing or malware "
        "aimed at your users.",
    ),
)

PERIODIC = Guide(
    key="dns_c2/periodic",
    summary=("{who} resolves {names} every {period} ({first_seen} to {last_seen}), a name few other hosts look "
             "up: a program resolving its server on a timer."),
    check_first=(
        "Compare the period ({period}) with the answers' TTL ({ttl}): a period far shorter than the TTL means "
        "the program bypasses the cache on purpose.",
        "Which process on {who} makes the lookups, and what it connects to after each answer.",
        "Who owns {domain}: age, registrar, and whether a product you run documents it.",
    ),
    false_positives=(
        "Agents and updaters of products you run re-resolve their server on a timer: the domain is the "
        "vendor's. Allow-list it. Regular lookups alone are weak evidence; the score says so.",
    ),
    collect=(
        "The lookups and the connections that follow them (pivot queries below); the querying process.",
    ),
    contain=(
        "If the program is not sanctioned: sinkhole {domain}, isolate {who}, remove the program.",
    ),
    escalate=(
        "When the domain is young or generated-looking, the lookups ask for TXT/NULL, or {who} appears in other "
        "findings (see the host view).",
    ),
)


def guide(f: Finding) -> Guide:
    kind = f.evidence.get("kind")
    return {"tunnel": TUNNEL, "fast_flux": FLUX}.get(kind, PERIODIC)


def values(f: Finding) -> dict[str, str]:
    ev = f.evidence
    names = ev.get("names") or []
    plain = [n.get("name") if isinstance(n, dict) else n for n in names]
    best = names[0] if names and isinstance(names[0], dict) else {}
    ttl = ev.get("min_ttl", best.get("min_ttl"))
    out = {
        "unique_names": str(ev.get("unique_names", "")),
        "queries": str(ev.get("queries", "")),
        "sub_length": str(ev.get("mean_subdomain_length", "")),
        "sample_names": listing(ev.get("sample_names") or [], 4),
        "encoded": str(ev.get("encoded_bytes_estimate", "")),
        "addresses": str(ev.get("addresses", "")),
        "networks": str(ev.get("networks_16", "")),
        "ttl": dur(ttl) if ttl is not None else "",
        "sample_addresses": listing(ev.get("sample_addresses") or [], 6),
        "resolvers": listing([h.get("src_ip") for h in ev.get("hosts") or [] if isinstance(h, dict)], 4),
        "names": listing(plain, 3),
        "period": dur(best.get("period_s") or ev.get("period_s")),
        "nx": pct(best.get("nxdomain_share")),
    }
    return {k: v for k, v in out.items() if v}
