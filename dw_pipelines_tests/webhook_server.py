"""A local stand-in for a Slack incoming webhook: records every POST, answers as told.

Slack answers `200 ok` to a message it takes, and an error status with a short text body
(`invalid_payload`, `no_service`, ...) otherwise; this server does the same, and can echo the
request path in its error body (as some proxies do) to prove the URL never leaks from there.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Post:
    path: str
    content_type: str
    body: dict


@dataclass
class WebhookServer:
    token: str = "XyZ9secretHookToken42"
    status: int = 200
    echo_path: bool = False  # error bodies quote the path, as a misbehaving proxy would
    posts: list[Post] = field(default_factory=list)

    def start(self) -> WebhookServer:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                recorder.posts.append(Post(self.path, self.headers.get("Content-Type", ""), body))
                answer = b"ok" if recorder.status == 200 else b"no_service"
                if recorder.echo_path and recorder.status != 200:
                    answer += b" " + self.path.encode()
                self.send_response(recorder.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:  # keep the test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/services/T0001/B0002/{self.token}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
