"""A BigQuery REST server that answers every job insert with 409 Already Exists, as BigQuery
does when a job id is submitted again (the emulator accepts duplicate ids instead). It holds one
finished query job per id, with statistics, so the client can wait for and read that job."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROJECT = "dw-fake"
# What each existing job reports: one row `n = 42`, and what BigQuery billed it.
BYTES_PROCESSED, BYTES_BILLED, SLOT_MS = 1234, 10_485_760, 56


class FakeBigQuery(ThreadingHTTPServer):
    inserts: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def _job(job_id: str) -> dict[str, object]:
    stats = {"totalBytesProcessed": str(BYTES_PROCESSED), "totalSlotMs": str(SLOT_MS)}
    return {
        "kind": "bigquery#job",
        "id": f"{PROJECT}:US.{job_id}",
        "jobReference": {"projectId": PROJECT, "jobId": job_id, "location": "US"},
        "configuration": {"jobType": "QUERY", "query": {"query": "SELECT 42 AS n"}},
        "status": {"state": "DONE"},
        "statistics": {**stats, "query": {**stats, "totalBytesBilled": str(BYTES_BILLED)}},
    }


class _Handler(BaseHTTPRequestHandler):
    server: FakeBigQuery

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0] == f"/bigquery/v2/projects/{PROJECT}/jobs":
            self.server.inserts += 1
            self._send(409, {"error": {"code": 409, "message": "Already Exists: Job",
                                       "errors": [{"reason": "duplicate",
                                                   "message": "Already Exists: Job"}]}})  # fmt: skip
            return
        self._send(404, {"error": {"code": 404, "message": "Not found"}})

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        if m := re.fullmatch(rf"/bigquery/v2/projects/{PROJECT}/jobs/([\w-]+)", path):
            self._send(200, _job(m.group(1)))
        elif m := re.fullmatch(rf"/bigquery/v2/projects/{PROJECT}/queries/([\w-]+)", path):
            self._send(200, {
                "kind": "bigquery#getQueryResultsResponse",
                "jobReference": {"projectId": PROJECT, "jobId": m.group(1), "location": "US"},
                "jobComplete": True, "totalRows": "1",
                "schema": {"fields": [{"name": "n", "type": "INTEGER", "mode": "NULLABLE"}]},
                "rows": [{"f": [{"v": "42"}]}],
            })  # fmt: skip
        else:
            self._send(404, {"error": {"code": 404, "message": "Not found"}})


@contextmanager
def fake_bigquery() -> Iterator[FakeBigQuery]:
    server = FakeBigQuery(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
