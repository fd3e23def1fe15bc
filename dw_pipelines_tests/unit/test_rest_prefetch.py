"""Pages fetched ahead on a thread of their own: the same pages in order, a fetch error raised
to the reader where it happened, and a reader that stops early stops the fetching."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dw_pipelines.sync.sources.rest.prefetch import prefetched


def test_every_page_arrives_once_and_in_order() -> None:
    assert list(prefetched(iter(range(100)))) == list(range(100))


def test_a_fetch_error_is_raised_to_the_reader_after_the_pages_before_it() -> None:
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("page 3: HTTP 500")

    seen = []
    with pytest.raises(RuntimeError, match="page 3"):
        for page in prefetched(pages()):
            seen.append(page)
    assert seen == [1, 2]


def test_a_reader_stopping_early_stops_the_fetching_thread_before_it_returns() -> None:
    fetched, closed = [], threading.Event()

    def pages() -> Iterator[int]:
        try:
            for n in range(1000):
                fetched.append(n)
                yield n
        finally:
            closed.set()

    reader = prefetched(pages(), depth=2)
    assert next(reader) == 0
    reader.close()

    assert closed.is_set()
    assert len(fetched) <= 4  # the page read, the two waiting, the one being put
