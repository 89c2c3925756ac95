"""Which kind of service a port (and the sensor's service word) names, and the category an inbound
campaign against it gets. Shared by the inbound-flood detection and its Sentinel-KQL profile."""

from __future__ import annotations

# Ports where every connection is an authentication attempt. Keep to ports: paths and user names are
# not in the conn table.
AUTH_PORTS: dict[int, str] = {
    21: "ftp", 22: "ssh", 23: "telnet", 2323: "telnet", 110: "pop3", 143: "imap", 139: "smb", 445: "smb",
    465: "smtp submission", 587: "smtp submission", 993: "imaps", 995: "pop3s", 1433: "mssql",
    3306: "mysql", 5432: "postgresql", 3389: "rdp", 5900: "vnc", 5985: "winrm", 5986: "winrm",
}
HTTP_PORTS = frozenset({80, 443, 8080, 8443, 8000, 8888})
MAIL_PORTS = frozenset({25, 587})
# Service words sensors put in `service` (Zeek, Suricata app_proto) for the same kinds.
AUTH_SERVICES = frozenset({"ssh", "rdp", "ftp", "telnet", "smb", "vnc", "mysql", "postgresql", "mssql",
                           "tds", "imap", "pop3", "krb"})
HTTP_SERVICES = frozenset({"http", "ssl", "tls", "https", "http2", "quic"})
MAIL_SERVICES = frozenset({"smtp"})

# The published rule's category words, by port only.
KQL_CATEGORIES = {"http": "HTTP Flood", "auth": "Credential Stuffing / Brute Force", "mail": "Spam",
                  "other": "Volumetric Flood"}
KQL_HTTP = frozenset({80, 443, 8080, 8443})
KQL_AUTH = frozenset({22, 3389})
KQL_MAIL = frozenset({25, 587})


def service_kind(port: int | None, services: tuple[str, ...] = ()) -> str:
    """`mail`, `auth`, `http` or `other`: the port decides, the sensor's service word breaks ties for
    ports we do not know (SSH on 2222, HTTP on 8081)."""
    words = {s.lower() for s in services if s}
    if port in MAIL_PORTS:
        return "mail"
    if port in AUTH_PORTS:
        return "auth"
    if port in HTTP_PORTS:
        return "http"
    if words & MAIL_SERVICES:
        return "mail"
    if words & AUTH_SERVICES:
        return "auth"
    if words & HTTP_SERVICES:
        return "http"
    return "other"


def kql_category(port: int | None) -> str:
    if port in KQL_HTTP:
        return KQL_CATEGORIES["http"]
    if port in KQL_AUTH:
        return KQL_CATEGORIES["auth"]
    if port in KQL_MAIL:
        return KQL_CATEGORIES["mail"]
    return KQL_CATEGORIES["other"]


# category -> (label for titles, ATT&CK ids after T1583.005)
CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "http_flood": ("HTTP flood", ("T1499", "T1499.002")),
    "credential_stuffing": ("credential stuffing", ("T1110.004", "T1110.003")),
    "spam": ("spam run", ("T1566",)),
    "volumetric_flood": ("volumetric flood", ("T1498",)),
    "low_and_slow_stuffing": ("low-and-slow credential stuffing", ("T1110.003", "T1110.004")),
    "low_and_slow_spam": ("low-and-slow spam run", ("T1566",)),
    "brute_force": ("brute force from one source", ("T1110.001",)),
    "spam_source": ("mail flood from one source", ("T1566",)),
    "hammering": ("one source hammering a service", ("T1499",)),
    "sweep": ("sweep of many hosts on one port", ("T1595.001", "T1110.001")),
    "port_scan": ("port scan of one host", ("T1595", "T1046")),
}


def capital(text: str) -> str:
    """First letter upper case, the rest untouched (str.capitalize would turn "HTTP" into "Http")."""
    return text[:1].upper() + text[1:]


def fast_category(kind: str) -> str:
    return {"http": "http_flood", "auth": "credential_stuffing", "mail": "spam"}.get(kind, "volumetric_flood")


def slow_category(kind: str, port: int | None) -> str:
    return "low_and_slow_spam" if kind == "mail" and port == 25 else "low_and_slow_stuffing"


def single_category(kind: str, port: int | None, sweep: bool) -> str:
    if sweep:
        return "sweep"
    if kind == "auth" or port == 587:
        return "brute_force"
    if kind == "mail":
        return "spam_source"
    return "hammering"
