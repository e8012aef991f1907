"""HTTP clients for the replay sender, behind one small interface.

A transport *starts* a request and calls ``done`` with its answer; it never makes the
sender wait. Three implementations exist so that the choice can be made, and re-made, by
measurement (``docs/benchmarks.md``):

* :class:`LeanTransport` (the default for ``http://`` endpoints) — HTTP/1.1 on asyncio
  protocols (:mod:`modelrollout.services.http1pool`, shared with the capture sidecar):
  the request is written to a kept-alive connection the moment it is started, with no
  task, future or stream per request, and the answer is read from ``data_received``.
  It covers the common case: a body of known length, plain HTTP;
* :class:`AiohttpTransport` (the default for ``https://``) — aiohttp's client, a task per
  request; the general path;
* :class:`HttpxTransport` — httpx, kept for comparison: its connection pool is known to
  slow down under concurrency (encode/httpx#3215).

``--client auto`` (the default) picks the lean transport when every endpoint is plain
HTTP and aiohttp otherwise; the result names the client that sent (``client``).

All report failures as :class:`SendError` with one of the error types of a result
(``timeout``, ``connection``, ``invalid_response``); HTTP statuses are returned, not
raised, and redirects are not followed (a 3xx from a model endpoint is an error worth
seeing). The concurrency limit is enforced by the sender, not the pool; the pool is just
sized to match so that no request waits inside the client where its lag would be
invisible.
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Literal, Protocol

import aiohttp
import httpx
from yarl import URL

from modelrollout.core.capture import http1
from modelrollout.core.replay.run import ClientName
from modelrollout.services.http1pool import UpstreamPool

UsedClient = Literal["lean", "aiohttp", "httpx"]
KEEPALIVE_SECONDS = 15.0
"""An idle connection of the lean transport is closed after this long (aiohttp's default)."""
USER_AGENT = "modelrollout-replay"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

clock = time.monotonic
"""The clock of every send and answer time: Python's event loop uses it too, but uvloop's
``loop.time()`` counts whole milliseconds, too coarse to time a request or a send."""

Done = Callable[[float, int, bytes, str | None, str], None]
"""Called once per started request: ``(sent_at, status, body, None, "")`` with an answer,
``(sent_at, 0, b"", kind, detail)`` without. ``sent_at`` is the loop time at which the
client began to send it, by :data:`clock`."""


class SendError(Exception):
    """A request that ended without an HTTP response."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class Transport(Protocol):
    name: UsedClient

    def start(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], done: Done
    ) -> None:
        """Start sending one request; ``done`` is called once with what came of it."""
        ...

    async def close(self) -> None: ...


class _TaskPerRequest:
    """``start`` for a client with an ``async send``: one task per request."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        """Send one request; return ``(status, body)`` or raise :class:`SendError`."""
        raise NotImplementedError

    def start(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], done: Done
    ) -> None:
        task = self._loop.create_task(self._run(method, url, body, headers, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], done: Done
    ) -> None:
        sent_at = clock()
        try:
            status, payload = await self.send(method, url, body, headers)
        except SendError as error:
            done(sent_at, 0, b"", error.kind, str(error))
        except Exception as error:  # an unexpected client failure must still be accounted for
            done(sent_at, 0, b"", "connection", str(error) or type(error).__name__)
        else:
            done(sent_at, status, payload, None, "")


class AiohttpTransport(_TaskPerRequest):
    name: UsedClient = "aiohttp"

    def __init__(self, concurrency: int, timeout: float) -> None:
        super().__init__()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=concurrency, limit_per_host=concurrency, ttl_dns_cache=300
            ),
            timeout=aiohttp.ClientTimeout(total=timeout),
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=True,
            trust_env=False,
        )
        self._urls: dict[str, URL] = {}

    async def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = URL(url)
        try:
            async with self._session.request(
                method, parsed, data=body, headers=headers, allow_redirects=False
            ) as response:
                payload = await response.read()
                return response.status, payload
        except TimeoutError as error:
            raise SendError("timeout", str(error)) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as error:
            raise SendError("invalid_response", str(error)) from None
        except (aiohttp.ClientError, OSError) as error:
            raise SendError("connection", str(error) or type(error).__name__) from None

    async def close(self) -> None:
        await self._session.close()


class HttpxTransport(_TaskPerRequest):
    name: UsedClient = "httpx"

    def __init__(self, concurrency: int, timeout: float) -> None:
        super().__init__()
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )

    async def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        try:
            response = await self._client.request(method, url, content=body, headers=headers)
            return response.status_code, response.content
        except httpx.TimeoutException as error:
            raise SendError("timeout", str(error)) from None
        except httpx.DecodingError as error:
            raise SendError("invalid_response", str(error)) from None
        except (httpx.HTTPError, OSError) as error:
            raise SendError("connection", str(error) or type(error).__name__) from None

    async def close(self) -> None:
        await self._client.aclose()


class LeanTransport:
    """HTTP/1.1 over kept-alive connections to one origin, with no task per request.

    The request is built (its head cached per method, URL and headers) and written at
    once on an idle connection, or on a new one; the pool's single timer enforces the
    timeout. No ``Accept-Encoding`` is sent; an answer compressed all the same (gzip or
    deflate) is decompressed, as aiohttp does.
    """

    name: UsedClient = "lean"

    def __init__(self, origin: str, timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._pool = UpstreamPool(origin, timeout=timeout, idle_seconds=KEEPALIVE_SECONDS)
        self._host = self._pool.host_header.decode("ascii")
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...]], bytes] = {}

    def _head(self, method: str, url: str, headers: Mapping[str, str]) -> bytes:
        key = (method, url, tuple(headers.items()))
        head = self._heads.get(key)
        if head is None:
            parsed = URL(url)
            target = parsed.raw_path_qs or "/"
            given = {name.lower() for name in headers}
            lines = [f"{method} {target} HTTP/1.1"]
            if "host" not in given:
                lines.append(f"Host: {self._host}")
            if "user-agent" not in given:
                lines.append(f"User-Agent: {USER_AGENT}")
            for name, value in headers.items():
                if _TOKEN.fullmatch(name) is None or "\r" in value or "\n" in value:
                    raise ValueError(f"header {name!r} cannot be sent")
                lines.append(f"{name}: {value}")
            head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
            if len(self._heads) >= 4096:
                self._heads.clear()
            self._heads[key] = head
        return head

    def start(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], done: Done
    ) -> None:
        sent_at = clock()
        try:
            head = self._head(method, url, headers)
        except (ValueError, UnicodeError) as error:
            done(sent_at, 0, b"", "connection", str(error))
            return
        request = b"%s%d\r\n\r\n%s" % (head, len(body), body)

        def answered(
            response: http1.ResponseHead | None, payload: bytes, kind: str | None, detail: str
        ) -> None:
            if response is None:
                done(sent_at, 0, b"", kind or "connection", detail)
                return
            if response.get(b"content-encoding") is not None:
                try:
                    payload = _decoded(response, payload)
                except (ValueError, zlib.error) as error:
                    done(sent_at, 0, b"", "invalid_response", str(error))
                    return
            done(sent_at, response.status, payload, None, "")

        self._pool.send(request, method, answered)

    async def close(self) -> None:
        self._pool.close()


def _decoded(response: http1.ResponseHead, payload: bytes) -> bytes:
    coding = (response.get(b"content-encoding") or b"").strip().lower()
    if coding in (b"", b"identity"):
        return payload
    if coding in (b"gzip", b"x-gzip", b"deflate"):
        return zlib.decompress(payload, 47)  # a zlib or gzip header, detected
    raise ValueError(f"unsupported Content-Encoding {coding.decode('latin-1')!r}")


def resolve_client(client: ClientName, urls: list[str]) -> UsedClient:
    """The client ``auto`` stands for: lean when every endpoint is plain HTTP."""
    if client != "auto":
        return client
    return "lean" if all(u.startswith("http://") for u in urls) else "aiohttp"


def make_transport(client: UsedClient, url: str, concurrency: int, timeout: float) -> Transport:
    if client == "lean":
        return LeanTransport(url, timeout)
    if client == "httpx":
        return HttpxTransport(concurrency, timeout)
    return AiohttpTransport(concurrency, timeout)
