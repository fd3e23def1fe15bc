"""Pages fetched one ahead of their conversion, on a thread of their own.

A page's wait on the API (the server's time, the network) and its conversion to Arrow are
independent: requests waits on the socket without holding the GIL, so while the engine converts
and loads one page the next one is already on its way, and a sync takes about the longer of the
two instead of their sum. At most `depth` pages wait (memory stays flat); an error raised while
fetching is raised to the reader, at the page where it happened; a reader that stops early
stops the fetching thread and waits for it, so the HTTP session is never used by two threads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    waiting: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                waiting.put(entry, timeout=0.05)
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
        except BaseException as exc:  # handed to the reader, raised there
            put((_END, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="rest-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = waiting.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        worker.join()
