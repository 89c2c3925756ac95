"""A file no source accepts gets a plain verdict, unless its header shows which format it nearly is."""

from __future__ import annotations

import json

import pytest

from bothunt.errors import UnknownFormatError
from bothunt.sources import sniff


def _verdict(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UnknownFormatError) as exc:
        sniff(path)
    return str(exc.value)


def test_defender_csv_without_remote_port_names_the_format_and_the_column(tmp_path):
    msg = _verdict(tmp_path, "dne.csv", "Timestamp,DeviceName,ActionType,RemoteIP,LocalIP,InitiatingProcessFileName\n"
                                        "2024-01-01T00:00:00Z,pc1,ConnectionSuccess,1.2.3.4,10.0.0.1,svchost.exe\n")
    assert "looks like a Microsoft Defender DeviceNetworkEvents export but lacks column(s) RemotePort " in msg
    assert "(needed: Timestamp or TimeGenerated, ActionType, LocalIP, RemoteIP, RemotePort)" in msg
    assert "tried: zeek" in msg  # the formats tried are still listed


def test_defender_json_lines_without_two_columns_lists_both(tmp_path):
    rec = {"Timestamp": "2024-01-01T00:00:00Z", "DeviceId": "d1", "ActionType": "ConnectionSuccess",
           "RemoteIP": "1.2.3.4"}
    msg = _verdict(tmp_path, "dne.json", json.dumps(rec) + "\n")
    assert "lacks column(s) LocalIP, RemotePort " in msg


def test_argus_tab_header_without_dstaddr(tmp_path):
    msg = _verdict(tmp_path, "flows.binetflow", "StartTime\tDur\tProto\tSrcAddr\tSport\tDir\tDport\tState\n"
                                                "2011/08/10 09:46:59.607825\t1.0\ttcp\t1.2.3.4\t1\t->\t80\tS_\n")
    assert "looks like an Argus binetflow file but lacks column(s) DstAddr " in msg


@pytest.mark.parametrize("text", [
    "Label,Name\nx,y\n",  # one telltale word in an unrelated CSV is no near miss
    "hello, this is not telemetry\n",
    "Timestamp,RemoteIP\n2024-01-01T00:00:00Z,1.2.3.4\n",  # two required names, nothing that says Defender
])
def test_unrelated_files_get_the_plain_verdict(tmp_path, text):
    msg = _verdict(tmp_path, "x.csv", text)
    assert msg.split(": ", 1)[1].startswith("not a telemetry format bothunt reads; tried: zeek")
    assert "looks like" not in msg
