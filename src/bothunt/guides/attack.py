"""Names and tactics of the ATT&CK techniques bothunt findings carry, for readers and for OCSF output.

Kept to the ids the detections emit (a test checks every id in a detection's INFO is here); an unknown id
still renders, with its id as its name.
"""

from __future__ import annotations

from dataclasses import dataclass

ATTACK_VERSION = "16"


@dataclass(frozen=True)
class Technique:
    uid: str
    name: str
    tactic_uid: str
    tactic: str

    @property
    def parent(self) -> str:
        return self.uid.split(".")[0]

    @property
    def is_sub(self) -> bool:
        return "." in self.uid

    @property
    def url(self) -> str:
        return "https://attack.mitre.org/techniques/" + self.uid.replace(".", "/") + "/"


_TACTICS = {
    "TA0042": "Resource Development", "TA0011": "Command and Control", "TA0040": "Impact",
    "TA0006": "Credential Access", "TA0001": "Initial Access", "TA0043": "Reconnaissance",
    "TA0007": "Discovery", "TA0010": "Exfiltration",
}

_NAMES: dict[str, tuple[str, str]] = {
    "T1583": ("Acquire Infrastructure", "TA0042"),
    "T1583.005": ("Acquire Infrastructure: Botnet", "TA0042"),
    "T1584": ("Compromise Infrastructure", "TA0042"),
    "T1584.005": ("Compromise Infrastructure: Botnet", "TA0042"),
    "T1584.008": ("Compromise Infrastructure: Network Devices", "TA0042"),
    "T1071": ("Application Layer Protocol", "TA0011"),
    "T1071.001": ("Application Layer Protocol: Web Protocols", "TA0011"),
    "T1071.004": ("Application Layer Protocol: DNS", "TA0011"),
    "T1573": ("Encrypted Channel", "TA0011"),
    "T1572": ("Protocol Tunneling", "TA0011"),
    "T1090": ("Proxy", "TA0011"),
    "T1090.003": ("Proxy: Multi-hop Proxy", "TA0011"),
    "T1568": ("Dynamic Resolution", "TA0011"),
    "T1568.001": ("Dynamic Resolution: Fast Flux DNS", "TA0011"),
    "T1568.002": ("Dynamic Resolution: Domain Generation Algorithms", "TA0011"),
    "T1498": ("Network Denial of Service", "TA0040"),
    "T1499": ("Endpoint Denial of Service", "TA0040"),
    "T1499.002": ("Endpoint Denial of Service: Service Exhaustion Flood", "TA0040"),
    "T1110": ("Brute Force", "TA0006"),
    "T1110.001": ("Brute Force: Password Guessing", "TA0006"),
    "T1110.003": ("Brute Force: Password Spraying", "TA0006"),
    "T1110.004": ("Brute Force: Credential Stuffing", "TA0006"),
    "T1566": ("Phishing", "TA0001"),
    "T1595": ("Active Scanning", "TA0043"),
    "T1595.001": ("Active Scanning: Scanning IP Blocks", "TA0043"),
    "T1046": ("Network Service Discovery", "TA0007"),
    "T1048": ("Exfiltration Over Alternative Protocol", "TA0010"),
}


def technique(uid: str) -> Technique:
    name, tactic = _NAMES.get(uid, (uid, ""))
    if not tactic and "." in uid and uid.split(".")[0] in _NAMES:
        tactic = _NAMES[uid.split(".")[0]][1]
    return Technique(uid=uid, name=name, tactic_uid=tactic, tactic=_TACTICS.get(tactic, ""))


def known(uid: str) -> bool:
    return uid in _NAMES
