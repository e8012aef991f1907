"""The reverse proxy: forward each request to the model, answer with the model's answer.

This is the full path, on aiohttp's server and client: it serves what the lean path
(:mod:`.lean`) hands over, or everything with ``--no-lean-path``. Both paths share the
inference id, the accounting (:meth:`CaptureProxy.account`) and the errors
(:meth:`CaptureProxy.failure`) defined here, so they answer and record alike.

The client must not be able to tell the proxy is there, except for one header: the
status, reason, headers and body of the model's answer are returned as they came (hop-by-
hop headers such as ``Connection`` and ``Transfer-Encoding`` belong to each connection
and are not copied; the body is re-framed with a ``Content-Length``). Bodies are passed
through untouched, compressed or not. Requests go to the model with their own headers,
including ``Host``, minus the hop-by-hop ones, with the inference id header set to the
request's id (the client's own, or a generated one). Keep-alive connections are reused on
both sides, with no limit on the connections to the model, so the proxy never queues a
request the model could take.

When the model gives no answer the proxy answers itself, with a JSON ``{"error": ...}``:
502 for a refused or broken connection or an unreadable answer, 504 when the model took
longer than the upstream timeout, 413 for a body over the size limit. Each is counted
by type, and recorded like any other request (``response.error``).

After the answer is built, the exchange is offered to the writer, which takes it or
counts a drop without waiting; the time the proxy itself spent on the request, all of
it minus the wait for the model, is observed in the added-latency histogram.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from modelrollout.core.capture import ids
from modelrollout.core.capture.record import SKIP_BODY_TOO_LARGE, Exchange
from modelrollout.core.capture.sampling import Sampler
from modelrollout.services.capture.metrics import CaptureMetrics
from modelrollout.services.capture.writer import CaptureWriter

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
NOT_FORWARDED = (*sorted(HOP_BY_HOP), "content-length", "expect")
NOT_RETURNED = (*sorted(HOP_BY_HOP), "content-length")
HEAD_NOT_RETURNED = tuple(sorted(HOP_BY_HOP))
CLIENT_AUTO_HEADERS = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")
"""Headers aiohttp's client would add on its own: a forwarded request carries only the
client's."""

_Answer = tuple[int, str | None, CIMultiDict[str], bytes, str | None]
"""Status, reason, headers, body, and the proxy error type when the model gave no answer."""

UPSTREAM_IDLE_SECONDS = 1.0
"""An idle connection to the model is closed after this, before model servers close theirs
(gunicorn after 2 s, uvicorn after 5 s): a request sent on a connection the server is
closing at that moment would fail. Reconnecting on localhost costs well under a ms."""

URL_CACHE_SIZE = 1024
"""Upstream URLs parsed once per path: a model is called on a handful of paths."""

ERROR_STATUS = {"connection": 502, "invalid_response": 502, "timeout": 504}


def _copy_headers(headers: CIMultiDictProxy[str], dropped: tuple[str, ...]) -> CIMultiDict[str]:
    """A copy without the hop-by-hop headers, nor those the Connection header names."""
    copied = headers.copy()
    listed = headers.get("Connection")
    if listed:
        dropped = dropped + tuple(token.strip() for token in listed.split(","))
    for name in dropped:
        if name in copied:
            del copied[name]
    return copied


def error_body(kind: str, detail: str) -> bytes:
    return json.dumps({"error": f"capture proxy: {kind}: {detail}"}).encode()


class CaptureProxy:
    """The request handler, and the client session it forwards with."""

    def __init__(
        self,
        upstream: str,
        *,
        writer: CaptureWriter,
        sampler: Sampler,
        metrics: CaptureMetrics,
        id_header: str = ids.DEFAULT_HEADER,
        record_headers: Iterable[str] = (),
        upstream_timeout: float = 300.0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.writer = writer
        self.sampler = sampler
        self.metrics = metrics
        self.id_header = id_header
        self.record_headers = tuple(record_headers)
        self.upstream_timeout = upstream_timeout
        self._session: aiohttp.ClientSession | None = None
        # Ids need to be unique, not secret: a generator seeded once from the OS is enough
        # and costs a fraction of a system call per request.
        self._random = random.Random(os.urandom(32))
        self._urls: dict[str, URL] = {}
        self._errors = {
            kind: metrics.proxy_errors.labels(kind)
            for kind in ("connection", "invalid_response", "timeout", "request_too_large")
        }

    async def start(self) -> None:
        """Open the client session (in the running loop)."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0, ttl_dns_cache=300, keepalive_timeout=UPSTREAM_IDLE_SECONDS
            ),
            timeout=aiohttp.ClientTimeout(total=self.upstream_timeout),
            skip_auto_headers=CLIENT_AUTO_HEADERS,
            auto_decompress=False,
            trust_env=False,
            # Cookies set by the model belong to the client that asked, never to the next one.
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def choose_id(self, incoming: str | None) -> str:
        """The request's inference id: the client's when usable, else a new one."""
        if incoming is not None and ids.acceptable(incoming):
            return incoming
        return ids.from_random(self._random.getrandbits(128).to_bytes(16, "big"))

    def account(
        self,
        exchange: Exchange,
        *,
        started: float,
        upstream_seconds: float,
    ) -> None:
        """Offer an answered exchange to the writer, and count it; never waits."""
        if self.sampler.keep(exchange.inference_id):
            self.writer.offer(exchange)
        else:
            self.metrics.sampled_out.inc()
        self.metrics.answered(exchange.status)
        self.metrics.upstream_latency.observe(upstream_seconds)
        self.metrics.added_latency.observe(time.perf_counter() - started - upstream_seconds)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        received_at = time.time()
        inference_id = self.choose_id(request.headers.get(self.id_header))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as refused:
            self.refused_too_large()
            return web.Response(
                body=error_body("request_too_large", refused.text or "request body too large"),
                status=413,
                content_type="application/json",
                headers={self.id_header: inference_id},
            )
        forwarded = _copy_headers(request.headers, NOT_FORWARDED)
        forwarded[self.id_header] = inference_id
        upstream_started = time.perf_counter()
        try:
            answer = await self._forward(request, body, forwarded)
        except TimeoutError:
            answer = self.failure("timeout", f"no answer within {self.upstream_timeout:g}s")
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as failure:
            answer = self.failure("invalid_response", str(failure) or type(failure).__name__)
        except (aiohttp.ClientError, OSError) as failure:
            answer = self.failure("connection", str(failure) or type(failure).__name__)
        upstream_seconds = time.perf_counter() - upstream_started
        status, reason, headers, payload, error = answer
        headers[self.id_header] = inference_id
        response = web.Response(body=payload, status=status, reason=reason, headers=headers)
        self.account(
            Exchange(
                inference_id=inference_id,
                received_at=received_at,
                method=request.method,
                path=request.raw_path,
                request_body=body,
                request_content_type=request.headers.get("Content-Type"),
                status=status,
                response_body=payload,
                response_content_type=headers.get("Content-Type"),
                latency_seconds=upstream_seconds,
                request_headers=self._recorded(request.headers),
                error=error,
            ),
            started=started,
            upstream_seconds=upstream_seconds,
        )
        return response

    def refused_too_large(self) -> None:
        """Count a request refused with 413 for its body's size."""
        self._errors["request_too_large"].inc()
        self.metrics.skipped.labels(SKIP_BODY_TOO_LARGE).inc()
        self.metrics.answered(413)

    async def _forward(
        self, request: web.Request, body: bytes, headers: CIMultiDict[str]
    ) -> _Answer:
        if self._session is None:
            raise aiohttp.ClientConnectionError("the proxy is not started")
        url = self._urls.get(request.raw_path)
        if url is None:
            url = URL(self.upstream + request.raw_path, encoded=True)
            if len(self._urls) < URL_CACHE_SIZE:
                self._urls[request.raw_path] = url
        async with self._session.request(
            request.method, url, data=body or None, headers=headers, allow_redirects=False
        ) as answer:
            payload = await answer.read()
            # The answer to a HEAD has no body but tells the length of the one a GET would get.
            dropped = HEAD_NOT_RETURNED if request.method == "HEAD" else NOT_RETURNED
            headers = _copy_headers(answer.headers, dropped)
            return answer.status, answer.reason, headers, payload, None

    def failure(self, kind: str, detail: str) -> _Answer:
        """The proxy's own answer when the model gave none, counted by ``kind``."""
        self._errors[kind].inc()
        headers = CIMultiDict({"Content-Type": "application/json"})
        return ERROR_STATUS[kind], None, headers, error_body(kind, detail), kind

    def _recorded(self, headers: CIMultiDictProxy[str]) -> tuple[tuple[str, str], ...]:
        if not self.record_headers:
            return ()
        return tuple(
            (name, value) for name in self.record_headers for value in headers.getall(name, ())
        )
