"""A local HTTP server for the duration of a block, on 127.0.0.1 and a free port."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def serving(handler: Any) -> Iterator[str]:
    """Serve with ``handler`` (a request handler class, or a factory of one); yields the
    server's "host:port". The server is shut down and its thread joined afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that does not log every request on stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving_directory(root: Path) -> Iterator[str]:
    """Serve the files under ``root``; yields the base URL, ``http://127.0.0.1:PORT``."""

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        log_message = QuietHandler.log_message

    with serving(Handler) as address:
        yield f"http://{address}"
