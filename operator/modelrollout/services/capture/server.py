"""Running a capture proxy: the listening sockets, the writer, and an orderly stop.

:func:`running_capture` starts everything and yields a :class:`RunningCapture` (its URLs,
metrics and writer), which is how tests and benchmarks run a proxy inside their own
event loop. The command (``modelrollout capture``) runs the same context until SIGTERM.

The listening socket belongs to the lean path (:mod:`.lean`), which serves the common
exchange itself and hands any other connection to the aiohttp server of the full path
(:mod:`.proxy`); with ``lean=False`` (``--no-lean-path``) aiohttp listens and serves all.

Stopping is the reverse of starting, and loses nothing that was accepted: the listening
socket closes first, requests in flight are finished (for at most the shutdown timeout)
and answered, then the writer writes everything queued, closes the open file and renames
it without ``.part``. The metrics endpoint goes last, so a final scrape still sees the
counts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from modelrollout.core.capture.backlog import BacklogLimits
from modelrollout.core.capture.options import CaptureOptions, parse_listen
from modelrollout.core.capture.record import RecordContext
from modelrollout.core.capture.sampling import Sampler
from modelrollout.services.capture.files import CaptureFiles
from modelrollout.services.capture.lean import LeanServer
from modelrollout.services.capture.metrics import CaptureMetrics
from modelrollout.services.capture.proxy import CaptureProxy
from modelrollout.services.capture.shadow import ShadowForwarder
from modelrollout.services.capture.writer import CaptureWriter
from modelrollout.services.monitoring.live import LabelsFollower, SharedWindow, window_routes

DEFAULT_LISTEN = ":8081"
DEFAULT_UPSTREAM = "http://127.0.0.1:8080"
DEFAULT_METRICS_LISTEN = ":9464"


class ListenError(Exception):
    """An address cannot be listened on; ``flag`` names the setting."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"{flag}: {message}")
        self.flag = flag


@dataclass(frozen=True)
class ProxySettings:
    """Where one proxy listens, forwards and writes: what belongs to its pod."""

    directory: Path
    listen: str = DEFAULT_LISTEN
    upstream: str = DEFAULT_UPSTREAM
    metrics_listen: str | None = DEFAULT_METRICS_LISTEN
    prefix: str = "capture"
    context: RecordContext = field(default_factory=RecordContext)
    upstream_timeout: float = 300.0
    shutdown_timeout: float = 10.0
    window: SharedWindow | None = None
    """The live window served on the metrics port at /monitoring/window, when set."""
    labels: LabelsFollower | None = None
    """Delayed labels joined into the window, when set."""
    lean: bool = True
    """Serve the common exchange on the lean path (:mod:`.lean`); aiohttp serves the rest.
    False: aiohttp serves everything."""
    shadow: ShadowForwarder | None = None
    """Shadows ordered on the metrics port at /monitoring/shadow, when set."""

    def observer(self) -> Callable[[dict[str, Any]], None] | None:
        """What the writer hands each written record to: the window and the shadow."""
        takers = [t for t in (self.window, self.shadow) if t is not None]
        if not takers:
            return None

        def observe(record: dict[str, Any]) -> None:
            for taker in takers:
                taker.observe_event(record)

        return observe


@dataclass
class RunningCapture:
    url: str
    metrics_url: str | None
    metrics: CaptureMetrics
    writer: CaptureWriter
    files: CaptureFiles
    recovered: list[str]


async def _listen(runner: web.BaseRunner, address: str, flag: str) -> str:
    host, port = parse_listen(address)
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
    try:
        await site.start()
    except OSError as error:
        raise ListenError(flag, f"cannot listen on {address}: {error.strerror or error}") from None
    return _url(host, runner.addresses[-1][1])


async def _listen_lean(server: LeanServer, address: str, flag: str) -> str:
    host, port = parse_listen(address)
    try:
        bound = await server.listen(host, port)
    except OSError as error:
        raise ListenError(flag, f"cannot listen on {address}: {error.strerror or error}") from None
    return _url(host, bound[-1][1])


def _url(host: str | None, bound: int) -> str:
    shown = host if host is not None else "127.0.0.1"
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{bound}"


def _metrics_app(
    metrics: CaptureMetrics,
    writer: CaptureWriter,
    window: SharedWindow | None,
    shadow: ShadowForwarder | None,
) -> web.Application:
    async def exposition(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), content_type="text/plain", charset="utf-8")

    async def healthz(_: web.Request) -> web.Response:
        if writer.alive:
            return web.Response(text="ok")
        return web.Response(text="the capture writer has stopped", status=503)

    app = web.Application()
    app.router.add_get("/metrics", exposition)
    app.router.add_get("/healthz", healthz)
    if window is not None:
        app.add_routes(window_routes(window))
    if shadow is not None:
        app.add_routes(shadow.routes())
    return app


@contextlib.asynccontextmanager
async def running_capture(
    settings: ProxySettings,
    options: CaptureOptions,
    *,
    files: CaptureFiles | None = None,
    metrics: CaptureMetrics | None = None,
) -> AsyncIterator[RunningCapture]:
    """Start a proxy; stop it in order on exit. Raises :class:`ListenError` or
    :class:`~modelrollout.services.capture.files.DirectoryError`.

    ``files`` replaces the files the settings describe (and brings its own metrics).
    """
    if metrics is None:
        if files is not None:
            metrics = files.metrics
        else:
            metrics = CaptureMetrics(settings.context.version, settings.context.track)
    if files is None:
        files = CaptureFiles(
            settings.directory,
            prefix=settings.prefix,
            policy=options.rotation,
            max_total_bytes=options.total_bytes_limit,
            compress=options.gzip,
            metrics=metrics,
        )
    recovered = files.prepare()
    writer = CaptureWriter(
        files,
        context=settings.context,
        limits=BacklogLimits(options.queue_records, options.queue_bytes_limit),
        flush_interval=options.flush_seconds,
        metrics=metrics,
        observer=settings.observer(),
    )
    proxy = CaptureProxy(
        settings.upstream,
        writer=writer,
        sampler=Sampler(options.sample, options.seed),
        metrics=metrics,
        id_header=options.id_header,
        record_headers=options.record_headers,
        upstream_timeout=settings.upstream_timeout,
    )
    app = web.Application(client_max_size=options.body_bytes_limit)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=settings.shutdown_timeout
    )
    metrics_runner = web.AppRunner(
        _metrics_app(metrics, writer, settings.window, settings.shadow),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=1,
    )
    async with contextlib.AsyncExitStack() as stack:
        # Callbacks run last-pushed first: listener, session, writer, then metrics.
        metrics_url = None
        if settings.metrics_listen is not None:
            await metrics_runner.setup()
            stack.push_async_callback(metrics_runner.cleanup)
            metrics_url = await _listen(metrics_runner, settings.metrics_listen, "--metrics-listen")
        if settings.shadow is not None:
            await settings.shadow.start()
            stack.push_async_callback(settings.shadow.close)
        writer.start()
        stack.push_async_callback(asyncio.to_thread, writer.close, settings.shutdown_timeout)
        await proxy.start()
        stack.push_async_callback(proxy.close)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        if settings.lean and runner.server is not None:
            lean = LeanServer(proxy, fallback=runner.server, body_limit=options.body_bytes_limit)
            url = await _listen_lean(lean, settings.listen, "--listen")
            stack.push_async_callback(lean.close, settings.shutdown_timeout)
        else:
            url = await _listen(runner, settings.listen, "--listen")
        if settings.labels is not None:
            follower = asyncio.get_running_loop().create_task(settings.labels.follow())
            stack.callback(follower.cancel)
        yield RunningCapture(url, metrics_url, metrics, writer, files, recovered)
