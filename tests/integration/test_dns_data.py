"""dga and dns_c2 on real captures in ../shared/data, through the sources and ingest: the Simda host's
NXDOMAIN bursts (expectations counted from the raw dns.log with plain Python), and what fires on RITA's
proxy capture, the Remcos capture and the Suricata EVE file (printed; nothing at medium or above)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from bothunt.config import Settings
from bothunt.detections import dga, dns_c2
from bothunt.engine import open_tables
from bothunt.ingest import ingest_paths
from bothunt.schema import Finding, severity_rank
from bothunt.workspace import Workspace

pytestmark = pytest.mark.skipif(
    not resources.files("bothunt").joinpath("data", "dga_model.npz").is_file(),
    reason="src/bothunt/data/dga_model.npz is not built yet (tools/train_dga.py)")

SIMDA_V6 = "fd77:48a1:c0bb:0:b96c:506d:6c7f:e8be"


def hunt(paths: list[Path], tmp_path: Path) -> list[Finding]:
    ws = tmp_path / "ws"
    ingest_paths(paths, ws)
    tables = open_tables(Workspace.open(ws))
    found = [f for m in (dga, dns_c2) for f in m.detect(tables, Settings())]
    for f in found:
        print(f.severity, f.score, f.detection, f.src_ip, f.domain, f.title)
    return found




def test_simda_host_flagged_with_its_nxdomain_bursts(shared_data, tmp_path, zeek_rows):
    folder = shared_data / "zeek" / "ctu-botnet-355-1-simda"
    rows = zeek_rows(folder / "dns.log")
    local = set(dga.Params().ignore_suffixes)  # wpad.lan: a site-local name, never counted
    mine = [r for r in rows if r["id.orig_h"] == SIMDA_V6 and "." in r["query"]
            and r["query"].rsplit(".", 1)[1] not in local]
    assert all(r["query"].count(".") == 1 for r in mine if r["rcode_name"] == "NXDOMAIN")  # name == domain
    nx = {r["query"] for r in mine if r["rcode_name"] == "NXDOMAIN"}
    resolved = {r["query"] for r in mine if r["rcode_name"] == "NOERROR"}
    failed = nx - resolved
    assert len(failed) > 100
    found = hunt([folder], tmp_path)
    bots = [f for f in found if f.detection == "dga" and f.src_ip == SIMDA_V6]
    assert len(bots) == 1
    bot = bots[0]
    assert severity_rank(bot.severity) >= severity_rank("medium")
    ev = bot.evidence
    assert ev["failed_rare_domains"] == len(failed)
    assert ev["domains_in_bursts"] == len(failed) and ev["bursts"] >= 1
    sampled = {s["domain"] for s in ev["sample_names"]} | {n for b in ev["burst_times"] for n in b["sample"]}
    assert sampled <= failed
    assert ev["host_nxdomain"] == sum(r["rcode_name"] == "NXDOMAIN" for r in mine)
    assert ev["host_lookups"] == len(mine)
    # the other names of each burst (most of Simda's names resolve: sinkholed or parked) are reported
    # beside the failed ones, with their outcome as the raw log has it
    def reg(name: str) -> str:  # every name here is under .com
        return ".".join(name.split(".")[-2:])

    answered = {reg(q) for q in resolved}
    unanswered = {reg(r["query"]) for r in mine if r["rcode_name"] == "-"} - answered - nx
    others = {o["domain"]: o["outcome"] for b in ev["burst_times"] for o in b["other_names"]}
    assert others and set(others) <= unanswered | answered
    assert all((out == "resolved") == (name in answered) for name, out in others.items())
    assert sum(b["also_resolved"] + b["also_unanswered"] for b in ev["burst_times"]) > len(others) > 40
    # the same machine's IPv4 address resolved volykyc.com and pufymoq.com through 8.8.8.8 (sinkholed or
    # live): reported here for the record, with whatever verdict it gets
    v4 = [f for f in found if f.detection == "dga" and f.src_ip == "192.168.1.116"]
    print("IPv4 side:", [(f.severity, f.domain, f.evidence["failed_rare_domains"]) for f in v4])
    assert all(f.src_ip in (SIMDA_V6, "192.168.1.116") for f in found if f.detection == "dga")


@pytest.mark.parametrize("relpath", ["zeek/rita-proxy/dns.log", "zeek/ctu-sme-11-remcos", "suricata"])
def test_nothing_at_medium_on_other_captures(shared_data, tmp_path, relpath):
    found = hunt([shared_data / relpath], tmp_path)
    loud = [f for f in found if severity_rank(f.severity) >= severity_rank("medium")]
    assert loud == [], [f.title for f in loud]
