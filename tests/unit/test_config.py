from dataclasses import dataclass

import pytest

from bothunt.config import Allowlist, domain_matches, load_settings
from bothunt.detections.base import param
from bothunt.errors import ConfigError


@dataclass(frozen=True)
class DemoParams:
    min_connections: int = param(12, "fewest connections")
    ports: tuple[int, ...] = param((80, 443), "ports")


def test_yaml_overrides_defaults_and_cli_overrides_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("internal_networks: [10.0.0.0/8]\nsince: 2026-01-01T00:00:00Z\n"
                   "detections:\n  demo: {min_connections: 8}\nallowlist:\n  domains: ['*.corp.example']\n")
    s = load_settings(cfg)
    assert s.internal_networks == ("10.0.0.0/8",)
    assert s.since.isoformat() == "2026-01-01T00:00:00+00:00"
    assert s.params(DemoParams, "demo").min_connections == 8
    assert s.params(DemoParams, "other").min_connections == 12
    s2 = load_settings(cfg, internal_networks="192.168.0.0/16,fd00::/8")
    assert s2.internal_networks == ("192.168.0.0/16", "fd00::/8")


def test_unknown_keys_are_errors_not_silently_ignored(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detections:\n  demo: {min_conections: 8}\n")
    with pytest.raises(ConfigError, match="min_conections"):
        load_settings(cfg).params(DemoParams, "demo")
    cfg.write_text("internl_networks: []\n")
    with pytest.raises(ConfigError, match="internl_networks"):
        load_settings(cfg)


def test_bad_cidr_and_bad_yaml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError):
        load_settings(None, internal_networks="10.0.0.0/33")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("a: [")
    with pytest.raises(ConfigError):
        load_settings(cfg)


def test_domain_wildcard_matches_apex_and_subdomains_only():
    assert domain_matches("datadoghq.com", "*.datadoghq.com")
    assert domain_matches("app.datadoghq.com", "*.datadoghq.com")
    assert not domain_matches("evil-datadoghq.com", "*.datadoghq.com")
    assert not domain_matches("datadoghq.com.evil.net", "*.datadoghq.com")


def test_allowlist_names_every_matching_entry():
    al = Allowlist(processes=("backup*.exe",), domains=("*.corp.example",), cidrs=("203.0.113.0/24",),
                   known_services=("*.datadoghq.com",))
    assert al.matches(process="C:\\Program Files\\backupd.exe") == ["process:backup*.exe"]
    assert al.matches(domain="App.DatadogHQ.com.") == ["known_service:*.datadoghq.com"]
    assert al.matches(ip="203.0.113.9") == ["cidr:203.0.113.0/24"]
    assert al.matches(ip="2001:db8::1", domain="evil.example") == []
