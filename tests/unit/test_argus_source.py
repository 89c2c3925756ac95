"""ArgusSource on small binetflow files built here: layouts, mapping, state words, skips, rejects."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from bothunt.errors import InputError
from bothunt.schema import conform, empty_table
from bothunt.sources import argus, base
from bothunt.sources.argus import ArgusSource
from bothunt.sources.base import ReadContext

CTU = "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,SrcBytes,Label"
TSV = "\t".join(["StartTime", "Dur", "Proto", "SrcAddr", "Sport", "Dir", "DstAddr", "Dport", "State", "sTos",
                 "dTos", "TotPkts", "TotBytes", "SrcBytes", "SrcPkts", "Label"])


def _row(state: str = "CON", proto: str = "udp", sport: str = "1025", dport: str = "53", tot: str = "2",
         totbytes: str = "200", srcbytes: str = "80", label: str = "flow=Background",
         start: str = "2011/08/16 10:04:56.397131") -> str:
    return ",".join([start, "0.5", proto, "147.32.84.165", sport, "  <->", "147.32.80.9", dport, state, "0", "0",
                     tot, totbytes, srcbytes, label])


def _write(tmp_path: Path, lines: list[str], name: str = "x.binetflow", end: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes("".join(ln + end for ln in lines).encode())
    return path


def _read(path: Path) -> tuple[pa.Table, list[tuple[int | None, str, str]], ReadContext]:
    rejects: list[tuple[int | None, str, str]] = []
    ctx = ReadContext(str(path), reject_fn=lambda line, reason, raw: rejects.append((line, reason, raw)))
    parts = []
    for batch in ArgusSource().read(path, ctx):
        assert batch.table == "conn"
        parts.append(conform(batch.data, "conn"))
    return (pa.concat_tables(parts) if parts else empty_table("conn")), rejects, ctx


def test_sniff_by_header() -> None:
    src = ArgusSource()
    assert src.sniff((CTU + "\n" + _row() + "\n").encode(), Path("a.txt")) == 95
    assert src.sniff(("\ufeff" + TSV + "\n").encode(), Path("a")) == 95
    assert src.sniff(b"StartTime,SrcAddr,DstAddr,Proto\n", Path("a")) == 80  # minimal ra -s output
    assert src.sniff(b'{"timestamp":"2021-06-06T16:00:00+0200","event_type":"flow"}\n', Path("a")) == 0
    assert src.sniff(b"ts,src,dst,port\n1,2,3,4\n", Path("x.binetflow")) == 0
    assert src.sniff((_row() + "\n").encode(), Path("x.binetflow")) == 0  # no header, no columns


def test_ctu_row_maps_to_conn(tmp_path: Path) -> None:
    path = _write(tmp_path, [CTU, _row(state="FSPA_FSPA", proto="tcp", sport="0x0050", dport="1033",
                                       tot="10", totbytes="5000", srcbytes="1200",
                                       label="flow=From-Botnet-V44-TCP-CC1")])
    table, rejects, _ = _read(path)
    assert rejects == []
    assert table.to_pylist() == [{
        "ts": datetime(2011, 8, 16, 10, 4, 56, 397131, tzinfo=UTC), "duration": 0.5,
        "src_ip": "147.32.84.165", "dst_ip": "147.32.80.9", "src_port": 80, "dst_port": 1033, "proto": "tcp",
        "service": None, "direction": None, "bytes_out": 1200, "bytes_in": 3800, "pkts_out": 10,
        "pkts_in": None, "state": "established", "action": "FSPA_FSPA", "host": None, "user": None,
        "process": None, "pid": None, "cmdline": None, "server_name": None, "remote_ip_type": None,
        "source": "argus", "uid": None, "label": "flow=From-Botnet-V44-TCP-CC1"}]


def test_tab_separated_with_src_pkts_splits_packets(tmp_path: Path) -> None:
    row = "\t".join(["2015/07/26 14:41:51.734831", "1.25", "tcp", "10.0.2.15", "49162", "   ->", "93.184.216.34",
                     "443", "SPA_SPA", "0", "0", "12", "4000", "1000", "5", "flow=Malware-TCP"])
    icmp = "\t".join(["2015/07/26 14:41:52", "0", "icmp", "10.0.2.15", "", "   ->", "8.8.8.8", "", "ECO", "0",
                      "", "1", "98", "98", "1", ""])
    table, rejects, _ = _read(_write(tmp_path, [TSV, row, icmp], end="\r\n"))
    assert rejects == []
    rows = table.to_pylist()
    assert [(r["pkts_out"], r["pkts_in"], r["bytes_out"], r["bytes_in"]) for r in rows] == [
        (5, 7, 1000, 3000), (1, 0, 98, 0)]
    assert [(r["src_port"], r["dst_port"], r["state"], r["label"]) for r in rows] == [
        (49162, 443, "established", "flow=Malware-TCP"), (None, None, "attempted", None)]
    assert rows[1]["ts"] == datetime(2015, 7, 26, 14, 41, 52, tzinfo=UTC)


STATE_WORDS = [  # (State, TotBytes with SrcBytes 80, expected state)
    ("S_", "80", "attempted"),          # SYN, nothing back
    ("S_RA", "140", "rejected"),        # RST-ACK back: closed port
    ("S_R", "140", "rejected"),
    ("SPA_SPA", "900", "established"),
    ("FSRPA_FSPA", "900", "established"),
    ("PA_PA", "900", "established"),    # mid-stream, both sides sent
    ("SRPA_", "80", "other"),           # one side sending data: one-way capture / crafted packets
    ("FSA_", "80", "other"),
    ("CON", "200", "established"), ("EST", "200", "established"), ("INT", "80", "attempted"),
    ("REQ", "80", "attempted"), ("RST", "80", "rejected"), ("URP", "80", "rejected"),
    ("URFIL", "80", "rejected"),
    ("ECO", "160", "established"),      # echo answered: reply bytes came back
    ("ECO", "80", "attempted"),
    ("TXD", "80", "other"), ("NNS", "80", "other"), ("UNK", "80", "other"), ("", "80", "other"),
]


def test_state_words(tmp_path: Path) -> None:
    rows = [_row(state=state, totbytes=totbytes) for state, totbytes, _ in STATE_WORDS]
    table, rejects, _ = _read(_write(tmp_path, [CTU, *rows]))
    assert rejects == []
    got = list(zip(table["action"].to_pylist(), table["state"].to_pylist(), strict=True))
    assert got == [(state or None, expected) for state, _, expected in STATE_WORDS]


def test_management_records_skipped_and_user_data_columns(tmp_path: Path) -> None:
    header = CTU.replace(",Label", ",srcUdata,dstUdata,Label")
    man = "2018/05/10 10:52:47.283479,0.045010,man,0,0,,0,0,STA,,,0,0,0,,,"
    data = _row(label="s[4]=a,b,c,,flow=Normal-V42-HTTP")  # user data with separators in it
    table, rejects, ctx = _read(_write(tmp_path, [header, man, data.replace(",flow=", ",d[1]=x,flow=")]))
    assert rejects == []
    assert table["label"].to_pylist() == ["flow=Normal-V42-HTTP"]
    assert table["src_port"].to_pylist() == [1025]
    assert (ctx.skipped, ctx.rejected) == (1, 0)


def test_bad_rows_rejected_with_line_numbers(tmp_path: Path) -> None:
    lines = [
        CTU,                                        # 1
        _row(label="flow=ok-1"),                    # 2
        "2011/08/16 10:04:57.1,0.1,tcp,1.2.3.4",    # 3 too few fields
        _row(start="16/08/2011 10:04:57"),          # 4 timestamp in an unknown format
        _row(start="2011/02/30 10:04:57.000001"),   # 5 no such day
        "",                                         # 6 blank: not a record
        _row(sport="0xZZ"),                         # 7
        _row(dport="70000"),                        # 8 out of range
        _row(tot="many"),                           # 9
        CTU,                                        # 10 repeated header (concatenated files): not a record
        _row(label="flow=ok-2"),                    # 11
        _row(label="flow=ok-3") + ",extra",         # 12 too many fields
        _row(label="flow=ok-4").replace("147.32.84.165", ""),  # 13 no source address
        _row(label="flow=ok-5"),                    # 14
    ]
    table, rejects, ctx = _read(_write(tmp_path, lines))
    assert table["label"].to_pylist() == ["flow=ok-1", "flow=ok-2", "flow=ok-5"]
    got = {line: reason for line, reason, _ in rejects}
    assert sorted(got) == [3, 4, 5, 7, 8, 9, 12, 13]
    assert got[3] == "expected 15 fields, found 4"
    assert got[4] == "bad StartTime: 16/08/2011 10:04:57"
    assert got[7] == "bad Sport: 0xZZ" and got[8] == "bad Dport: 70000"
    assert got[9] == "bad number in Dur / packet / byte counts"
    assert got[12] == "expected 15 fields, found 16"
    assert got[13] == "no SrcAddr / DstAddr"
    assert dict((line, raw) for line, _, raw in rejects)[3] == lines[2]
    assert (ctx.rejected, ctx.skipped) == (8, 0)


def test_line_numbers_across_chunks_and_truncated_last_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "PIECE_BYTES", 64)
    monkeypatch.setattr(argus, "iter_chunks", functools.partial(base.iter_chunks, size=500))
    lines = [CTU] + [_row(label=f"flow=n{i}") for i in range(30)]
    lines[17] = "garbage"
    path = _write(tmp_path, lines)
    with open(path, "a") as fh:
        fh.write(_row()[:30])  # cut mid-row, no newline
    table, rejects, _ = _read(path)
    assert table.num_rows == 29
    assert [(line, reason) for line, reason, _ in rejects] == [
        (18, "expected 15 fields, found 1"), (32, "expected 15 fields, found 2")]


def test_epoch_start_times(tmp_path: Path) -> None:
    table, rejects, _ = _read(_write(tmp_path, [CTU, _row(start="1313489096.397131")]))
    assert rejects == []
    assert table["ts"].to_pylist() == [datetime(2011, 8, 16, 10, 4, 56, 397131, tzinfo=UTC)]


def test_file_without_header_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no binetflow header"):
        _read(_write(tmp_path, ["", _row()]))
