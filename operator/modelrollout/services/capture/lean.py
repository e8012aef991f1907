"""The lean path: the common exchange served on asyncio protocols, with no framework.

Most of what a capture proxy forwards is one kind of exchange: a request with a
``Content-Length`` body to a model on localhost, over a kept-alive connection. Served by
aiohttp's server and client, such an exchange costs about ten times the proxy's own work
in framework machinery (a task per request, routing, stream readers, request and response
objects on both sides, timers), and on a core shared with the model that CPU is what
stretches the tail of the latency. The lean path serves it with two protocols driven by
callbacks, and no task, future or stream per request:

* :class:`_Client` reads requests from a client's connection, one at a time, with the
  pure parser of :mod:`modelrollout.core.capture.http1`, and writes each answer back;
  pipelined requests wait in its buffer and are answered in order, each after the one
  before it (a client that sends too much ahead is paused until the answers catch up);
* :class:`~modelrollout.services.http1pool.UpstreamPool` (shared with the replay
  sender) keeps kept-alive connections to the model: each sends a request, reads the
  answer whatever its framing and hands it back; idle ones are closed after a second,
  like the full path's client.

Anything else goes to the full path: a request with ``Transfer-Encoding``, ``Upgrade`` or
``Expect``, or with a target that is not a path, hands its connection, with the bytes
already read, to the aiohttp server that serves ``--no-lean-path`` (counted in
``modelrollout_capture_full_path_connections_total{reason}``), for the rest of the
connection's life. A malformed request is answered 400 (431 for a head too long) with a
JSON body that says what is wrong, and the connection is closed.

Both paths answer alike: the same headers are dropped and set, the same errors are
answered and counted (502 with ``{"error": ...}`` when the model cannot be reached or
its answer cannot be read, 504 after the upstream timeout, 413 over the body limit), and
every exchange is offered to the same writer. A client that goes away before its answer
does not stop the exchange: the model's answer is still read (so its connection stays
usable), recorded and counted, and then dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import cast

from modelrollout.core.capture import http1
from modelrollout.core.capture.record import SKIP_MALFORMED, Exchange
from modelrollout.services.capture.proxy import UPSTREAM_IDLE_SECONDS, CaptureProxy, error_body
from modelrollout.services.http1pool import UpstreamPool

PIPELINE_BYTES = 1 << 20
"""Bytes a client may send ahead while its previous request is in flight, before the
proxy stops reading from it."""
CLIENT_IDLE_SECONDS = 75.0
"""A client connection with nothing in flight is closed after this long without a byte
(aiohttp's keep-alive timeout, which the full path applies)."""
SWEEP_SECONDS = 5.0


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class _Client(asyncio.Protocol):
    """One client connection: requests read in order, each answered before the next."""

    def __init__(self, server: LeanServer) -> None:
        self.server = server
        self.proxy = server.proxy
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.closed = False
        self.last_active = 0.0
        self._buffer = bytearray()
        self._head: http1.RequestHead | None = None
        self._discard = 0
        self._reading_paused = False
        self._writing_paused = False
        self._eof = False
        # the request in flight
        self._request_head: http1.RequestHead | None = None
        self._body = b""
        self._inference_id = ""
        self._received_at = 0.0
        self._started = 0.0
        self._upstream_started = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the methods of asyncio.Transport, not the class
        self.transport = cast(asyncio.Transport, transport)
        self.last_active = self.server.loop.time()
        self.server.clients.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.server.loop.time()
        if self._discard:
            if len(data) <= self._discard:
                self._discard -= len(data)
                return
            data = data[self._discard :]
            self._discard = 0
        self._buffer += data
        if self.busy or self._writing_paused:
            if len(self._buffer) > PIPELINE_BYTES and not self._reading_paused:
                self._pause_reading()
            return
        self._serve()

    def eof_received(self) -> bool | None:
        # A client that half-closes still gets the answers to the requests it sent whole.
        self._eof = True
        return self.busy

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.clients.discard(self)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if not self.busy and self._buffer and not self.closed:
            self._serve()

    # -- requests --------------------------------------------------------------------------

    def _serve(self) -> None:
        """Read the next request from the buffer, and send it on, when it is all there."""
        buffer = self._buffer
        if self._head is None:
            try:
                end = http1.head_end(buffer)
                if end < 0:
                    return
                head = http1.parse_request_head(buffer[:end])
            except http1.HttpError as error:
                self._refuse(error)
                return
            if head.fallback is not None:
                self._hand_off(head.fallback)
                return
            del buffer[:end]
            if head.content_length > self.server.body_limit:
                self._too_large(head)
                return
            self._head = head
        head = self._head
        length = head.content_length
        if len(buffer) < length:
            if self._reading_paused:
                self._resume_reading()
            return
        if length:
            body = bytes(buffer[:length])
            del buffer[:length]
        else:
            body = b""
        self._head = None
        self._send(head, body)

    def _send(self, head: http1.RequestHead, body: bytes) -> None:
        self.busy = True
        self._started = time.perf_counter()
        self._received_at = time.time()
        proxy = self.proxy
        incoming = head.get(self.server.id_header_lower)
        self._inference_id = proxy.choose_id(
            None if incoming is None else incoming.decode("latin-1")
        )
        self._body = body
        self._request_head = head
        pool = self.server.pool
        request = http1.forward_request_head(
            head,
            target=pool.prefix + head.target,
            id_header=self.server.id_header,
            inference_id=self._inference_id,
            body_length=len(body),
            default_host=pool.host_header,
        )
        if body:
            request += body
        self._upstream_started = time.perf_counter()
        pool.send(request, head.method, self._answered)

    def _answered(
        self, answer: http1.ResponseHead | None, body: bytes, error: str | None, detail: str
    ) -> None:
        upstream_seconds = time.perf_counter() - self._upstream_started
        request = self._request_head
        assert request is not None
        server = self.server
        keep_alive = request.keep_alive and not server.stopping
        if answer is None:
            assert error is not None
            status, _, _, body, _ = self.proxy.failure(error, detail)
            content_type: str | None = "application/json"
            out = http1.error_head(
                status,
                _reason(status),
                body_length=len(body),
                id_header=server.id_header,
                inference_id=self._inference_id,
                keep_alive=keep_alive,
            )
        else:
            status = answer.status
            found = answer.get(b"content-type")
            content_type = None if found is None else found.decode("latin-1")
            out = http1.answer_head(
                status,
                answer.reason,
                answer.fields,
                body_length=len(body),
                head_request=request.method == "HEAD",
                id_header=server.id_header,
                inference_id=self._inference_id,
                keep_alive=keep_alive,
                client_version=request.version,
            )
        self._write(out, body if request.method != "HEAD" else b"", keep_alive)
        self.proxy.account(
            Exchange(
                inference_id=self._inference_id,
                received_at=self._received_at,
                method=request.method,
                path=request.target,
                request_body=self._body,
                request_content_type=_text(request.get(b"content-type")),
                status=status,
                response_body=body,
                response_content_type=content_type,
                latency_seconds=upstream_seconds,
                request_headers=server.recorded(request.headers),
                error=error,
            ),
            started=self._started,
            upstream_seconds=upstream_seconds,
        )
        self._body = b""
        self._request_head = None
        self.busy = False
        if server.stopping:
            server.request_done()
        if keep_alive and not self.closed:
            if self._reading_paused:
                self._resume_reading()
            if self._buffer and not self._writing_paused:
                self._serve()
            if self._eof and not self.busy:
                self._finish()

    def _write(self, head: bytes, body: bytes, keep_alive: bool) -> None:
        transport = self.transport
        if self.closed or transport is None:
            return
        if len(body) <= 16384:
            transport.write(head + body)
        else:
            transport.writelines((head, body))
        self.last_active = self.server.loop.time()
        if not keep_alive:
            self._finish()

    def _finish(self) -> None:
        """Close after what is written: no more requests are read from this client."""
        self._buffer.clear()
        self._head = None
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True
        self.server.clients.discard(self)

    def _refuse(self, error: http1.HttpError) -> None:
        """Answer a request that cannot be read, and close the connection."""
        self.proxy.metrics.answered(error.status)
        self.proxy.metrics.skipped.labels(SKIP_MALFORMED).inc()
        body = error_body("bad_request", error.message)
        head = http1.error_head(
            error.status,
            _reason(error.status),
            body_length=len(body),
            id_header=self.server.id_header,
            inference_id=self.proxy.choose_id(None),  # every answer carries an id
            keep_alive=False,
        )
        self._write(head, body, keep_alive=False)

    def _too_large(self, head: http1.RequestHead) -> None:
        """413 at once; the body is read and thrown away, and the connection goes on."""
        self.proxy.refused_too_large()
        incoming = head.get(self.server.id_header_lower)
        inference_id = self.proxy.choose_id(
            None if incoming is None else incoming.decode("latin-1")
        )
        body = error_body(
            "request_too_large",
            f"the body has {head.content_length} bytes, more than {self.server.body_limit}",
        )
        keep_alive = head.keep_alive and not self.server.stopping
        out = http1.error_head(
            413,
            _reason(413),
            body_length=len(body),
            id_header=self.server.id_header,
            inference_id=inference_id,
            keep_alive=keep_alive,
        )
        self._write(out, body, keep_alive)
        if not keep_alive:
            return
        buffered = min(len(self._buffer), head.content_length)
        del self._buffer[:buffered]
        self._discard = head.content_length - buffered
        if self._buffer:
            self._serve()

    def _hand_off(self, reason: str) -> None:
        """Give the connection, and what was read from it, to the full path's server."""
        transport = self.transport
        assert transport is not None
        self.server.handed_off(reason)
        self.closed = True
        self.server.clients.discard(self)
        if self._reading_paused:
            transport.resume_reading()
        handler = self.server.fallback()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        pending, self._buffer = bytes(self._buffer), bytearray()
        handler.data_received(pending)

    def _pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def close_if_idle(self, now: float) -> bool:
        """Close when nothing is in flight and nothing came for the idle time; or at once
        when ``now`` is infinite (stopping)."""
        if self.busy or now - self.last_active < CLIENT_IDLE_SECONDS:
            return False
        self._finish()
        return True


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


class LeanServer:
    """The lean path's listening side: client connections, the upstream pool, a stop."""

    def __init__(
        self,
        proxy: CaptureProxy,
        *,
        fallback: Callable[[], asyncio.Protocol],
        body_limit: int,
    ) -> None:
        self.proxy = proxy
        self.fallback = fallback
        self.body_limit = body_limit
        self.id_header = proxy.id_header.encode("ascii")
        self.id_header_lower = self.id_header.lower()
        self._record_headers = tuple(name.lower().encode("ascii") for name in proxy.record_headers)
        self._record_names = proxy.record_headers
        self.loop = asyncio.get_running_loop()
        self.pool = UpstreamPool(
            proxy.upstream, timeout=proxy.upstream_timeout, idle_seconds=UPSTREAM_IDLE_SECONDS
        )
        self.clients: set[_Client] = set()
        self.stopping = False
        self._server: asyncio.Server | None = None
        self._sweep: asyncio.TimerHandle | None = None
        self._drained: asyncio.Event | None = None
        self._handed_off = {
            reason: proxy.metrics.full_path.labels(reason)
            for reason in (
                http1.FALLBACK_TRANSFER_ENCODING,
                http1.FALLBACK_UPGRADE,
                http1.FALLBACK_EXPECT,
                http1.FALLBACK_TARGET,
            )
        }

    async def listen(self, host: str | None, port: int) -> list[tuple[str, int]]:
        """Start listening; the addresses bound."""
        self._server = await self.loop.create_server(
            lambda: _Client(self), host, port, backlog=4096, reuse_address=True
        )
        self._sweep = self.loop.call_later(SWEEP_SECONDS, self._close_idle)
        return [sock.getsockname()[:2] for sock in self._server.sockets]

    def handed_off(self, reason: str) -> None:
        self._handed_off[reason].inc()

    def recorded(self, headers: http1.Headers) -> tuple[tuple[str, str], ...]:
        if not self._record_headers:
            return ()
        return tuple(
            (shown, value.decode("latin-1"))
            for wanted, shown in zip(self._record_headers, self._record_names, strict=True)
            for name, value in headers
            if name.lower() == wanted
        )

    def _close_idle(self) -> None:
        now = self.loop.time()
        for client in list(self.clients):
            client.close_if_idle(now)
        self._sweep = self.loop.call_later(SWEEP_SECONDS, self._close_idle)

    async def close(self, grace: float) -> None:
        """Stop listening, answer the requests in flight (for at most ``grace`` seconds),
        then close every connection."""
        self.stopping = True
        if self._sweep is not None:
            self._sweep.cancel()
        if self._server is not None:
            self._server.close()
        for client in list(self.clients):
            client.close_if_idle(float("inf"))
        self._drained = asyncio.Event()
        self.request_done()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), grace)
        for client in list(self.clients):
            client._finish()
        self.pool.close()

    def request_done(self) -> None:
        """While stopping: note when no request is in flight any more."""
        if self._drained is not None and not any(client.busy for client in self.clients):
            self._drained.set()
