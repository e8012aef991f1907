"""Kept-alive HTTP/1.1 connections on asyncio protocols, driven by callbacks.

Sending one request with a ``Content-Length`` body over a kept-alive connection is the
common exchange of both the capture sidecar (forwarding to its model) and the replay
sender (sending recorded events). Done through aiohttp's client, each exchange pays for a
task, stream readers, request and response objects and timers; here it is one
``transport.write`` and a parser fed from ``data_received``, with no task, future or
stream per request:

* :class:`Upstream` is one kept-alive connection: it sends a request, reads the answer
  whatever its framing (a length, chunks, no body, or until close) and hands it back;
* :class:`UpstreamPool` keeps the idle ones, most recently used first, and closes those
  idle for ``idle_seconds``. It never makes a request wait for a connection: the caller
  bounds how many are in flight.

The answer goes to a callback, ``(head, body, None, "")``, or ``(None, b"", kind,
detail)`` when there is none (``kind`` is ``connection``, ``timeout`` or
``invalid_response``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import cast

from yarl import URL

from modelrollout.core.capture import http1

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
"""Methods sent again, once, on a fresh connection when a kept-alive one turns out closed
before any byte of the answer came back (the model closed it as the request left)."""
Callback = Callable[[http1.ResponseHead | None, bytes, str | None, str], None]
"""Called once per request sent upstream: ``(head, body, None, "")`` with the answer, or
``(None, b"", error kind, detail)`` when there is none."""


class Upstream(asyncio.Protocol):
    """One connection to the model, carrying one request at a time."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._callback: Callback | None = None
        self._method = ""
        self._request = b""
        self._head: http1.ResponseHead | None = None
        self._chunks: http1.ChunkedDecoder | None = None
        self._received = 0
        self.deadline = 0.0
        """When the answer in flight is late (loop time); checked by the pool."""

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the methods of asyncio.Transport, not the class
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._callback is None:  # nothing was asked: a model that talks out of turn
            self._close()
            return
        self._received += len(data)
        self._buffer += data
        try:
            self._advance()
        except http1.HttpError as error:
            self._fail("invalid_response", error.message)

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self._callback is None:
            return
        head = self._head
        if head is not None and head.framing is http1.Framing.UNTIL_CLOSE:
            self._complete(bytes(self._buffer))
            return
        if self.reused and self._received == 0 and self._method in IDEMPOTENT:
            callback, self._callback = self._callback, None
            self.pool.send(self._request, self._method, callback, fresh=True)
            return
        detail = str(exc) if exc is not None else "the model closed the connection"
        kind = "connection" if self._received == 0 else "invalid_response"
        if self._received and head is not None:
            detail = "the model closed the connection before the end of its answer"
        self._fail(kind, detail)

    # -- one exchange ----------------------------------------------------------------------

    def start(self, request: bytes, method: str, callback: Callback, timeout: float) -> None:
        self._callback = callback
        self._method = method
        self._request = request
        self._head = None
        self._chunks = None
        self._received = 0
        self.deadline = self.pool.loop.time() + timeout
        self.pool.watch(self)
        assert self.transport is not None
        self.transport.write(request)

    def _advance(self) -> None:
        buffer = self._buffer
        while self._head is None:
            end = http1.head_end(buffer)
            if end < 0:
                return
            head = http1.parse_response_head(buffer[:end], request_method=self._method)
            del buffer[:end]
            if head.status == 101:
                raise http1.HttpError(502, "the model switched protocols, which was not asked")
            if head.status >= 200:
                self._head = head
                if head.framing is http1.Framing.CHUNKED:
                    self._chunks = http1.ChunkedDecoder()
            # an interim answer (100, 103) is read and left out, as the full path does
        framing = self._head.framing
        if framing is http1.Framing.LENGTH:
            length = self._head.content_length
            if len(buffer) >= length:
                body = bytes(buffer[:length])
                del buffer[:length]
                self._complete(body)
        elif framing is http1.Framing.NONE:
            self._complete(b"")
        elif framing is http1.Framing.CHUNKED:
            assert self._chunks is not None
            used = self._chunks.feed(buffer)
            del buffer[:used]
            if self._chunks.done:
                self._complete(bytes(self._chunks.body))
        # UNTIL_CLOSE: everything until the model closes (connection_lost)

    def _complete(self, body: bytes) -> None:
        head, callback = self._head, self._callback
        assert head is not None
        assert callback is not None
        self._callback = None
        self._request = b""
        if head.keep_alive and not self._buffer and not self.closed:
            self.pool.release(self)
        else:
            self._close()
        callback(head, body, None, "")

    def _fail(self, kind: str, detail: str) -> None:
        callback = self._callback
        self._callback = None
        self._request = b""
        self._close()
        if callback is not None:
            callback(None, b"", kind, detail)

    @property
    def waiting(self) -> bool:
        """Whether an answer is awaited."""
        return self._callback is not None

    def timed_out(self) -> None:
        self._fail("timeout", f"no answer within {self.pool.timeout:g}s")

    def _close(self) -> None:
        self.pool.forget(self)
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


class UpstreamPool:
    """Kept-alive connections to the model: idle ones reused newest first, none waited for."""

    def __init__(
        self,
        upstream: str,
        *,
        timeout: float,
        idle_seconds: float,
    ) -> None:
        url = URL(upstream)
        self.host = url.host or "127.0.0.1"
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if url.scheme == "https" else None
        )
        self.prefix = url.raw_path.rstrip("/")
        default_port = 443 if url.scheme == "https" else 80
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = (shown if self.port == default_port else f"{shown}:{self.port}").encode(
            "idna"
        )
        self.timeout = timeout
        self.idle_seconds = idle_seconds
        self.loop = asyncio.get_running_loop()
        self._idle: list[Upstream] = []
        self._busy: set[Upstream] = set()
        self._connecting: set[asyncio.Task[None]] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self._deadlines: asyncio.TimerHandle | None = None
        self._closed = False

    def send(self, request: bytes, method: str, callback: Callback, *, fresh: bool = False) -> None:
        """Send a request on an idle connection, or a new one; ``callback`` gets the answer."""
        if self._closed:
            callback(None, b"", "connection", "the client is closing")
            return
        now = self.loop.time()
        while self._idle and not fresh:
            connection = self._idle.pop()
            if connection.closed or now - connection.idle_since >= self.idle_seconds:
                connection._close()
                continue
            connection.reused = True
            self._busy.add(connection)
            connection.start(request, method, callback, self.timeout)
            return
        task = self.loop.create_task(self._connect(request, method, callback))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, request: bytes, method: str, callback: Callback) -> None:
        started = self.loop.time()
        try:
            _, connection = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: Upstream(self),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                ),
                self.timeout,
            )
        except TimeoutError:
            callback(None, b"", "timeout", f"no answer within {self.timeout:g}s")
            return
        except OSError as error:
            callback(None, b"", "connection", str(error) or type(error).__name__)
            return
        if self._closed:
            connection._close()
            callback(None, b"", "connection", "the client is closing")
            return
        self._busy.add(connection)
        remaining = max(self.timeout - (self.loop.time() - started), 0.001)
        connection.start(request, method, callback, remaining)

    def watch(self, connection: Upstream) -> None:
        """Make sure a late answer is noticed: one timer for the whole pool, set for the
        earliest deadline, instead of a timer per request."""
        if self._deadlines is None:
            self._deadlines = self.loop.call_at(connection.deadline, self._check_deadlines)

    def _check_deadlines(self) -> None:
        self._deadlines = None
        now = self.loop.time()
        earliest = None
        for connection in list(self._busy):
            if not connection.waiting:
                continue
            if connection.deadline <= now:
                connection.timed_out()
            elif earliest is None or connection.deadline < earliest:
                earliest = connection.deadline
        if earliest is not None and not self._closed:
            self._deadlines = self.loop.call_at(earliest, self._check_deadlines)

    def release(self, connection: Upstream) -> None:
        self._busy.discard(connection)
        if self._closed:
            connection._close()
            return
        connection.idle_since = self.loop.time()
        self._idle.append(connection)
        if self._sweep is None:
            self._sweep = self.loop.call_later(self.idle_seconds, self._close_idle)

    def forget(self, connection: Upstream) -> None:
        self._busy.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)

    def _close_idle(self) -> None:
        self._sweep = None
        now = self.loop.time()
        for connection in [c for c in self._idle if now - c.idle_since >= self.idle_seconds]:
            connection._close()
        if self._idle:
            self._sweep = self.loop.call_later(self.idle_seconds, self._close_idle)

    def close(self) -> None:
        self._closed = True
        for timer in (self._sweep, self._deadlines):
            if timer is not None:
                timer.cancel()
        self._sweep = self._deadlines = None
        for task in list(self._connecting):
            task.cancel()
        for connection in [*self._idle, *self._busy]:
            connection._close()
