"""The capture sidecar's side of the shadow step: answered requests sent again, compared.

The operator orders a shadow with ``POST /monitoring/shadow`` on the sidecar's metrics port
(a :class:`~modelrollout.core.shadow.ShadowOrder`: the run, the candidate's address, the
share to sample, and a time to live that each order renews). While an order is alive,
every captured record goes through :meth:`ShadowForwarder.observe`; a sampled one is queued
and a worker sends its request, at the same moment, to the candidate (the request's own
path on the order's address) and to this pod's model container again. The served answer
and the two new ones are paired and counted (:class:`~modelrollout.core.shadow.ShadowTally`);
``GET /monitoring/shadow`` answers the counts, which the operator merges over the pods.

Nothing here is on the request path: the records come from the capture writer's thread,
the queue is bounded (a full queue drops the sample and counts it), and the candidate's
answers are never served to anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
from aiohttp import web
from pydantic import ValidationError

from modelrollout.core.replay.jsonpath import compile_path, extract
from modelrollout.core.replay.quality import InvalidPrediction, Prediction, PredictionReader
from modelrollout.core.shadow import Answer, ShadowOrder, ShadowTally

log = logging.getLogger("modelrollout.capture.shadow")

SHADOW_PATH = "/monitoring/shadow"
QUEUE_LIMIT = 1000
WORKERS = 8


class ShadowForwarder:
    """Sends sampled, answered requests to the candidate and to the model again."""

    def __init__(
        self,
        upstream: str,
        prediction_path: str,
        *,
        queue_limit: int = QUEUE_LIMIT,
        workers: int = WORKERS,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.path = compile_path(prediction_path)
        self.reader = PredictionReader(self.path)
        self.clock = clock
        self.rng = rng or random.Random()
        self.order: ShadowOrder | None = None
        self.expires = 0.0
        self.tally: ShadowTally | None = None
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_limit)
        self.workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=2 * self.workers), follow_redirects=False
        )
        self._tasks = [self._loop.create_task(self._work()) for _ in range(self.workers)]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    # -- orders ------------------------------------------------------------------------
    def place(self, order: ShadowOrder) -> None:
        """Start or renew a shadow run; a new run id starts the counts again."""
        if self.tally is None or self.tally.id != order.id:
            self.tally = ShadowTally(order.id, self.reader)
        self.order = order
        self.expires = self.clock() + order.ttl_seconds

    def active(self) -> ShadowOrder | None:
        order = self.order
        return order if order is not None and self.clock() < self.expires else None

    # -- records -----------------------------------------------------------------------
    def observe_event(self, record: dict[str, Any]) -> None:
        """A record the capture writer wrote (its thread); never raises, never blocks."""
        if self._loop is None or self.active() is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._offer, record)

    def _offer(self, record: dict[str, Any]) -> None:
        order, tally = self.active(), self.tally
        if order is None or tally is None or self.rng.random() >= order.sample:
            return
        tally.offered += 1
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            tally.dropped += 1

    async def _work(self) -> None:
        while True:
            record = await self.queue.get()
            try:
                await self._shadow(record)
            except Exception:  # one bad record must not stop the worker
                log.exception("shadow: a record could not be shadowed")

    async def _shadow(self, record: dict[str, Any]) -> None:
        order, tally = self.active(), self.tally
        if order is None or tally is None:
            return
        request = _request(record)
        if request is None:
            return
        method, path, body, headers = request
        served = self._prediction(record)
        candidate, again = await asyncio.gather(
            self._send(order.target + path, method, body, headers, order.timeout_seconds),
            self._send(self.upstream + path, method, body, headers, order.timeout_seconds),
        )
        if self.tally is tally:  # not replaced by a new run meanwhile
            tally.add(served, candidate, again)

    async def _send(
        self, url: str, method: str, body: bytes, headers: dict[str, str], seconds: float
    ) -> Answer:
        assert self._client is not None
        started = time.perf_counter()
        try:
            response = await self._client.request(
                method, url, content=body, headers=headers, timeout=seconds
            )
        except httpx.TimeoutException:
            return Answer(None, None, "timeout")
        except httpx.HTTPError:
            return Answer(None, None, "connection")
        latency = (time.perf_counter() - started) * 1000.0
        if response.status_code >= 400:
            return Answer(None, latency, f"http_{response.status_code // 100}xx")
        try:
            answer = json.loads(response.content)
        except ValueError:
            return Answer(None, latency, "invalid_response")
        return Answer(self._prediction({"response": {"payload": answer}}), latency)

    def _prediction(self, record: dict[str, Any]) -> Prediction | None:
        found, value = extract(record, self.path)
        if not found:
            return None
        try:
            return self.reader.interpret(value)
        except InvalidPrediction:
            return None

    # -- the endpoint ------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        async def place(request: web.Request) -> web.Response:
            try:
                order = ShadowOrder.model_validate_json(await request.read())
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "body"
                raise web.HTTPBadRequest(text=f"{where}: {first['msg']}") from None
            self.place(order)
            return self._state()

        async def state(_: web.Request) -> web.Response:
            return self._state()

        return [web.post(SHADOW_PATH, place), web.get(SHADOW_PATH, state)]

    def _state(self) -> web.Response:
        if self.tally is None:
            raise web.HTTPNotFound(text="no shadow has been ordered")
        body = json.dumps(self.tally.state().to_wire(), separators=(",", ":"))
        return web.Response(text=body, content_type="application/json")


def _request(record: dict[str, Any]) -> tuple[str, str, bytes, dict[str, str]] | None:
    """Method, path, body and headers of a record's request, when it can be sent again."""
    method, path = record.get("method"), record.get("path")
    if not isinstance(method, str) or not isinstance(path, str) or not path.startswith("/"):
        return None
    response = record.get("response")
    if not isinstance(response, dict) or response.get("status") != 200:
        return None  # only answered requests are compared
    if "payload" in record:
        body = json.dumps(record["payload"], separators=(",", ":")).encode()
        return method, path, body, {"content-type": "application/json"}
    if isinstance(record.get("body"), str):
        content_type = str(record.get("contentType") or "text/plain")
        return method, path, record["body"].encode(), {"content-type": content_type}
    return method, path, b"", {}
