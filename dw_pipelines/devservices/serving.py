"""How a fake service's process serves until its parent stops it."""

from __future__ import annotations

import signal
from socketserver import BaseServer


def serve_until_stopped(server: BaseServer) -> None:
    """Serve until SIGTERM (what `Popen.terminate` sends) or Ctrl-C.

    Both are set back to their defaults first: a process inherits ignored signals, and one
    started from a background shell (SIGINT ignored) under Dagster, which points SIGTERM at
    SIGINT's handler, would otherwise ignore `terminate()` and outlive the demo or the test.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
