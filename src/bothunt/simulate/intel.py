"""The simulated world's address ownership, written as data files bothunt's netclass reads: an
iptoasn-layout TSV for every /16 the simulator draws from, and a Tor exit list. Pointing `intel:` at them
(as `bothunt demo` does) makes findings on simulated data carry remote classes, as they would with real
ASN data on real telemetry.

ASNs are real and well known (their class comes from bothunt's built-in table); which /16 belongs to
which ASN is the simulator's own assignment, not the real routing table.
"""

from __future__ import annotations

from pathlib import Path

from bothunt.simulate.net import ATTACK_16, CDN_16, CLIENT_16, SCANNER_16, SERVICE_16

CLOUD_ASNS = ((8075, "US", "MICROSOFT-CORP-MSN-AS-BLOCK"), (16509, "US", "AMAZON-02"),
              (15169, "US", "GOOGLE"), (13335, "US", "CLOUDFLARENET"), (54113, "US", "FASTLY"))
CDN_ASNS = ((20940, "EU", "AKAMAI-ASN1"), (54113, "US", "FASTLY"), (13335, "US", "CLOUDFLARENET"))
CLIENT_ASNS = ((7922, "US", "COMCAST-7922"), (3320, "DE", "DTAG Deutsche Telekom AG"),
               (3215, "FR", "France Telecom - Orange"), (2856, "GB", "BT-UK-AS"), (28573, "BR", "CLARO S.A."),
               (4766, "KR", "KIXS-AS-KR Korea Telecom"), (21928, "US", "T-MOBILE-AS21928"))
SCANNER_ASNS = ((398324, "US", "CENSYS-ARIN-01 scanning hosting"), (16276, "FR", "OVH"))
# Attacker space: VPS / hosting first (C2, ORB operators), then residential (proxy-botnet members).
ATTACK_HOSTING = ((14061, "US", "DIGITALOCEAN-ASN"), (16276, "FR", "OVH"), (24940, "DE", "HETZNER-AS"),
                  (20473, "US", "AS-CHOOPA"), (51167, "DE", "CONTABO"), (9009, "GB", "M247"),
                  (60781, "NL", "LEASEWEB-NL-AMS-01"))
ATTACK_RESIDENTIAL = ((4134, "CN", "CHINANET-BACKBONE"), (4837, "CN", "CHINA169-BACKBONE"),
                      (12389, "RU", "ROSTELECOM-AS"), (9829, "IN", "BSNL-NIB"), (18881, "BR", "TELEFONICA BRASIL"),
                      (8151, "MX", "Uninet S.A. de C.V."))
TOR_16 = "185.220"  # a range Tor relays really crowd into; the simulator marks some exits there


def _rows(pool: tuple[str, ...], owners: tuple[tuple[int, str, str], ...]) -> list[str]:
    rows = []
    for i, p in enumerate(pool):
        asn, cc, name = owners[i % len(owners)]
        rows.append(f"{p}.0.0\t{p}.255.255\t{asn}\t{cc}\t{name}")
    return rows


def write_intel(out: Path) -> list[Path]:
    d = out / "intel"
    d.mkdir(parents=True, exist_ok=True)
    half = len(ATTACK_16) // 2
    rows = (_rows(SERVICE_16, CLOUD_ASNS) + _rows(CDN_16, CDN_ASNS) + _rows(CLIENT_16, CLIENT_ASNS)
            + _rows(SCANNER_16, SCANNER_ASNS) + _rows(ATTACK_16[:half], ATTACK_HOSTING)
            + _rows(ATTACK_16[half:], ATTACK_RESIDENTIAL))
    rows.sort(key=lambda r: tuple(int(x) for x in r.split("\t", 1)[0].split(".")))
    asn = d / "ip2asn-v4.tsv"
    asn.write_text("\n".join(rows) + "\n")
    tor = d / "tor-exits.txt"
    tor.write_text("".join(f"{TOR_16}.{c}.{h}\n" for c in range(0, 256, 16) for h in (1, 2, 3)))
    return [asn, tor]


def intel_config(out: Path) -> dict[str, list[str]]:
    """The `intel:` settings that use the files write_intel wrote."""
    return {"asn_files": [str(out / "intel" / "ip2asn-v4.tsv")], "tor_files": [str(out / "intel" / "tor-exits.txt")]}
