from bothunt.config import load_settings
from bothunt.enrich import enrich
from bothunt.schema import Finding


def _f(**kw):
    base = dict(detection="beacon", title="t", severity="high", score=0.9, first_seen=None, last_seen=None,
                explanation="e")
    base.update(kw)
    return Finding(**base)


def test_remote_side_and_listed_addresses_are_classified(tmp_path):
    asn = tmp_path / "ip2asn.tsv"
    asn.write_text("64.225.0.0\t64.225.255.255\t14061\tUS\tDIGITALOCEAN-ASN\n"
                   "73.0.0.0\t73.255.255.255\t7922\tUS\tCOMCAST-7922\n")
    settings = load_settings(None).replace(intel={"asn_files": [str(asn)]})
    beacon = _f(src_ip="10.0.0.5", dst_ip="64.225.1.7")
    flood = _f(detection="inbound_flood", dst_ip="10.0.0.9", dst_port=22,
               evidence={"top_sources": [{"ip": "73.1.2.3"}, {"ip": "73.9.9.9"}, {"ip": "64.225.9.9"}]})
    out = enrich([beacon, flood], settings)
    assert out[0].evidence["remote"]["net_class"] == "hosting"
    assert out[0].evidence["remote"]["asn"] == 14061
    assert "remote" not in out[1].evidence  # distributed flood: no single remote source
    mix = out[1].evidence["remote_mix"]
    assert mix["addresses"] == 3
    assert mix["by_class"] == {"residential_isp": 2, "hosting": 1}
    assert mix["top_asns"][0] == {"asn": "AS7922 COMCAST-7922", "count": 2}
    assert out[0].id == beacon.id  # enrichment never changes identity
