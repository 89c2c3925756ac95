"""Each data-file layout read on its own: counts, dates, rejects, and the built-in ASN table."""

import gzip
import importlib.util
import ipaddress
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import maxminddb
import pyarrow as pa
import pytest

from bothunt.errors import ConfigError
from bothunt.netclass.asnclass import CLASS_CODE, CLASSES, builtin_table, classify_asns, parse_table
from bothunt.netclass.cloud import load_cloud_file
from bothunt.netclass.iptoasn import load_asn_table
from bothunt.netclass.mmdb import MmdbSource
from bothunt.netclass.tor import load_tor_file


def _writer_module():
    """The test helper beside this file (tests/unit is not a package under importlib mode)."""
    name = "netclass_mmdb_writer"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


mmdb_writer = _writer_module()

IPTOASN_V4 = """\
1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET
1.0.1.0\t1.0.3.255\t0\tNone\tNot routed
5.0.0.0\t5.0.255.255\t64500\tDE\tExample Hosting GmbH
not-an-ip\t5.1.0.0\t64501\tDE\tbroken row
5.2.0.0\t5.2.0.255\tASX\tDE\tbad asn
6.0.0.0\t6.0.0.255\t7922\tNone\tCOMCAST-7922
"""


def _routed_lines(text):
    """Data lines whose ASN column is a positive number, counted without the reader."""
    count = 0
    for line in text.splitlines():
        cols = line.split("\t")
        if cols[2].isdigit() and int(cols[2]) > 0:
            try:
                ipaddress.ip_address(cols[0])
                ipaddress.ip_address(cols[1])
            except ValueError:
                continue
            count += 1
    return count


def test_iptoasn_tsv_counts_rejects_and_columns(tmp_path):
    path = tmp_path / "ip2asn-v4.tsv"
    path.write_text(IPTOASN_V4)
    rows = load_asn_table(path, 60)
    assert rows.info.layout == "iptoasn-tsv"
    assert rows.info.records == _routed_lines(IPTOASN_V4) == 3
    assert rows.info.rejected == 2  # the unparseable start and the non-numeric ASN
    assert rows.asn.tolist() == [13335, 64500, 7922]
    assert rows.countries.to_pylist() == ["US", "DE", None]  # "None" means no country
    assert rows.names.to_pylist() == ["CLOUDFLARENET", "Example Hosting GmbH", "COMCAST-7922"]
    assert len(rows.v4) == 3 and len(rows.v6) == 0


def test_iptoasn_gzip_combined_and_u32_layouts(tmp_path):
    text = ("1.0.0.0\t1.0.0.255\t13335\tUS\tCF\n"
            "2a00:1450::\t2a00:1450:ffff:ffff:ffff:ffff:ffff:ffff\t15169\tUS\tGOOGLE\n")
    path = tmp_path / "combined.data"  # gzip told by content, not by name
    path.write_bytes(gzip.compress(text.encode()))
    rows = load_asn_table(path, 60)
    assert (len(rows.v4), len(rows.v6)) == (1, 1)
    assert int(rows.v6.start_hi[0]) == 0x2A00145000000000 and int(rows.v6.end_lo[0]) == (1 << 64) - 1
    u32 = tmp_path / "ip2asn-v4-u32.tsv"
    u32.write_text("16777216\t16777471\t13335\tUS\tCF\n")
    rows = load_asn_table(u32, 60)
    assert rows.v4.start_lo.tolist() == [16777216] and rows.v4.end_lo.tolist() == [16777471]


def test_asn_csv_layout_with_header(tmp_path):
    path = tmp_path / "dbip-asn-lite.csv"
    path.write_text('ip_range_start,ip_range_end,asn,org\n1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."\n')
    rows = load_asn_table(path, 60)
    assert rows.info.layout == "asn-csv" and rows.names.to_pylist() == ["Cloudflare, Inc."]


def test_asn_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_asn_table(tmp_path / "missing.tsv", 60)
    junk = tmp_path / "junk.txt"
    junk.write_text("hello world\n")
    with pytest.raises(ConfigError, match=r"junk\.txt: not an IP-to-ASN table"):
        load_asn_table(junk, 60)


def test_mmdb_source_reads_three_publishers_layouts(tmp_path):
    path = mmdb_writer.write_mmdb(tmp_path / "asn.mmdb", [
        ("5.0.0.0/16", {"autonomous_system_number": 64500,
                        "autonomous_system_organization": "Example Hosting"}),
        ("6.0.0.0/24", {"asn": "AS7922", "as_name": "Comcast Cable", "as_domain": "comcast.com",
                        "country_code": "US", "country": "United States", "continent": "North America"}),
        ("7.0.0.0/24", {"country": {"iso_code": "fr", "names": {"en": "France"}}}),
        ("2a00::/16", {"autonomous_system_number": 64501, "autonomous_system_organization": "V6 Net"}),
    ], build_epoch=1_700_000_000, database_type="GeoLite2-ASN")
    src = MmdbSource(path, 60)
    assert src.info.layout == "GeoLite2-ASN" and src.info.date == datetime.fromtimestamp(1_700_000_000, UTC)
    asns, names, countries = src.lookup(["5.0.255.255", "6.0.0.1", "7.0.0.9", "2a00::1", "8.8.8.8"],
                                        [4, 4, 4, 6, 4])
    assert asns == [64500, 7922, 0, 64501, 0]
    assert names == ["Example Hosting", "Comcast Cable", None, "V6 Net", None]
    assert countries == [None, "US", "FR", None, None]


def test_mmdb_v4_only_database_ignores_v6(tmp_path):
    path = mmdb_writer.write_mmdb(tmp_path / "v4.mmdb", [("5.0.0.0/16", {"autonomous_system_number": 1})],
                                  ip_version=4, record_size=24)
    assert MmdbSource(path, 60).lookup(["2a00::1", "5.0.0.1"], [6, 4])[0] == [0, 1]
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(ConfigError, match="not a readable MaxMind DB"):
        MmdbSource(bad, 60)


@pytest.mark.parametrize("record_size", [24, 28, 32])
def test_mmdb_writer_round_trips_with_both_readers(tmp_path, record_size):
    nets = [("5.0.0.0/16", {"n": 1}), ("5.0.1.0/24", {"n": 2, "ok": True, "f": 1.5}), ("2a00::/16", {"n": 3})]
    path = mmdb_writer.write_mmdb(tmp_path / "t.mmdb", nets, record_size=record_size)
    for mode in (maxminddb.MODE_MMAP_EXT, maxminddb.MODE_FILE):
        reader = maxminddb.open_database(str(path), mode)
        probes = ("5.0.0.0", "5.0.1.255", "5.0.2.0", "5.1.0.0", "2a00:ffff::", "2a01::")
        got = [reader.get(ip) for ip in probes]
        assert got == [{"n": 1}, {"n": 2, "ok": True, "f": 1.5}, {"n": 1}, None, {"n": 3}, None]
        reader.close()


AWS = {"syncToken": "1", "createDate": "2024-03-01-10-20-30",
       "prefixes": [{"ip_prefix": "3.0.0.0/15", "region": "us-east-1", "service": "AMAZON",
                     "network_border_group": "us-east-1"},
                    {"ip_prefix": "3.0.0.0/15", "region": "us-east-1", "service": "EC2",
                     "network_border_group": "us-east-1"},
                    {"ip_prefix": "13.32.0.0/15", "region": "GLOBAL", "service": "CLOUDFRONT",
                     "network_border_group": "GLOBAL"},
                    {"ip_prefix": "bogus", "region": "x", "service": "EC2"}],
       "ipv6_prefixes": [{"ipv6_prefix": "2600:1f00::/24", "region": "us-east-1", "service": "AMAZON"}]}
AZURE = {"changeNumber": 300, "cloud": "Public", "values": [
    {"name": "AzureCloud", "id": "AzureCloud",
     "properties": {"changeNumber": 1, "region": "", "addressPrefixes": ["20.0.0.0/11", "2603:1000::/24"]}},
    {"name": "AzureFrontDoor.Frontend", "id": "AzureFrontDoor.Frontend",
     "properties": {"addressPrefixes": ["20.0.0.0/24"]}}]}
GCP = {"syncToken": "1", "creationTime": "2024-02-01T08:00:00.000000",
       "prefixes": [{"ipv4Prefix": "34.0.0.0/15", "service": "Google Cloud", "scope": "us-central1"},
                    {"ipv6Prefix": "2600:1900::/35", "service": "Google Cloud", "scope": "us-central1"}]}
ORACLE = {"last_updated_timestamp": "2024-01-15T00:00:00", "regions": [
    {"region": "us-phoenix-1", "cidrs": [{"cidr": "129.146.0.0/21", "tags": ["OCI"]}]}]}


@pytest.mark.parametrize(("doc", "name", "layout", "records", "date"), [
    (AWS, "ip-ranges.json", "aws", 4, datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
    (AZURE, "ServiceTags_Public_20240205.json", "azure", 3, datetime(2024, 2, 5, tzinfo=UTC)),
    (GCP, "cloud.json", "gcp", 2, datetime(2024, 2, 1, 8, tzinfo=UTC)),
    (ORACLE, "public_ip_ranges.json", "oracle", 1, datetime(2024, 1, 15, tzinfo=UTC)),
])
def test_cloud_layouts(tmp_path, doc, name, layout, records, date):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    rows = load_cloud_file(path, 60)
    assert (rows.info.layout, rows.info.records, rows.info.date) == (layout, records, date)
    assert rows.info.stale  # every fixture date is long past


def test_cloud_classes_and_details(tmp_path):
    path = tmp_path / "ip-ranges.json"
    path.write_text(json.dumps(AWS))
    rows = load_cloud_file(path, 60)
    assert rows.info.rejected == 1
    assert [CLASSES[c] for c in rows.classes] == ["cloud", "cloud", "cdn", "cloud", "cloud"]
    assert rows.details.to_pylist()[:3] == [
        "AWS AMAZON us-east-1", "AWS EC2 us-east-1", "AWS CLOUDFRONT GLOBAL"]
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(ConfigError, match=r"other\.json: not a cloud range file"):
        load_cloud_file(other, 60)


def test_azure_without_date_in_name_uses_mtime(tmp_path):
    path = tmp_path / "tags.json"
    path.write_text(json.dumps(AZURE))
    old = time.time() - 90 * 86400
    os.utime(path, (old, old))
    info = load_cloud_file(path, 60).info
    assert info.date_from == "mtime" and 89.9 < info.age_days < 90.1 and info.stale


EXIT_ADDRESSES = """\
ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E
Published 2024-05-01 10:08:50
LastStatus 2024-05-01 11:00:00
ExitAddress 162.247.74.201 2024-05-01 11:03:12
ExitNode 0091174DE56EA5E9DE9A6BCE8E4E4C0C4C0F6D4C
Published 2024-05-02 09:00:00
LastStatus 2024-05-02 10:00:00
ExitAddress 185.220.101.5 2024-05-02 10:30:00
ExitAddress [2a0b:f4c2::5] 2024-05-02 10:31:00
"""


def test_tor_exit_addresses_layout(tmp_path):
    path = tmp_path / "exit-addresses"
    path.write_text(EXIT_ADDRESSES)
    rows = load_tor_file(path, 60)
    expected = sum(1 for line in EXIT_ADDRESSES.splitlines() if line.startswith("ExitAddress "))
    assert rows.info.layout == "tor-exit-addresses" and rows.info.records == expected == 3
    assert (len(rows.v4), len(rows.v6)) == (2, 1)
    assert rows.info.date == datetime(2024, 5, 2, 10, 31, tzinfo=UTC)


def test_tor_plain_list_layout(tmp_path):
    path = tmp_path / "torbulkexitlist"
    path.write_text("# exits\n185.220.101.5\n\n2a0b:f4c2::6\nnot-an-address\n")
    rows = load_tor_file(path, 60)
    assert (rows.info.layout, rows.info.records, rows.info.rejected) == ("tor-list", 2, 1)
    assert rows.v4.payload.tolist() == [0] and rows.v6.payload.tolist() == [1]
    assert rows.info.date_from == "mtime"


def test_builtin_table_has_the_well_known_asns():
    table = builtin_table()
    expected = {14061: "hosting", 16276: "hosting", 24940: "hosting", 63949: "hosting", 20473: "hosting",
                51167: "hosting", 9009: "hosting", 16509: "cloud", 14618: "cloud", 8075: "cloud",
                15169: "cloud", 396982: "cloud", 13335: "cdn", 20940: "cdn", 16625: "cdn", 54113: "cdn",
                7922: "residential_isp", 3320: "residential_isp", 21928: "mobile"}
    codes, _ = table.lookup(pa.array(list(expected)).to_numpy())
    assert [CLASSES[c] for c in codes] == list(expected.values())
    assert table.as_of is not None and table.rows == len(set(table.asns.tolist()))


def test_table_parser_skips_bad_rows():
    table = parse_table("# as_of: 2025-01-02\nasn,class,name\n5,hosting,A\nx,cloud,B\n6,alien,C\n1,cdn,\n")
    assert table.asns.tolist() == [1, 5] and table.as_of == datetime(2025, 1, 2, tzinfo=UTC)
    assert table.names.to_pylist() == [None, "A"]


@pytest.mark.parametrize(("name", "cls"), [
    ("Acme CDN Services", "cdn"), ("Super Hosting Ltd", "hosting"), ("HostPapa", "hosting"),
    ("Cheap VPS Co", "hosting"), ("ServerMania", "hosting"), ("Nordic Data Center AB", "hosting"),
    ("Blue Cloud Networks", "hosting"), ("Telecom Hosting SRL", "hosting"), ("Acme Mobile", "mobile"),
    ("Verizon Wireless", "mobile"), ("Telefonica Mobilfunk", "mobile"), ("Big Telecom SA", "residential_isp"),
    ("Valley Broadband", "residential_isp"), ("Ghostly Networks", None), ("University of Nowhere", None),
])
def test_as_name_keywords(name, cls):
    codes, via = classify_asns(pa.array([64512]).to_numpy(), pa.array([name]))
    assert (CLASSES[codes[0]] if codes[0] >= 0 else None) == cls
    assert (via[0] >= 2) == (cls is not None)


def test_table_beats_keywords():
    codes, via = classify_asns(pa.array([13335, 64512]).to_numpy(), pa.array(["Cloud Hosting", None]))
    assert codes.tolist() == [CLASS_CODE["cdn"], -1] and via.tolist() == [1, 0]
