"""The simulated organisation: devices (workstations, servers, public-facing DMZ services), their users,
and the catalogue of processes that open connections on them (Defender's initiating / listening process).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from bothunt.simulate import net
from bothunt.simulate.rand import rng_for

DOMAIN_SUFFIX = "corp.example.com"
AD_DOMAIN = "corp"
RESOLVER = "10.0.0.53"
DC = "10.0.0.10"
MIN_HOSTS = 50

ROLE_WORKSTATION, ROLE_SERVER, ROLE_DMZ, ROLE_INFRA = 0, 1, 2, 3

# Public-facing services in the DMZ: (name, address, listening process, ports)
DMZ_SERVICES = (
    ("web-01", "192.168.100.10", "w3wp.exe", (443, 80)),
    ("bastion-01", "192.168.100.11", "sshd.exe", (22,)),
    ("mail-01", "192.168.100.12", "EdgeTransport.exe", (25,)),
    ("rdgw-01", "192.168.100.13", "svchost.exe#rdp", (3389, 443)),
    ("vpn-01", "192.168.100.14", "svchost.exe#vpn", (443, 1194)),
    ("rproxy-01", "192.168.100.15", "nginx.exe", (443,)),
)

_FIRST = ("anna", "ben", "carla", "david", "emma", "felix", "grace", "hugo", "iris", "jonas", "kate", "liam",
          "maria", "noah", "olga", "paul", "rosa", "sam", "tara", "victor", "wendy", "yusuf", "zoe", "omar")
_LAST = ("smith", "mueller", "garcia", "rossi", "novak", "kim", "silva", "jensen", "dubois", "kowalski",
         "tanaka", "okafor", "larsen", "schmidt", "moreau", "fischer", "lopez", "weber", "nguyen", "berg")


@dataclass(frozen=True)
class Proc:
    """A process image; `account` is 'user' (the device's signed-in user) or a fixed service account."""

    name: str
    folder: str
    cmdline: str
    account: str = "system"
    company: str = "Microsoft Corporation"
    integrity: str = "System"

    @property
    def file(self) -> str:
        return self.name.split("#", 1)[0]

    @property
    def sha1(self) -> str:
        return hashlib.sha1(f"{self.folder}{self.file}".encode()).hexdigest()


_SYS32 = "C:\\Windows\\System32\\"
_PF = "C:\\Program Files\\"
PROCS: tuple[Proc, ...] = (
    Proc("chrome.exe", _PF + "Google\\Chrome\\Application\\",
         '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"', "user", "Google LLC", "Medium"),
    Proc("msedge.exe", "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\",
         '"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe" --profile-directory=Default',
         "user", integrity="Medium"),
    Proc("Teams.exe", "C:\\Users\\{user}\\AppData\\Local\\Microsoft\\Teams\\current\\",
         '"C:\\Users\\{user}\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe"', "user",
         integrity="Medium"),
    Proc("slack.exe", "C:\\Users\\{user}\\AppData\\Local\\slack\\app-4.36.140\\",
         '"C:\\Users\\{user}\\AppData\\Local\\slack\\app-4.36.140\\slack.exe"', "user", "Slack Technologies",
         "Medium"),
    Proc("svchost.exe#telemetry", _SYS32, _SYS32 + "svchost.exe -k utcsvc -p", "system"),
    Proc("svchost.exe#settings", _SYS32, _SYS32 + "svchost.exe -k netsvcs -p -s wlidsvc", "system"),
    Proc("svchost.exe#time", _SYS32, _SYS32 + "svchost.exe -k LocalService -s W32Time", "local service"),
    Proc("svchost.exe#update", _SYS32, _SYS32 + "svchost.exe -k netsvcs -p -s wuauserv", "system"),
    Proc("svchost.exe#rdp", _SYS32, _SYS32 + "svchost.exe -k NetworkService -s TermService", "network service"),
    Proc("svchost.exe#vpn", _SYS32, _SYS32 + "svchost.exe -k netsvcs -s RemoteAccess", "system"),
    Proc("svchost.exe#c2", _SYS32, _SYS32 + "svchost.exe -k netsvcs -p -s Schedule", "system"),
    Proc("lsass.exe", _SYS32, _SYS32 + "lsass.exe", "system"),
    Proc("System", "", "", "system"),
    Proc("OneDrive.exe", "C:\\Users\\{user}\\AppData\\Local\\Microsoft\\OneDrive\\",
         '"C:\\Users\\{user}\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe" /background', "user",
         integrity="Medium"),
    Proc("datadog-agent.exe", _PF + "Datadog\\Datadog Agent\\bin\\",
         '"C:\\Program Files\\Datadog\\Datadog Agent\\bin\\agent.exe" run', "system", "Datadog, Inc."),
    Proc("newrelic-infra.exe", _PF + "New Relic\\newrelic-infra\\",
         '"C:\\Program Files\\New Relic\\newrelic-infra\\newrelic-infra.exe"', "system", "New Relic, Inc."),
    Proc("oneagentwatchdog.exe", _PF + "dynatrace\\oneagent\\agent\\lib64\\",
         '"C:\\Program Files\\dynatrace\\oneagent\\agent\\lib64\\oneagentwatchdog.exe"', "system",
         "Dynatrace LLC"),
    Proc("FNPLicensingService.exe", "C:\\Program Files (x86)\\Common Files\\Macrovision Shared\\FlexNet Publisher\\",
         '"C:\\Program Files (x86)\\Common Files\\Macrovision Shared\\FlexNet Publisher\\FNPLicensingService.exe"',
         "system", "Flexera"),
    Proc("rslsync.exe", "C:\\Users\\{user}\\AppData\\Roaming\\Resilio Sync\\",
         '"C:\\Users\\{user}\\AppData\\Roaming\\Resilio Sync\\rslsync.exe" /MINIMIZED', "user",
         "Resilio, Inc.", "Medium"),
    Proc("bztransmit64.exe", "C:\\Program Files (x86)\\Backblaze\\",
         '"C:\\Program Files (x86)\\Backblaze\\bztransmit64.exe" -autoupdate', "system", "Backblaze"),
    Proc("sshd.exe", "C:\\Windows\\System32\\OpenSSH\\", "C:\\Windows\\System32\\OpenSSH\\sshd.exe", "system"),
    Proc("w3wp.exe", "C:\\Windows\\System32\\inetsrv\\",
         "c:\\windows\\system32\\inetsrv\\w3wp.exe -ap \"DefaultAppPool\" -v \"v4.0\"", "network service"),
    Proc("EdgeTransport.exe", _PF + "Microsoft\\Exchange Server\\V15\\Bin\\",
         '"C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\EdgeTransport.exe"', "network service"),
    Proc("nginx.exe", "C:\\nginx\\", "C:\\nginx\\nginx.exe", "network service", "nginx"),
    Proc("dns.exe", _SYS32, _SYS32 + "dns.exe", "system"),
    # implants: names chosen to blend in
    Proc("msupdate.exe", "C:\\Users\\{user}\\AppData\\Roaming\\Microsoft\\",
         '"C:\\Users\\{user}\\AppData\\Roaming\\Microsoft\\msupdate.exe" -s', "user", "", "Medium"),
    Proc("AdobeARMhelper.exe", "C:\\ProgramData\\Adobe\\ARM\\",
         '"C:\\ProgramData\\Adobe\\ARM\\AdobeARMhelper.exe"', "system", ""),
    Proc("rundll32.exe", _SYS32, _SYS32 + "rundll32.exe C:\\Users\\Public\\Libraries\\wlbsctrl.dll,Start",
         "user", integrity="Medium"),
    Proc("dllhost.exe", "C:\\ProgramData\\Microsoft\\Crypto\\",
         "C:\\ProgramData\\Microsoft\\Crypto\\dllhost.exe /Processid:{AB8902B4-09CA-4BB6-B78D-A8F59079A8D5}",
         "system", ""),
    Proc("taskhostw.exe", "C:\\Users\\{user}\\AppData\\Local\\Temp\\",
         '"C:\\Users\\{user}\\AppData\\Local\\Temp\\taskhostw.exe"', "user", "", "Medium"),
    Proc("powershell.exe", _SYS32 + "WindowsPowerShell\\v1.0\\",
         "powershell.exe -nop -w hidden -ep bypass -f C:\\Users\\Public\\sync.ps1", "user", integrity="Medium"),
)
PROC_INDEX = {p.name: i for i, p in enumerate(PROCS)}


def proc(name: str) -> int:
    return PROC_INDEX[name]


@dataclass
class Org:
    """Devices as parallel arrays (index = device id) plus named roles."""

    names: list[str]
    ips: np.ndarray  # uint32
    roles: np.ndarray  # int8
    users: list[str]
    browser: np.ndarray  # proc index of the device's browser (-1 on servers)
    named: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.names)

    def of_role(self, role: int) -> np.ndarray:
        return np.flatnonzero(self.roles == role)

    def ip_of(self, name: str) -> int:
        return int(self.ips[self.named[name]])

    def fqdn(self, dev: int) -> str:
        return f"{self.names[dev]}.{DOMAIN_SUFFIX}"

    def device_of_ip(self) -> dict[int, int]:
        return {int(a): i for i, a in enumerate(self.ips.tolist())}


def build_org(seed: int, hosts: int) -> Org:
    if hosts < MIN_HOSTS:
        raise ValueError(f"hosts must be at least {MIN_HOSTS} (got {hosts})")
    rng = rng_for(seed, 1)
    names: list[str] = []
    ips: list[int] = []
    roles: list[int] = []
    users: list[str] = []
    named: dict[str, int] = {}

    def add(name: str, address: str | int, role: int, user: str) -> None:
        named[name] = len(names)
        names.append(name)
        ips.append(address if isinstance(address, int) else net.ip(address))
        roles.append(role)
        users.append(user)

    add("dns-01", RESOLVER, ROLE_INFRA, "system")
    add("dc-01", DC, ROLE_INFRA, "system")
    for name, address, _, _ in DMZ_SERVICES:
        add(name, address, ROLE_DMZ, "system")
    rest = hosts - len(names)
    n_servers = max(14, round(rest * 0.15))
    for i in range(n_servers):
        add(f"srv-{i + 1:04d}", net.ip(f"10.20.{i // 250}.{i % 250 + 5}"), ROLE_SERVER, "system")
    taken: set[str] = set()
    for i in range(rest - n_servers):
        while True:
            user = f"{_FIRST[rng.integers(len(_FIRST))]}.{_LAST[rng.integers(len(_LAST))]}"
            if user not in taken or len(taken) >= len(_FIRST) * len(_LAST):
                break
            user = f"{user}{rng.integers(2, 99)}"
            if user not in taken:
                break
        taken.add(user)
        add(f"ws-{i + 1:04d}", net.ip(f"10.10.{i // 250}.{i % 250 + 5}"), ROLE_WORKSTATION, user)
    roles_arr = np.asarray(roles, dtype=np.int8)
    browser = np.where(rng.random(len(names)) < 0.65, proc("chrome.exe"), proc("msedge.exe"))
    browser = np.where(roles_arr == ROLE_WORKSTATION, browser, -1).astype(np.int32)
    return Org(names, np.asarray(ips, dtype=np.uint32), roles_arr, users, browser, named)
