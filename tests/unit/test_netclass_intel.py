"""NetIntel end to end: every layout together, precedence, boundaries, overlaps, bad input, ages."""

import gzip
import importlib.util
import ipaddress
import json
import os
import random
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from bothunt.errors import ConfigError
from bothunt.netclass import ip_type
from bothunt.netclass.intel import OUTPUT_SCHEMA, SPECIAL_BLOCKS, IntelSettings, NetIntel, classify_cli_rows


def _writer_module():
    name = "netclass_mmdb_writer"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


V4_TSV = """\
5.0.0.0\t5.0.255.255\t64500\tDE\tExample Hosting GmbH
5.0.1.0\t5.0.1.255\t7922\tUS\tCOMCAST-7922
6.0.0.0\t6.0.0.255\t13335\tUS\tCLOUDFLARENET
7.0.0.0\t7.0.0.255\t64501\tFR\tUniversity of Nowhere
9.0.0.0\t9.0.0.255\t0\tNone\tNot routed
"""
V6_TSV = """\
2a00:1000::\t2a00:1000:ffff:ffff:ffff:ffff:ffff:ffff\t21928\tUS\tT-MOBILE-AS21928
2a00:1000:5::\t2a00:1000:5:0:ffff:ffff:ffff:ffff\t64502\tNL\tTiny VPS BV
"""
AWS = {"createDate": "2099-01-01-00-00-00", "prefixes": [
    {"ip_prefix": "5.0.2.0/24", "region": "eu-central-1", "service": "AMAZON"},
    {"ip_prefix": "5.0.2.0/24", "region": "eu-central-1", "service": "EC2"},
    {"ip_prefix": "5.0.2.128/25", "region": "GLOBAL", "service": "CLOUDFRONT"}],
    "ipv6_prefixes": [{"ipv6_prefix": "2a00:1000:6::/48", "region": "eu-central-1", "service": "EC2"}]}


@pytest.fixture()
def files(tmp_path):
    v4 = tmp_path / "ip2asn-v4.tsv"
    v4.write_text(V4_TSV)
    v6 = tmp_path / "ip2asn-v6.tsv.gz"
    v6.write_bytes(gzip.compress(V6_TSV.encode()))
    aws = tmp_path / "ip-ranges.json"
    aws.write_text(json.dumps(AWS))
    tor = tmp_path / "exit-addresses"
    tor.write_text("ExitNode AB\nExitAddress 5.0.2.7 2099-01-01 00:00:00\n"
                   "ExitAddress 5.0.0.9 2099-01-01 00:00:00\n")
    mmdb = _writer_module().write_mmdb(tmp_path / "GeoLite2-ASN.mmdb", [
        ("8.0.0.0/24", {"autonomous_system_number": 14061,
                        "autonomous_system_organization": "DIGITALOCEAN-ASN"}),
        ("5.0.0.0/16", {"autonomous_system_number": 1, "autonomous_system_organization": "never used"}),
        ("2a01::/16", {"asn": "AS64503", "as_name": "Sky Broadband", "country_code": "GB"}),
    ], build_epoch=int(time.time()))
    return IntelSettings(asn_files=(v4, v6), mmdb_files=(mmdb,), cloud_files=(aws,), tor_files=(tor,))


def _by_ip(table):
    return {row["ip"]: row for row in table.to_pylist()}


def test_classes_asn_name_country_and_decider(files):
    intel = NetIntel.load(files)
    v4, v6 = str(files.asn_files[0]), str(files.asn_files[1])
    out = _by_ip(intel.classify(["5.0.0.0", "5.0.255.255", "5.0.1.0", "5.0.1.255", "6.0.0.128", "7.0.0.1",
                                 "2a00:1000::1", "2a00:1000:5::", "2a00:1000:5:0:ffff:ffff:ffff:ffff"]))
    expect = {  # ip: (class, asn, as_name, country, decided_by)
        "5.0.0.0": ("hosting", 64500, "Example Hosting GmbH", "DE", f"as-name:hosting:{v4}"),
        "5.0.255.255": ("hosting", 64500, "Example Hosting GmbH", "DE", f"as-name:hosting:{v4}"),
        "5.0.1.0": ("residential_isp", 7922, "COMCAST-7922", "US", f"asn-table:{v4}"),
        "5.0.1.255": ("residential_isp", 7922, "COMCAST-7922", "US", f"asn-table:{v4}"),
        "6.0.0.128": ("cdn", 13335, "CLOUDFLARENET", "US", f"asn-table:{v4}"),
        "7.0.0.1": ("unknown", 64501, "University of Nowhere", "FR", None),
        "2a00:1000::1": ("mobile", 21928, "T-MOBILE-AS21928", "US", f"asn-table:{v6}"),
        "2a00:1000:5::": ("hosting", 64502, "Tiny VPS BV", "NL", f"as-name:hosting:{v6}"),
        "2a00:1000:5:0:ffff:ffff:ffff:ffff": ("hosting", 64502, "Tiny VPS BV", "NL", f"as-name:hosting:{v6}"),
    }
    got = {ip: (r["net_class"], r["asn"], r["as_name"], r["country"], r["decided_by"])
           for ip, r in out.items()}
    assert got == expect


def test_neighbours_of_ranges_are_outside(files):
    out = _by_ip(NetIntel.load(files).classify(["4.255.255.255", "5.1.0.0", "6.0.1.0", "9.0.0.1",
                                                "2a00:fff:ffff:ffff:ffff:ffff:ffff:ffff", "2a00:1001::"]))
    assert {ip: (r["net_class"], r["asn"]) for ip, r in out.items()} == {ip: ("unknown", None) for ip in out}


def test_precedence_tor_then_cloud_then_asn(files):
    intel = NetIntel.load(files)
    aws, tor = str(files.cloud_files[0]), str(files.tor_files[0])
    out = _by_ip(intel.classify(["5.0.2.7", "5.0.2.8", "5.0.2.200", "5.0.0.9", "2a00:1000:6::1"]))
    got = {ip: (r["net_class"], r["decided_by"], r["asn"]) for ip, r in out.items()}
    assert got == {
        "5.0.2.7": ("tor", f"tor:{tor}", 64500),  # in the Tor list and in AWS EC2: Tor wins
        "5.0.2.8": ("cloud", f"cloud:{aws}", 64500),  # AWS beats the hosting AS name
        "5.0.2.200": ("cdn", f"cloud:{aws}", 64500),  # the CLOUDFRONT /25 is more specific than EC2 /24
        "5.0.0.9": ("tor", f"tor:{tor}", 64500),
        "2a00:1000:6::1": ("cloud", f"cloud:{aws}", 21928),
    }
    detail = _by_ip(intel.classify_detail(["5.0.2.8", "5.0.2.200"]))
    assert detail["5.0.2.8"]["detail"] == "AWS EC2 eu-central-1"  # EC2 beats the aggregate AMAZON tag
    assert detail["5.0.2.200"]["detail"] == "AWS CLOUDFRONT GLOBAL"


def test_mmdb_fills_addresses_the_tables_miss(files):
    out = _by_ip(NetIntel.load(files).classify_detail(["8.0.0.1", "2a01::5", "5.0.0.1"]))
    mmdb = str(files.mmdb_files[0])
    assert (out["8.0.0.1"]["net_class"], out["8.0.0.1"]["asn"], out["8.0.0.1"]["decided_by"]) == (
        "hosting", 14061, f"asn-table:{mmdb}")
    assert (out["2a01::5"]["net_class"], out["2a01::5"]["country"], out["2a01::5"]["decided_by"]) == (
        "residential_isp", "GB", f"as-name:residential_isp:{mmdb}")
    # The range table answered first, so the MMDB's record for 5.0.0.0/16 is never used.
    assert (out["5.0.0.1"]["asn"], out["5.0.0.1"]["asn_source"]) == (64500, str(files.asn_files[0]))


def test_private_and_reserved_agree_with_ip_type(files):
    ips = ["10.1.2.3", "192.168.1.1", "100.64.0.1", "127.0.0.1", "169.254.1.1", "224.0.0.251",
           "255.255.255.255", "0.0.0.0", "192.0.2.1", "240.0.0.1", "::1", "fe80::1%eth0", "fd12::1",
           "ff02::fb", "2001:db8::1", "::", "::ffff:10.0.0.1"]
    out = NetIntel.load(files).classify(ips).to_pylist()
    assert [r["net_class"] for r in out] == ["private"] * len(ips)
    words = [ip_type(ip) for ip in ips[:-1]] + ["Private"]  # the mapped address is judged as its IPv4 self
    assert [r["decided_by"] for r in out] == [f"ip_type:{w}" for w in words]


def test_special_blocks_cover_every_non_global_block():
    """Only addresses inside SPECIAL_BLOCKS get an ip_type() answer, so they must hold them all."""
    special = [ipaddress.ip_network(n) for n, _ in SPECIAL_BLOCKS]
    blocks = []
    for consts in (ipaddress._IPv4Constants, ipaddress._IPv6Constants):
        for attr in ("_private_networks", "_reserved_networks"):
            value = getattr(consts, attr, [])
            blocks += value if isinstance(value, list) else []
    blocks += [ipaddress.ip_network(n) for n in ("224.0.0.0/4", "ff00::/8", "fe80::/10", "100.64.0.0/10")]
    assert len(blocks) > 20
    for block in blocks:
        for addr in (block.network_address, block.broadcast_address):
            assert any(addr.version == s.version and addr in s for s in special), block
    rng = random.Random(5)
    for _ in range(4000):  # and outside them every address is public to ip_type()
        addr = ipaddress.ip_address(rng.randrange(1 << 32)) if rng.random() < 0.5 else ipaddress.ip_address(
            rng.randrange(1 << 128))
        if not any(addr.version == s.version and addr in s for s in special):
            assert ip_type(str(addr)) == "Public", addr


@pytest.mark.parametrize("block", [b for b, uniform in SPECIAL_BLOCKS if uniform])
def test_uniform_special_blocks_have_one_ip_type(block):
    """A block marked uniform is asked once; sample it to check ip_type() agrees everywhere inside
    (except where a more specific listed block takes over, as 255.255.255.255 does in 240.0.0.0/4)."""
    net = ipaddress.ip_network(block)
    inner = [n for n in (ipaddress.ip_network(b) for b, _ in SPECIAL_BLOCKS)
             if n != net and n.version == net.version and n.subnet_of(net)]
    rng = random.Random(block)
    first, last = int(net.network_address), int(net.broadcast_address)
    samples = [first, last, *(rng.randint(first, last) for _ in range(300))]
    addrs = [ipaddress.ip_address(v) for v in samples]
    words = {ip_type(str(a)) for a in addrs if not any(a in n for n in inner)}
    assert words == {ip_type(str(net.network_address))}


def test_unparseable_addresses_are_unknown(files):
    junk = ["", "junk", "1.2.3.256", "01.2.3.4", "1.2.3.4/24", "2a00::g", ":::", "1.2.3", None, "1.2.3.4 "]
    table = NetIntel.load(files).classify(pa.array(junk, pa.string()))
    assert table.num_rows == len(junk)
    assert table["net_class"].to_pylist() == ["unknown"] * len(junk)
    assert table["decided_by"].null_count == len(junk) and table["asn"].null_count == len(junk)
    assert table["ip"].to_pylist() == junk


def test_input_kinds_and_output_schema(files):
    intel = NetIntel.load(files)
    ips = ["5.0.1.1", None, "5.0.1.1", "10.0.0.1", "2a00:1000::2"]
    expected = intel.classify(ips)
    assert expected.schema == OUTPUT_SCHEMA
    assert expected["net_class"].to_pylist() == [
        "residential_isp", "unknown", "residential_isp", "private", "mobile"]
    variants = [pa.array(ips), pa.chunked_array([ips[:2], ips[2:]]), pa.array(ips).dictionary_encode(),
                pa.array(ips, pa.large_string()), pa.chunked_array([], pa.string())]
    for variant in variants[:-1]:
        assert intel.classify(variant).equals(expected)
    assert intel.classify(variants[-1]).num_rows == 0


def test_no_files_gives_private_and_unknown_only():
    intel = NetIntel.load(IntelSettings())
    out = intel.classify(["8.8.8.8", "10.0.0.1", "2a00:1450::1"])
    assert out["net_class"].to_pylist() == ["unknown", "private", "unknown"]
    assert [s.kind for s in intel.sources()] == ["builtin"]
    rows = classify_cli_rows(["8.8.8.8", "10.0.0.1"], IntelSettings())
    assert "no data files configured" in rows[0]["warnings"] and rows[1]["warnings"] is None


def test_sources_report_dates_and_staleness(files, tmp_path):
    v4 = files.asn_files[0]
    old = time.time() - 75 * 86400
    os.utime(v4, (old, old))
    infos = {s.label: s for s in NetIntel.load(files).sources()}
    assert infos[str(v4)].stale and infos[str(v4)].date_from == "mtime"
    assert 74.9 < infos[str(v4)].age_days < 75.1
    assert not infos[str(files.asn_files[1])].stale
    assert infos[str(files.cloud_files[0])].date_from == "createDate"
    assert infos[str(files.tor_files[0])].date_from == "newest entry"
    assert infos[str(files.mmdb_files[0])].date_from == "build_epoch"
    assert infos["builtin:asn_classes.csv"].date is not None
    relaxed = IntelSettings(asn_files=files.asn_files, max_age_days=80)
    assert not any(s.stale for s in NetIntel.load(relaxed).sources())


def test_cli_rows_name_the_deciding_file_its_age_and_warn_when_stale(files):
    v4 = files.asn_files[0]
    old = time.time() - 61 * 86400
    os.utime(v4, (old, old))
    rows = {r["ip"]: r for r in classify_cli_rows(["5.0.1.5", "5.0.2.8", "10.0.0.1", "nope"], files)}
    home = rows["5.0.1.5"]
    assert (home["net_class"], home["decided_by"]) == ("residential_isp", f"asn-table:{v4}")
    assert 60.9 < home["source_age_days"] < 61.1
    assert f"{v4} is 61 days old (older than 60 days)" in home["warnings"]
    cloud = rows["5.0.2.8"]
    assert (cloud["decided_by"], cloud["detail"], cloud["source_date"]) == (
        f"cloud:{files.cloud_files[0]}", "AWS EC2 eu-central-1", "2099-01-01")
    assert str(v4) in cloud["warnings"]  # its ASN still came from the stale table
    assert rows["10.0.0.1"]["warnings"] is None and rows["10.0.0.1"]["source_date"] is None
    assert rows["nope"]["warnings"] == "not an IP address"
    assert set(home) == {"ip", "net_class", "asn", "as_name", "country", "decided_by", "detail",
                         "source_date", "source_age_days", "warnings"}


def test_settings_from_config_mapping(files):
    mapping = {"asn_files": [str(p) for p in files.asn_files], "max_age_days": 30}
    settings = IntelSettings.from_mapping(mapping)
    assert settings.asn_files == files.asn_files and settings.max_age_days == 30
    assert IntelSettings.from_mapping(None) == IntelSettings()
    with pytest.raises(ConfigError, match="unknown setting"):
        IntelSettings.from_mapping({"asn_file": "x"})


def test_load_is_cached_until_a_file_changes(files):
    first = NetIntel.load(files)
    assert NetIntel.load(files) is first
    v4 = files.asn_files[0]
    v4.write_text(V4_TSV.replace("Example Hosting GmbH", "Example Wireless"))
    os.utime(v4, (time.time() + 5, time.time() + 5))
    second = NetIntel.load(files)
    assert second is not first
    assert second.classify(["5.0.0.1"])["net_class"].to_pylist() == ["mobile"]


def test_missing_or_unknown_files_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        NetIntel.load(IntelSettings(tor_files=[tmp_path / "nope"]))
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not a cloud range file"):
        NetIntel.load(IntelSettings(cloud_files=[bad]))
    with pytest.raises(ConfigError, match="max_age_days"):
        IntelSettings(max_age_days=-1)


def test_settings_accept_strings_and_single_paths(tmp_path):
    s = IntelSettings(asn_files=str(tmp_path / "a.tsv"), tor_files=[str(tmp_path / "t")])
    assert s.asn_files == (tmp_path / "a.tsv",) and s.tor_files == (tmp_path / "t",)
    assert hash(s) == hash(IntelSettings(asn_files=[tmp_path / "a.tsv"], tor_files=(tmp_path / "t",)))


def test_many_rows_few_distinct_broadcast_back(files):
    ips = ["5.0.1.1", "8.0.0.1", "10.0.0.1", "junk"] * 2500
    table = NetIntel.load(files).classify(ips)
    counts = table.group_by("net_class").aggregate([("ip", "count")]).to_pylist()
    assert {r["net_class"]: r["ip_count"] for r in counts} == {
        "residential_isp": 2500, "hosting": 2500, "private": 2500, "unknown": 2500}


def test_high_cardinality_path_matches_the_deduplicating_path(files, monkeypatch):
    """Mostly-distinct input skips dictionary encoding; the answer must not change."""
    from bothunt.netclass import resolve

    ips = ["5.0.1.1", "8.0.0.1", None, "10.0.0.1", "junk", "5.0.2.8", "2a00:1000::1", "5.0.1.1", "::1"] * 3
    deduplicated = NetIntel.load(files).classify_detail(ips)
    monkeypatch.setattr(resolve, "SAMPLE_ROWS", 4)
    assert resolve.distinct_values(pa.array(ips))[1] is None  # the per-row path is really taken
    assert NetIntel.load(files).classify_detail(ips).equals(deduplicated)


def test_overlaps_across_files_and_builtin_names(tmp_path):
    """The smaller range wins across files; at equal size the file listed first wins; an AS the data
    names without a name gets the built-in table's name."""
    first, second = tmp_path / "first.tsv", tmp_path / "second.tsv"
    first.write_text("20.0.0.0\t20.0.255.255\t64500\tDE\tBig Hosting\n"
                     "20.1.0.0\t20.1.0.255\t64501\tDE\tFirst Net\n")
    second.write_text("20.0.5.0\t20.0.5.255\t13335\tUS\t\n20.1.0.0\t20.1.0.255\t64502\tDE\tSecond Net\n")
    intel = NetIntel.load(IntelSettings(asn_files=(first, second)))
    out = _by_ip(intel.classify(["20.0.4.255", "20.0.5.0", "20.0.5.255", "20.0.6.0", "20.1.0.7"]))
    got = {ip: (r["asn"], r["as_name"], r["net_class"]) for ip, r in out.items()}
    assert got == {"20.0.4.255": (64500, "Big Hosting", "hosting"), "20.0.5.0": (13335, "Cloudflare", "cdn"),
                   "20.0.5.255": (13335, "Cloudflare", "cdn"), "20.0.6.0": (64500, "Big Hosting", "hosting"),
                   "20.1.0.7": (64501, "First Net", "unknown")}
