"""The simulator's output read back with bothunt's own sources: no format is rejected anywhere, every
format holds what the simulator says it wrote, and each planted attack appears in every format that can
observe it with the same number of events (attributed by the attack's own remote addresses)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from bothunt.simulate import FORMATS, prepare, run
from bothunt.simulate.net import ip_text
from bothunt.sources import ReadContext, get_source, sniff

SCENARIOS = ("beacon-04", "beacon-05", "beacon-06", "relay-02", "stuff-rdp-slow", "sweep-single", "dga-dict",
             "fast-flux")
ARGS = {"seed": 13, "hosts": 50, "scale": 0.02, "days": 0.5}
FILES = {"zeek": "zeek", "zeek-json": "zeek-json", "defender": "defender/DeviceNetworkEvents.csv",
         "cef": "cef/firewall.cef", "suricata": "suricata/eve.json"}
SOURCE = {"zeek": "zeek", "zeek-json": "zeek", "defender": "defender", "cef": "cef", "suricata": "suricata"}


def read(source_id: str, paths: list[Path]) -> tuple[dict[str, pa.Table], int, list[str]]:
    tables: dict[str, list[pa.Table]] = {}
    rejected = 0
    sniffed = []
    for path in paths:
        ctx = ReadContext(str(path))
        sniffed.append(sniff(path).id)
        for batch in get_source(source_id).read(path, ctx):
            tables.setdefault(batch.table, []).append(batch.data)
        rejected += ctx.rejected
    return {k: pa.concat_tables(v, promote_options="default") for k, v in tables.items()}, rejected, sniffed


@pytest.fixture(scope="module")
def sim(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("formats")
    report = run(out, formats=FORMATS, scenarios=SCENARIOS, **ARGS)
    _, planted, _ = prepare(scenarios=SCENARIOS, **ARGS)
    remote = {p.truth.id: {ip_text(a) for a in p.remote.tolist()} for p in planted}
    back = {}
    for fmt, rel in FILES.items():
        path = out / rel
        paths = sorted(path.glob("*.log")) if path.is_dir() else [path]
        back[fmt] = read(SOURCE[fmt], paths)
    return report, remote, back


def count_touching(conn: pa.Table, addresses: set[str]) -> int:
    values = pa.array(sorted(addresses))
    return int(pc.sum(pc.or_(pc.is_in(conn["src_ip"], values), pc.is_in(conn["dst_ip"], values))).as_py() or 0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_rejects_and_every_event_read_back(sim, fmt: str) -> None:  # type: ignore[no-untyped-def]
    report, _, back = sim
    tables, rejected, sniffed = back[fmt]
    assert rejected == 0
    assert set(sniffed) == {SOURCE[fmt]}  # content sniffing recognises every file
    assert tables["conn"].num_rows == report.total(fmt)
    if fmt == "cef":
        assert "dns" not in tables and report.total_dns(fmt) == 0
    else:
        assert tables["dns"].num_rows == report.total_dns(fmt) > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_attack_appears_with_its_events(sim, fmt: str) -> None:  # type: ignore[no-untyped-def]
    report, remote, back = sim
    conn = back[fmt][0]["conn"]
    for sid, addresses in remote.items():
        # the simulator counts the UDP/53 legs of a scenario's lookups too; those touch the resolver.
        # Defender has no such legs: it records a lookup as DnsConnectionInspected, in the dns table only.
        legs = 0 if fmt == "defender" else report.dns_events[fmt].get(sid, 0)
        expected = report.events[fmt].get(sid, 0) - legs
        assert count_touching(conn, addresses) == expected, (fmt, sid)
    # network sensors see every planted connection; the firewall and Defender see their own subsets
    full = {sid: report.events["zeek"].get(sid, 0) - report.dns_events["zeek"].get(sid, 0) for sid in remote}
    if fmt in ("zeek-json", "suricata"):
        assert {sid: count_touching(conn, a) for sid, a in remote.items()} == full
    if fmt == "cef":  # everything planted crosses the perimeter
        assert {sid: count_touching(conn, a) for sid, a in remote.items()} == full
    if fmt == "defender":  # no refused inbound probes of the sweep; everything else on a managed device
        assert count_touching(conn, remote["sweep-single"]) < full["sweep-single"] / 100
        for sid in ("beacon-04", "beacon-05", "beacon-06", "relay-02", "stuff-rdp-slow"):
            assert count_touching(conn, remote[sid]) == full[sid], sid


def test_defender_carries_device_process_and_account(sim) -> None:  # type: ignore[no-untyped-def]
    report, remote, back = sim
    conn = back["defender"][0]["conn"]
    truth = {t.id: t for t in report.truth}
    hidden = conn.filter(pc.is_in(conn["dst_ip"], pa.array(sorted(remote["beacon-04"]))))
    assert hidden.num_rows > 0
    assert set(hidden["process"].to_pylist()) == {"svchost.exe"}
    assert set(hidden["host"].to_pylist()) == {truth["beacon-04"].match_optional["host"]}
    assert all("svchost.exe -k netsvcs -p -s Schedule" in c for c in hidden["cmdline"].to_pylist())
    rdp = conn.filter(pc.is_in(conn["src_ip"], pa.array(sorted(remote["stuff-rdp-slow"]))))
    assert set(rdp["process"].to_pylist()) == {"svchost.exe"} and set(rdp["dst_port"].to_pylist()) == {3389}
    assert set(rdp["action"].to_pylist()) == {"InboundConnectionAccepted"}
    assert set(rdp["dst_ip"].to_pylist()) == {truth["stuff-rdp-slow"].match["dst_ip"]}
    assert conn["host"].null_count == 0 and conn["process"].null_count < conn.num_rows


def test_names_reach_the_canonical_server_name(sim) -> None:  # type: ignore[no-untyped-def]
    report, remote, back = sim
    domain = next(t for t in report.truth if t.id == "beacon-05").match["domain"]
    for fmt in ("zeek", "zeek-json", "defender"):
        conn = back[fmt][0]["conn"]
        rows = conn.filter(pc.is_in(conn["dst_ip"], pa.array(sorted(remote["beacon-05"]))))
        names = set(rows["server_name"].to_pylist())
        assert names == {domain}, fmt


def test_dns_rows_keep_queries_answers_and_rcodes(sim) -> None:  # type: ignore[no-untyped-def]
    report, remote, back = sim
    flux = next(t for t in report.truth if t.id == "fast-flux")
    for fmt in ("zeek", "zeek-json", "defender", "suricata"):
        dns = back[fmt][0]["dns"]
        rows = dns.filter(pc.equal(dns["query"], flux.match["domain"]))
        answers = rows["answers"].to_pylist()
        assert rows.num_rows == report.dns_events[fmt]["fast-flux"], fmt
        assert {len(a) for a in answers} == {6}
        assert {x for a in answers for x in a} <= remote["fast-flux"]
        assert max(max(t) for t in rows["ttls"].to_pylist()) <= 120
    dga = next(t for t in report.truth if t.id == "dga-dict")
    for fmt in ("zeek", "zeek-json", "defender", "suricata"):
        dns = back[fmt][0]["dns"]
        rows = dns.filter(pc.equal(dns["src_ip"], dga.match["src_ip"]))
        # the victim's own Chrome probes are single-label; the bot's names are word.word.tld-shaped
        generated = rows.filter(pc.match_substring_regex(rows["query"], r"^[a-z]{8,}\.(com|net)$"))
        assert generated.num_rows == dga.params["lookups"], fmt
        rcodes = generated["rcode"].to_pylist()
        assert rcodes.count("NOERROR") == 1 and rcodes.count("NXDOMAIN") == len(rcodes) - 1, fmt

def test_defender_dns_rows_are_zeeks_lookups_with_the_device_name(sim) -> None:  # type: ignore[no-untyped-def]
    """Every lookup Zeek logs was made by a managed device, so Defender's DNS inspections are the same
    transactions: equal on every column both carry, plus the device's name, minus Zeek's uid."""
    _, _, back = sim
    cols = ["ts", "src_ip", "dst_ip", "query", "qtype", "rcode", "answers", "ttls"]
    order = [("ts", "ascending"), ("src_ip", "ascending"), ("query", "ascending")]
    zeek = back["zeek"][0]["dns"].select(cols).sort_by(order)
    defender = back["defender"][0]["dns"].sort_by(order)
    assert defender.num_rows == zeek.num_rows > 0
    assert defender.select(cols).equals(zeek)
    assert set(defender["source"].to_pylist()) == {"defender"}
    org = prepare(scenarios=SCENARIOS, **ARGS)[0].org
    addresses = pa.array([ip_text(a) for a in org.ips.tolist()])
    fqdns = pa.array([org.fqdn(i) for i in range(org.size)])
    assert defender["host"].equals(fqdns.take(pc.index_in(defender["src_ip"], addresses)))
    assert defender["host"].null_count == 0


def test_bytes_keep_their_direction(sim) -> None:  # type: ignore[no-untyped-def]
    """The relay's inbound legs carry small requests up and large replies down in every format with bytes."""
    _, remote, back = sim
    sums = {}
    for fmt in ("zeek", "zeek-json", "cef", "suricata"):
        conn = back[fmt][0]["conn"]
        rows = conn.filter(pc.is_in(conn["src_ip"], pa.array(sorted(remote["relay-02"]))))
        sums[fmt] = (pc.sum(rows["bytes_out"]).as_py(), pc.sum(rows["bytes_in"]).as_py())
        assert sums[fmt][0] < sums[fmt][1], fmt
    assert sums["zeek"] == sums["zeek-json"] == sums["cef"]
