import platform
import sys
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bothunt import memtune
from bothunt.pipeline import prefetched
from bothunt.schema import conform
from bothunt.workspace import PartWriter, Workspace


def test_prefetched_keeps_order_and_runs_the_source_in_another_thread():
    threads = set()

    def source():
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    assert list(prefetched(source())) == list(range(50))
    assert threads == {"bothunt-prefetch"}


def test_prefetched_raises_the_producers_error_after_the_items_before_it():
    def source():
        yield 1
        yield 2
        raise ValueError("bad block at line 7")

    got = []
    with pytest.raises(ValueError, match="line 7"):
        for x in prefetched(source()):
            got.append(x)
    assert got == [1, 2]


def test_prefetched_stops_and_closes_the_source_when_the_consumer_stops_early():
    produced, closed = [], threading.Event()

    def source():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    it = prefetched(source(), depth=2)
    assert next(it) == 0
    time.sleep(0.3)  # give the producer every chance to run ahead
    # bounded: one handed over, `depth` queued, one waiting to be put
    assert len(produced) <= 1 + 2 + 1
    it.close()
    assert closed.wait(5)
    assert len(produced) < 10


def test_memtune_applies_on_glibc_and_is_idempotent():
    first = memtune.keep_freed_memory()
    assert first == (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc")
    assert memtune.keep_freed_memory() == first


def _conn(day: str, n: int) -> pa.Table:
    ts = pa.array([f"{day}T{h:02d}:00:00" for h in range(n)]).cast(pa.timestamp("s")).cast(
        pa.timestamp("us", tz="UTC"))
    return conform(pa.table({"ts": ts, "src_ip": ["10.0.0.1"] * n, "dst_ip": ["8.8.8.8"] * n}), "conn")


def test_part_writer_slots_write_separate_parts_that_together_hold_every_row(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    w = PartWriter(ws, "abc", slots=2)
    w.write("conn", _conn("2026-01-01", 5), slot=0)
    w.write("conn", _conn("2026-01-01", 3), slot=1)
    w.write("conn", _conn("2026-01-02", 4), slot=1)
    parts = w.close()
    assert parts == ["conn/day=2026-01-01/abc.1.parquet", "conn/day=2026-01-01/abc.parquet",
                     "conn/day=2026-01-02/abc.1.parquet"]
    assert w.rows == {"conn": 12}
    assert sum(pq.read_metadata(ws.root / p).num_rows for p in parts) == 12
    assert ws.read("conn").num_rows == 12


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("size", [1, 7, 150, 1 << 20])
def test_chunks_end_on_line_boundaries_even_when_a_line_is_longer_than_a_chunk(tmp_path, gz, size):
    import gzip
    import random

    from bothunt.sources.base import ReadContext, iter_chunks

    rng = random.Random(1)
    data = b"\n".join(b"x" * rng.choice([0, 1, 5, 149, 150, 151, 400]) + b"y" for _ in range(300))
    path = tmp_path / ("log.gz" if gz else "log")
    path.write_bytes(gzip.compress(data) if gz else data)  # no final newline
    chunks = list(iter_chunks(path, ReadContext(file=str(path)), size))
    assert b"".join(c for _, c in chunks) == data + b"\n"
    assert all(c.endswith(b"\n") for _, c in chunks)
    line = 1
    for first, chunk in chunks:
        assert first == line
        line += chunk.count(b"\n")
    assert line == 301
