"""The ingest pipeline with a tiny in-test source, so these tests do not depend on any real format."""

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from bothunt import ingest as ingest_mod
from bothunt.errors import UnknownFormatError
from bothunt.ingest import ingest_paths
from bothunt.sources.base import Batch, Source, iter_chunks, read_head
from bothunt.workspace import Workspace


class CsvLite(Source):
    """`epoch,src,dst,port` lines; a line with another shape is a reject."""

    id = "csvlite"
    description = "test format"

    def sniff(self, head, path):
        return 90 if head.startswith(b"#csvlite") else 0

    def read(self, path, ctx):
        for first, chunk in iter_chunks(path, ctx):
            ts, src, dst, port = [], [], [], []
            for i, line in enumerate(chunk.decode("utf-8", "replace").splitlines()):
                if line.startswith("#"):
                    continue
                parts = line.split(",")
                if len(parts) != 4 or not parts[0].isdigit():
                    ctx.reject(first + i, "expected epoch,src,dst,port", line)
                    continue
                ts.append(datetime.fromtimestamp(int(parts[0]), UTC))
                src.append(parts[1])
                dst.append(parts[2])
                port.append(int(parts[3]))
            yield Batch("conn", pa.table({"ts": pa.array(ts, pa.timestamp("us", tz="UTC")), "src_ip": src,
                                          "dst_ip": dst, "dst_port": pa.array(port, pa.int32())}))


@pytest.fixture(autouse=True)
def fake_sniff(monkeypatch):
    def sniff(path):
        head = read_head(path)
        if CsvLite().sniff(head, path):
            return CsvLite()
        raise UnknownFormatError("not a telemetry format bothunt reads; tried: csvlite", file=str(path))

    monkeypatch.setattr(ingest_mod, "sniff", sniff)


DAY1, DAY2 = 1767225600, 1767312000  # 2026-01-01 and 2026-01-02 00:00 UTC


def _write(path, lines):
    path.write_text("#csvlite\n" + "\n".join(lines) + "\n")
    return path


def test_rows_split_by_day_with_direction_and_rejects_kept(tmp_path):
    f = _write(tmp_path / "a.txt", [f"{DAY1 + 10},10.0.0.1,8.8.8.8,53", "garbage", f"{DAY2 + 5},8.8.8.8,10.0.0.1,22"])
    rep = ingest_paths([f], tmp_path / "ws")
    fr = rep.files[0]
    assert (fr.status, fr.rows, fr.rejected) == ("ingested", {"conn": 2}, 1)
    ws = Workspace.open(tmp_path / "ws")
    assert [p.parent.name for p in ws.parts("conn")] == ["day=2026-01-01", "day=2026-01-02"]
    conn = ws.read("conn")
    assert sorted(conn["direction"].to_pylist()) == ["inbound", "outbound"]
    rejects = [json.loads(x) for x in next((tmp_path / "ws" / "rejects").glob("*.jsonl")).read_text().splitlines()]
    assert rejects == [{"file": str(f), "line": 3, "reason": "expected epoch,src,dst,port", "raw": "garbage"}]


def test_reingest_same_content_adds_no_rows_and_changed_file_replaces(tmp_path):
    f = _write(tmp_path / "a.txt", [f"{DAY1},10.0.0.1,8.8.8.8,53"])
    ingest_paths([f], tmp_path / "ws")
    rep = ingest_paths([f], tmp_path / "ws")
    assert rep.files[0].status == "unchanged"
    assert Workspace.open(tmp_path / "ws").read("conn").num_rows == 1
    _write(f, [f"{DAY1},10.0.0.1,8.8.8.8,53", f"{DAY1 + 1},10.0.0.1,8.8.8.8,53"])
    ingest_paths([f], tmp_path / "ws")
    assert Workspace.open(tmp_path / "ws").read("conn").num_rows == 2


def test_directory_with_docs_and_unknown_files_ingests_the_rest(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    _write(d / "a.log", [f"{DAY1},10.0.0.1,8.8.8.8,53"])
    (d / "README.md").write_text("# notes")
    (d / "junk.bin").write_bytes(b"\x00\xff" * 100)
    rep = ingest_paths([d], tmp_path / "ws")
    status = {p.split("/")[-1]: f.status for p, f in ((f.path, f) for f in rep.files)}
    assert status == {"a.log": "ingested", "README.md": "unrecognised", "junk.bin": "unrecognised"}
    assert not rep.fatal


def test_named_unknown_file_is_fatal(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello")
    rep = ingest_paths([junk], tmp_path / "ws")
    assert rep.fatal and "tried: csvlite" in rep.errors[0].error


def test_truncated_gzip_keeps_rows_before_damage(tmp_path):
    import gzip

    body = "#csvlite\n" + "".join(f"{DAY1 + i},10.0.0.1,8.8.8.8,53\n" for i in range(20000))
    full = gzip.compress(body.encode())
    f = tmp_path / "cut.log.gz"
    f.write_bytes(full[: len(full) // 2])
    rep = ingest_paths([f], tmp_path / "ws")
    fr = rep.files[0]
    assert fr.status == "ingested"
    assert 0 < fr.rows["conn"] < 20000
    assert any("ends early" in n for n in fr.notes)
    assert fr.rejected <= 1  # at most the partial last line


def test_empty_workspace_target_that_is_not_a_workspace_is_refused(tmp_path):
    from bothunt.errors import BothuntError

    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "precious.txt").write_text("x")
    f = _write(tmp_path / "a.txt", [f"{DAY1},10.0.0.1,8.8.8.8,53"])
    with pytest.raises(BothuntError, match="not a bothunt workspace"):
        ingest_paths([f], tmp_path / "ws")
