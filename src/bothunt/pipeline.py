"""Run an iterator in a thread of its own, a few items ahead of its consumer.

Ingest is three stages that each spend most of their time outside the GIL (Arrow parsing, Arrow
compute, Parquet encoding); run one after the other, a 2-core machine sits half idle. `prefetched`
moves a source's reading and parsing into a producer thread, so batch n+1 is parsed while batch n is
classified and written. The queue is bounded, so memory stays at a few batches whatever the file size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()
_POLL_S = 0.1


def prefetched(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """Yield what `items` yields, produced in a background thread at most `depth` items ahead.

    An exception in the producer is raised in the consumer at the point the producer reached. When
    the consumer stops early (break, exception, close), the producer stops and `items` is closed in
    the producer's own thread (so its `with` blocks, open files included, unwind where they began).
    """
    q: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((_END, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="bothunt-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if item is _END:
                if exc is not None:
                    raise exc
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
