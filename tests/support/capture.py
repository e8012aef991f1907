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
import re
import subprocess
import threading
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
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
    lean: bool = True,
    **options: Any,
) -> AsyncIterator[RunningCapture]:
    """A proxy on 127.0.0.1 (free ports), version v1 on the stable track; ``lean=False``
    serves everything on the full (aiohttp) path."""
    settings = ProxySettings(
        directory=directory,
        listen="127.0.0.1:0",
        upstream=upstream,
        metrics_listen="127.0.0.1:0",
        prefix="cap",
        context=RecordContext(version="v1", track="stable"),
        upstream_timeout=upstream_timeout,
        shutdown_timeout=shutdown_timeout,
        lean=lean,
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
        self.body: bytes | None = b'{"predictions":[0.5]}'
        """The answer's body; ``None`` answers with the request's own body."""
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
        answer = body if self.body is None else self.body
        response = web.Response(body=answer, status=self.status)
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


class RawUpstream:
    """A model that answers with exactly the bytes it is told, for answers no framework
    would write: chunked, interim 1xx, cut short, not HTTP at all.

    Each request (head and ``Content-Length`` body) is kept in ``requests``; the answer is
    the next of ``answers`` (the last one again when they run out). An answer of ``None``
    closes the connection without a word; ``close_after`` closes it after each answer.
    """

    def __init__(self, *answers: bytes | None, close_after: bool = False) -> None:
        self.answers = list(answers)
        self.close_after = close_after
        self.requests: list[tuple[bytes, bytes]] = []
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    def _next_answer(self) -> bytes | None:
        index = min(len(self.requests), len(self.answers)) - 1
        return self.answers[index]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                answer = self._next_answer()
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    return
        finally:
            writer.close()


async def raw_exchange(url: str, data: bytes, answers: int) -> tuple[list[RawAnswer], bytes]:
    """Send ``data`` as it is on one connection, and read ``answers`` answers framed by
    ``Content-Length``; also what follows them until the proxy closes (or 0.2 s passes)."""
    host, _, port = url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        found = [await read_answer(reader) for _ in range(answers)]
        try:
            rest = await asyncio.wait_for(reader.read(), 0.2)
        except TimeoutError:
            rest = b"(open)"
        return found, rest
    finally:
        writer.close()


class RawAnswer:
    """An answer as it came: status line, header lines and body."""

    def __init__(self, status_line: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_line = status_line
        self.status = int(status_line.split(" ")[1])
        self.headers = headers
        self.body = body

    def get(self, name: str) -> str | None:
        values = self.getall(name)
        return values[0] if values else None

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


async def read_answer(reader: asyncio.StreamReader) -> RawAnswer:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head[:-4].split("\r\n")
    headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines)]
    answer = RawAnswer(status_line, headers, b"")
    length = answer.get("Content-Length")
    if length is not None:
        answer.body = await reader.readexactly(int(length))
    return answer


READY = re.compile(r"capture: (http://\S+) -> .*; metrics (http://\S+)/metrics")


@dataclass
class Sidecar:
    process: subprocess.Popen[bytes]
    log: Path
    url: str
    metrics: str


def post(url: str, payload: object, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers["X-Inference-Id"]
