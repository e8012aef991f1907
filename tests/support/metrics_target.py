"""A tiny HTTP server exposing fixed Prometheus metrics on /metrics, for scrape tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from support.serving import QuietHandler, serving


@contextlib.contextmanager
def metrics_target(text: str) -> Iterator[str]:
    """Serve ``text`` on /metrics; yields the server's "host:port"."""
    body = text.encode()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as address:
        yield address
