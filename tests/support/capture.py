"""The capture proxy in-process, and what its tests need around it.

:func:`start_proxy` runs a proxy inside the test's event loop, on free ports, writing into
the test's directory; leaving the context stops it in order, so the files are complete
afterwards. :class:`EchoUpstream` is an HTTP server, in the same loop, that records
exactly what reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from modelrollout.core.capture.options import CaptureOptions
from modelrollout.core.capture.record import RecordContext
from modelrollout.services.capture import (
    CaptureFiles,
    CaptureMetrics,
    ProxySettings,
    RunningCapture,
)
from modelrollout.services.capture import running_capture as _running_capture

PREDICT = "/v1/models/model:predict"


@contextlib.asynccontextmanager
async def start_proxy(
    directory: Path,
    upstream: str,
    *,
    files: CaptureFiles | None = None,
    upstream_timeout: float = 30.0,
    shutdown_timeout: float = 10.0,
    **options: Any,
) -> AsyncIterator[RunningCapture]:
    """A proxy on 127.0.0.1 (free ports), version v1 on the stable track."""
    settings = ProxySettings(
        directory=directory,
        listen="127.0.0.1:0",
        upstream=upstream,
        metrics_listen="127.0.0.1:0",
        prefix="cap",
        context=RecordContext(version="v1", track="stable"),
        upstream_timeout=upstream_timeout,
        shutdown_timeout=shutdown_timeout,
    )
    async with _running_capture(settings, CaptureOptions(**options), files=files) as running:
        yield running


async def call(
    session: aiohttp.ClientSession,
    url: str,
    *,
    method: str = "POST",
    body: bytes | None = None,
    payload: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, CIMultiDict[str], bytes]:
    """Status, headers and raw body of one request."""
    data = body if payload is None else json.dumps(payload).encode()
    sent = dict(headers or {})
    if payload is not None:
        sent.setdefault("Content-Type", "application/json")
    target = URL(url, encoded=True)  # sent as written, not normalised
    async with session.request(method, target, data=data, headers=sent) as response:
        return response.status, CIMultiDict(response.headers), await response.read()


def lines(directory: Path, pattern: str = "*.jsonl") -> list[dict[str, Any]]:
    """Every record in the complete files matching ``pattern``, in file order."""
    found = []
    for path in sorted(directory.glob(pattern)):
        with path.open("rb") as handle:
            found += [json.loads(line) for line in handle]
    return found


def all_text(directory: Path) -> str:
    """Everything in the directory's files, as text."""
    return "".join(path.read_text() for path in sorted(directory.iterdir()))


class EchoUpstream:
    """An HTTP server that records each request and answers as told.

    ``hold`` makes it wait before answering, until ``release`` is set; ``arrived`` is set
    as soon as a request is in.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, CIMultiDict[str], bytes]] = []
        self.peers: list[object] = []
        self.status = 200
        self.headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
        self.body = b'{"predictions":[0.5]}'
        self.hold = False
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((request.method, request.raw_path, CIMultiDict(request.headers), body))
        self.peers.append(
            request.transport.get_extra_info("peername") if request.transport else None
        )
        self.arrived.set()
        if self.hold:
            await self.release.wait()
        response = web.Response(body=self.body, status=self.status)
        for name, value in self.headers:
            response.headers.add(name, value)
        return response


class GatedFiles(CaptureFiles):
    """Capture files whose every write first waits for ``gate``: a stalled disk.

    ``entered`` is set when the writer thread is inside a write, so a test knows the
    writer holds its batch and everything sent afterwards can only queue or drop.
    """

    def __init__(self, directory: Path, **options: Any) -> None:
        parsed = CaptureOptions(**options)
        super().__init__(
            directory,
            prefix="cap",
            policy=parsed.rotation,
            max_total_bytes=parsed.total_bytes_limit,
            compress=parsed.gzip,
            metrics=CaptureMetrics("v1", "stable"),
        )
        self.entered = threading.Event()
        self.gate = threading.Event()

    def write(self, lines: Sequence[bytes]) -> None:
        self.entered.set()
        if not self.gate.wait(timeout=60):
            raise AssertionError("the gate of GatedFiles was never opened")
        super().write(lines)
