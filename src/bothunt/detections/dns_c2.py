"""DNS as the C2 channel: tunnelling through many unique subdomains, fast-flux names, and periodic
lookups of one name.

* **Tunnelling** (per host and registered domain): many unique, long, random-looking names under one
  domain, TXT / NULL heavy, at volume (dns_tunnel.py). Reputation services that encode hashes or
  addresses in names (DNSBLs, anti-virus cloud lookups) look the same and are lowered to info by name.
* **Fast flux** (per registered domain, whoever resolves it): low TTLs and, over time, many distinct
  addresses across many networks (/16s, or ASNs with intel data) (dns_flux.py). CDNs, NTP pools and cloud
  services do this legitimately and are lowered to info (cdn_domains, the known services).
* **Periodic lookups** (per host and registered domain): the beacon statistics of bothunt.periodicity on
  the lookup times of one name that few hosts look up (dns_periodic.py); regular lookups alone stay low.

The engine does the scans and group-bys (dns_names.py gives every name its registered domain); numpy
scores the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

from bothunt.config import Settings
from bothunt.detections import dns_flux, dns_periodic, dns_tunnel
from bothunt.detections.base import DetectionInfo, param
from bothunt.detections.dga import threshold
from bothunt.detections.dns_names import LOCAL_SUFFIXES, lookups, materialized, name_pairs, with_registered
from bothunt.engine import Tables
from bothunt.schema import Finding

ID = "dns_c2"

# Services that answer questions encoded in names: DNS blocklists and anti-virus / reputation clouds.
REPUTATION_DOMAINS: tuple[str, ...] = (
    "*.spamhaus.org", "*.spamhaus.net", "*.spamcop.net", "*.sorbs.net", "*.barracudacentral.org",
    "*.surbl.org", "*.uribl.com", "*.mailspike.net", "*.dnswl.org", "*.abuseat.org", "*.senderscore.com",
    "*.manitu.net", "*.psbl.org", "*.spameatingmonkey.net", "*.senderbase.org", "*.hash.cymru.com",
    "*.asn.cymru.com", "*.sophosxl.net", "*.avqs.mcafee.com", "*.avts.mcafee.com", "*.gti.mcafee.com",
    "*.e5.sk", "*.trendmicro.com", "*.dnsbl.info", "*.zen.spamhaus.org",
)
# CDNs and large clouds whose names resolve to many, rotating addresses.
CDN_DOMAINS: tuple[str, ...] = (
    "*.cloudfront.net", "*.akamaiedge.net", "*.akamai.net", "*.akamaihd.net", "*.edgekey.net",
    "*.edgesuite.net", "*.akadns.net", "*.azureedge.net", "*.azurefd.net", "*.trafficmanager.net",
    "*.msedge.net", "*.fastly.net", "*.fastlylb.net", "*.cloudflare.net", "*.cdn.cloudflare.net",
    "*.llnwd.net", "*.edgecastcdn.net", "*.footprint.net", "*.amazonaws.com", "*.googleusercontent.com",
    "*.1e100.net", "*.gvt1.com", "*.googlevideo.com", "*.aaplimg.com", "*.apple-dns.net", "*.cdn77.org",
    "*.b-cdn.net", "*.impervadns.net", "*.incapdns.net", "*.ntp.org", "*.pool.ntp.org",
)

INFO = DetectionInfo(
    id=ID,
    title="DNS C2: tunnelling, fast flux or periodic lookups of one name",
    techniques=("T1583.005", "T1071.004", "T1572", "T1568.001"),
    summary=("DNS used as the command channel: a host sending many unique long random-looking names under "
             "one domain, often TXT or NULL (tunnelling, T1572 over T1071.004); a name whose answers rotate "
             "through many addresses in many networks with low TTLs (fast flux, T1568.001); a host looking "
             "up one rare name on a timer (a beacon resolving its C2)."),
    false_positives=(
        "Anti-virus and reputation lookups (*.sophosxl.net, *.avqs.mcafee.com, *.e5.sk) and DNS blocklists "
        "(zen.spamhaus.org) encode hashes and addresses in names: listed in reputation_domains, lowered to "
        "info.",
        "CDNs, cloud load balancers and NTP pools answer one name with many rotating addresses and short "
        "TTLs: listed in cdn_domains or the known services, lowered to info; with intel data the ASN count "
        "separates a CDN (one AS) from a botnet (many).",
        "Caches re-resolve names in use at every TTL, so periodic lookups alone score low; monitoring and "
        "update agents are in the known services.",
        "Reverse lookups (in-addr.arpa, ip6.arpa) and site-local names are not counted (ignore_suffixes).",
    ),
    triage=(
        "Tunnel: decode a few sample names (base32/hex) and check the volume carried; find the process "
        "(Sysmon event 22). Any TXT-heavy traffic to a young domain is worth blocking.",
        "Fast flux: look up the owners of the sample addresses; residential ISPs in many countries is a "
        "botnet, one cloud or CDN AS is not.",
        "Periodic: compare the period with the TTL of the answers; a period far shorter than the TTL means "
        "the program bypasses the cache on purpose.",
    ),
    references=(
        "https://attack.mitre.org/techniques/T1071/004/",
        "https://attack.mitre.org/techniques/T1572/",
        "https://attack.mitre.org/techniques/T1568/001/",
    ),
)


@dataclass(frozen=True)
class Params:
    ignore_suffixes: tuple[str, ...] = param(LOCAL_SUFFIXES, "Names under these suffixes are never counted.")
    reputation_domains: tuple[str, ...] = param(REPUTATION_DOMAINS, "Reputation and blocklist services that "
                                                                   "encode data in names; tunnels to them drop "
                                                                   "to info.")
    cdn_domains: tuple[str, ...] = param(CDN_DOMAINS, "CDNs and clouds that rotate addresses; fast flux on "
                                                      "them drops to info.")
    high_score: float = param(0.0, "DGA model score from which a registered label counts as generated; 0 takes "
                                   "the shipped model's threshold at 1% false positives.")
    sample_names: int = param(10, "How many names, addresses and hosts a finding lists.")
    tunnel_min_unique: int = param(50, "Unique names under one registered domain from one host before it is "
                                       "a tunnel candidate.")
    tunnel_full_unique: int = param(2000, "Unique names at which that part of the tunnel score is full.")
    tunnel_min_length: float = param(20.0, "Mean subdomain length (characters, dots included) a candidate needs.")
    tunnel_sample: int = param(200, "Distinct names per candidate brought into numpy for entropy and scoring.")
    tunnel_min_score: float = param(0.2, "Tunnel candidates scoring below this are not reported.")
    flux_min_ips: int = param(12, "Distinct public addresses a name needs over the data to be a flux candidate.")
    flux_min_nets: int = param(6, "Distinct /16 networks (IPv6: /32) those addresses must span.")
    flux_max_ttl: float = param(600.0, "Largest TTL (seconds; the largest a name's answers carried, as caches "
                                       "count down) still counted as low.")
    flux_min_score: float = param(0.2, "Fast-flux candidates scoring below this are not reported.")
    periodic_min_lookups: int = param(12, "Lookups (after merging A + AAAA pairs) of one name by one host.")
    periodic_max_hosts: int = param(3, "Names looked up by more hosts than this are not examined (shared "
                                       "services are the beacon detection's and allow-lists' concern).")
    periodic_min_span_seconds: float = param(3600.0, "The lookups must span at least this long.")
    periodic_min_period_seconds: float = param(10.0, "Shorter periods are retries, not a timer.")
    periodic_dedup_seconds: float = param(2.0, "Lookups of one name by one host closer than this are one.")
    periodic_max_p_value: float = param(1e-4, "Largest chance of the regularity under random lookups "
                                              "(interval spread and phase tests, Bonferroni) still reported.")
    periodic_max_events: int = param(2_000_000, "Cap on lookup times brought into numpy per run.")


def detect(tables: Tables, settings: Settings) -> list[Finding]:
    p = settings.params(Params, ID)
    q = lookups(tables.dns, p.ignore_suffixes)
    with materialized(tables, name_pairs(q), "dns_c2_pairs") as pairs:
        named = with_registered(tables, pairs)
        named = named.filter(named.reg != "")
        summary, sample = dns_tunnel.candidates(tables, named, p)
        events = dns_periodic.events(tables, q, pairs, p)
    out = dns_tunnel.findings(summary, sample, p, settings)
    fsum, fips, fhosts = dns_flux.candidates(tables, q, p)
    out += dns_flux.findings(fsum, fips, fhosts, p, settings)
    periodic = dns_periodic.analyse(events, p)
    if periodic:
        out += dns_periodic.findings(periodic, p, threshold(p.high_score), settings)
    return out
