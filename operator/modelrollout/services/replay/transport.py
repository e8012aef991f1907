"""HTTP clients for the replay sender, behind one small interface.

Two implementations exist so that the choice can be made, and re-made, by measurement:

* :class:`AiohttpTransport` (the default) — aiohttp's connector reuses keep-alive
  connections cheaply and its per-request cost on one core is the lowest of the two;
* :class:`HttpxTransport` — httpx, kept for comparison: its connection pool is known to
  slow down under concurrency (encode/httpx#3215), and our benchmark
  (``docs/benchmarks.md``) shows it sustaining a markedly lower rate on one core.

Both report failures as :class:`SendError` with one of the error types of a result
(``timeout``, ``connection``, ``invalid_response``); HTTP statuses are returned, not
raised, and redirects are not followed (a 3xx from a model endpoint is an error worth
seeing). The concurrency limit is enforced by the sender, not the pool; the pool is just
sized to match so that no request waits inside the client where its lag would be
invisible.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

import aiohttp
import httpx
from yarl import URL

from modelrollout.core.replay.run import ClientName


class SendError(Exception):
    """A request that ended without an HTTP response."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class Transport(Protocol):
    async def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        """Send one request; return ``(status, body)`` or raise :class:`SendError`."""
        ...

    async def close(self) -> None: ...


class AiohttpTransport:
    def __init__(self, concurrency: int, timeout: float) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=concurrency, limit_per_host=concurrency, ttl_dns_cache=300
            ),
            timeout=aiohttp.ClientTimeout(total=timeout),
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "modelrollout-replay"},
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


class HttpxTransport:
    def __init__(self, concurrency: int, timeout: float) -> None:
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": "modelrollout-replay"},
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


def make_transport(client: ClientName, concurrency: int, timeout: float) -> Transport:
    if client == "httpx":
        return HttpxTransport(concurrency, timeout)
    return AiohttpTransport(concurrency, timeout)


async def _close_all(transports: list[Transport]) -> None:
    await asyncio.gather(*(t.close() for t in transports), return_exceptions=True)
