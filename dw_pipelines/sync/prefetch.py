"""Read ahead of the consumer: an iterator's items made in a thread, a bounded number ahead.

A source that pages through an API waits on the network for every page; converting the previous
page meanwhile hides most of that wait. The queue is bounded, so memory stays at `depth` items
whatever the source's size, and the producer's failure is raised where its item was expected.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
# How often a producer blocked on a full queue looks whether its consumer has gone.
_POLL_SECONDS = 0.05


def prefetched(items: Iterable[T], depth: int = 2, name: str = "dw-prefetch") -> Iterator[T]:
    """`items`, made by a thread up to `depth` ahead of the caller.

    Closing the returned generator (or its consumer failing) stops the producer after its
    current item and waits for it, so nothing still runs when the caller goes on: a request in
    flight finishes, none is started."""
    ready: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over((True, item)):
                    return
            hand_over((False, _DONE))
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer
            hand_over((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's own cleanup runs here, not whenever it is collected

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            is_item, value = ready.get()
            if is_item:
                yield value  # type: ignore[misc]
            elif value is _DONE:
                return
            else:
                raise value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
