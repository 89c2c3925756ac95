import pyarrow as pa
import pytest

from bothunt.netclass import InternalNetworks, annotate, directions, ip_type
from bothunt.schema import conform


@pytest.mark.parametrize(("ip", "expected"), [
    ("8.8.8.8", "Public"), ("10.1.2.3", "Private"), ("172.31.255.255", "Private"), ("172.32.0.1", "Public"),
    ("192.168.0.1", "Private"), ("100.64.0.1", "Private"), ("127.0.0.1", "Loopback"),
    ("169.254.10.1", "LinkLocal"), ("224.0.0.251", "Multicast"), ("255.255.255.255", "Broadcast"),
    ("0.0.0.0", "Reserved"), ("192.0.2.1", "Reserved"), ("240.0.0.1", "Reserved"),
    ("2001:4860:4860::8888", "Public"), ("::1", "Loopback"), ("fe80::1%eth0", "LinkLocal"),
    ("ff02::fb", "Multicast"), ("fd12:3456::1", "Private"), ("2001:0:4136:e378::1", "Teredo"),
    ("::ffff:8.8.8.8", "FourToSixMapping"), ("2001:db8::1", "Reserved"), ("not-an-ip", None), (None, None),
])
def test_ip_type_uses_defender_vocabulary(ip, expected):
    assert ip_type(ip) == expected


def test_directions_from_internal_networks_v4_and_v6():
    src = pa.array(["10.0.0.5", "8.8.8.8", "10.0.0.5", "1.1.1.1", "fd00::1", "10.0.0.5"])
    dst = pa.array(["1.1.1.1", "10.0.0.5", "10.0.0.6", "8.8.8.8", "2001:4860::1", "224.0.0.251"])
    assert directions(src, dst, InternalNetworks()).to_pylist() == [
        "outbound", "inbound", "internal", "external", "outbound", "internal"]


def test_custom_internal_networks_change_direction():
    src, dst = pa.array(["147.32.80.37"]), pa.array(["8.8.8.8"])
    assert directions(src, dst, InternalNetworks(["147.32.0.0/16"])).to_pylist() == ["outbound"]
    assert directions(src, dst, InternalNetworks()).to_pylist() == ["external"]


def test_annotate_keeps_source_values_and_uses_remote_side():
    t = conform(pa.table({
        "src_ip": ["8.8.8.8", "10.0.0.1", "10.0.0.1"],
        "dst_ip": ["10.0.0.1", "fe80::1", "1.1.1.1"],
        "direction": [None, None, "inbound"],
        "remote_ip_type": [None, None, "Private"],
    }), "conn")
    out = annotate(t, InternalNetworks())
    assert out["direction"].to_pylist() == ["inbound", "internal", "inbound"]
    # inbound: the remote side is the source; Defender's own value wins where present
    assert out["remote_ip_type"].to_pylist() == ["Public", "LinkLocal", "Private"]


def test_vectorised_classification_agrees_with_per_address_rules():
    import numpy as np

    from bothunt.netclass import internal_mask, ip_types

    rng = np.random.default_rng(3)
    ints = rng.integers(0, 2**32, 20000, dtype=np.uint64)
    edge = ["0.0.0.0", "9.255.255.255", "10.0.0.0", "11.0.0.0", "100.63.255.255", "100.64.0.0", "100.127.255.255",
            "172.15.255.255", "172.16.0.0", "172.31.255.255", "192.0.0.9", "192.0.2.255", "198.17.255.255",
            "198.18.0.0", "223.255.255.255", "224.0.0.0", "239.255.255.255", "240.0.0.1", "255.255.255.255",
            "01.2.3.4", "1.2.3", "256.1.1.1", "::1", "2001:db8::1", "8.8.8.8", None, ""]
    ips = [f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}" for v in ints.tolist()] + edge
    arr = pa.array(ips)
    assert ip_types(arr).to_pylist() == [ip_type(x) for x in ips]
    nets = InternalNetworks(["10.0.0.0/8", "100.64.0.0/10", "8.8.8.0/24", "fd00::/8"])
    expected = [bool(nets.contains(x) or ip_type(x) in ("Loopback", "LinkLocal", "Multicast", "Broadcast",
                                                        "Reserved")) for x in ips]
    assert internal_mask(arr, nets).tolist() == expected
