"""The local fake APIs answer at loopback speed: a response's body never waits for the
client's delayed ACK of its headers (Nagle's algorithm, about 40 ms a response), which would
make every paginated test slower by that much per page."""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from dw_pipelines.devservices import rest_fake, salesforce_fake

REQUESTS = 20
NAGLE_DELAY_S = 0.04


@contextmanager
def rest_server(directory: Path) -> Iterator[tuple[int, Path]]:
    server, cert = rest_fake.serve(directory)
    try:
        yield server.server_address[1], cert
    finally:
        server.stop()


@contextmanager
def salesforce_server(directory: Path) -> Iterator[tuple[int, Path]]:
    cert, key = salesforce_fake.make_certificate(directory)
    server = salesforce_fake.FakeServer(salesforce_fake.FakeOrg(), cert, key).start()
    try:
        yield server.port, cert
    finally:
        server.stop()


@pytest.mark.parametrize("serve", [rest_server, salesforce_server], ids=["rest", "salesforce"])
def test_a_fake_answers_a_kept_alive_connection_without_nagles_delay(
    serve: Callable[[Path], AbstractContextManager[tuple[int, Path]]], tmp_path: Path
) -> None:
    with serve(tmp_path) as (port, cert):
        connection = http.client.HTTPSConnection(
            "127.0.0.1", port, context=ssl.create_default_context(cafile=str(cert))
        )
        try:
            connection.request("GET", "/nothing-here")  # handshake and first answer: not timed
            connection.getresponse().read()
            started = time.perf_counter()
            for _ in range(REQUESTS):
                connection.request("GET", "/nothing-here")
                response = connection.getresponse()
                response.read()
                assert response.status == 404
            elapsed = time.perf_counter() - started
        finally:
            connection.close()
    # With the delay every answer takes at least 40 ms; without it, well under a millisecond.
    assert elapsed < REQUESTS * NAGLE_DELAY_S / 2, f"{elapsed:.3f} s for {REQUESTS} answers"
