"""The model server's HTTP application (KServe v1 protocol, Prometheus metrics, stats).

Endpoints:

``POST /v1/models/<name>:predict``
    ``{"instances": [[f1, f2, ...], ...]}`` (or ``"inputs"``) → ``{"predictions": [p, ...]}``.
    A single flat instance ``{"instances": [f1, f2, ...]}`` is accepted too. Malformed
    input is a 400 with ``{"error": ...}``; a wrong model name is a 404.
``GET /v1/models/<name>``
    Model metadata and readiness.
``GET /healthz``
    ``ok``.
``GET /metrics``
    Prometheus text: requests by code, a latency histogram, and a ``model_info`` series
    carrying the version label.
``GET /stats`` / ``POST /stats/reset``
    The server's own record of every prediction request: its arrival time and the time the
    server spent on it (ms). Benchmarks compare a load generator's measurements with this
    ground truth. ``?since=N`` returns records from index N on.

Fault injection for tests and demos: a fixed latency plus an exponentially distributed
jitter (mean ``latency_jitter_ms``), and an error rate answered with HTTP 500. Both use a
seeded generator, so a run is reproducible given the same request order. With
``faults_after_requests`` the faults begin only once the server has answered that many
prediction requests: a version that passes its replay and then regresses under live
traffic.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import numpy as np
from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from modelrollout.modelserver.model import LogisticModel

# No `*_created` series: they double the output and nobody here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
LATENCY_BUCKETS = (
    *(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03, 0.035),
    *(0.04, 0.045, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.125, 0.15, 0.2, 0.25, 0.5, 1.0),
    *(2.5, 5.0, 10.0),
)
"""Fine enough between 1 ms and 100 ms for a judge to compare two versions' tails."""
MAX_RECORDS = 2_000_000


@dataclass
class ServerConfig:
    model_name: str = "model"
    model: LogisticModel = field(default_factory=LogisticModel.builtin)
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    seed: int = 0
    max_records: int = MAX_RECORDS
    faults_after_requests: int = 0


class Recorder:
    """Per-request ground truth, plus the Prometheus metrics (through prometheus_client)."""

    def __init__(self, max_records: int, model_name: str = "model", version: str = "v1") -> None:
        self.max_records = max_records
        self.arrivals: list[float] = []
        self.service_ms: list[float] = []
        self.statuses: list[int] = []
        self.overflow = 0
        self.labels = (model_name, version)
        self.registry = CollectorRegistry(auto_describe=True)
        info = Gauge(
            "modelserver_model_info",
            "The model being served.",
            ["model", "version"],
            registry=self.registry,
        )
        info.labels(*self.labels).set(1)
        self.requests = Counter(
            "modelserver_requests",
            "Prediction requests by HTTP status code.",
            ["model", "version", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "modelserver_request_duration_seconds",
            "Time spent serving a prediction request.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(*self.labels)

    def record(self, arrival: float, seconds: float, status: int) -> None:
        if len(self.arrivals) < self.max_records:
            self.arrivals.append(arrival)
            self.service_ms.append(seconds * 1000.0)
            self.statuses.append(status)
        else:
            self.overflow += 1
        self.requests.labels(*self.labels, str(status)).inc()
        self.duration.observe(seconds)

    def reset(self) -> None:
        self.arrivals.clear()
        self.service_ms.clear()
        self.statuses.clear()
        self.overflow = 0


class BadRequest(Exception):
    pass


def parse_instances(document: object, features: int) -> np.ndarray:
    """The instances of a KServe v1 request as a 2-D float array."""
    if isinstance(document, dict):
        instances = document.get("instances", document.get("inputs"))
        if instances is None:
            raise BadRequest('expected {"instances": [[...], ...]}')
    else:
        raise BadRequest('expected a JSON object {"instances": [[...], ...]}')
    if not isinstance(instances, list) or not instances:
        raise BadRequest("instances must be a non-empty list")
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in instances):
        instances = [instances]
    try:
        array = np.asarray(instances, dtype=np.float64)
    except (ValueError, TypeError):
        raise BadRequest("instances must be lists of numbers of equal length") from None
    if array.ndim != 2 or array.shape[1] != features:
        raise BadRequest(f"each instance must have {features} numbers")
    if not np.isfinite(array).all():
        raise BadRequest("instances must be finite numbers")
    return array


def create_app(config: ServerConfig) -> web.Application:
    recorder = Recorder(config.max_records, config.model_name, config.model.version)
    rng = np.random.default_rng(config.seed)
    model = config.model
    base_delay = config.latency_ms / 1000.0
    jitter_mean = config.latency_jitter_ms / 1000.0
    served = 0

    async def predict(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        arrival = loop.time()
        status, payload = await _predict(request)
        recorder.record(arrival, loop.time() - arrival, status)
        return web.Response(
            body=json.dumps(payload, separators=(",", ":")).encode(),
            status=status,
            content_type="application/json",
        )

    async def _predict(request: web.Request) -> tuple[int, dict[str, object]]:
        if request.match_info["name"] != config.model_name:
            return 404, {"error": f"model {request.match_info['name']!r} not found"}
        body = await request.read()
        nonlocal served
        served += 1
        delay, fail = 0.0, False
        if served > config.faults_after_requests:
            delay = base_delay
            if jitter_mean > 0:
                delay += float(rng.exponential(jitter_mean))
            fail = config.error_rate > 0 and float(rng.random()) < config.error_rate
        try:
            instances = parse_instances(json.loads(body), model.features)
        except (ValueError, UnicodeDecodeError):
            return 400, {"error": "request body is not JSON"}
        except BadRequest as error:
            return 400, {"error": str(error)}
        if delay > 0:
            await asyncio.sleep(delay)
        if fail:
            return 500, {"error": "injected failure"}
        return 200, {"predictions": model.predict(instances), "modelVersion": model.version}

    async def metadata(request: web.Request) -> web.Response:
        if request.match_info["name"] != config.model_name:
            raise web.HTTPNotFound(text="model not found")
        return web.json_response(
            {"name": config.model_name, "version": model.version, "ready": True}
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(recorder.registry), content_type="text/plain", charset="utf-8"
        )

    async def stats(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.json_response(
            {
                "count": len(recorder.arrivals),
                "overflow": recorder.overflow,
                "arrivals": recorder.arrivals[since:],
                "serviceTimesMs": recorder.service_ms[since:],
                "statuses": recorder.statuses[since:],
                "clock": time.monotonic(),
            }
        )

    async def reset(_: web.Request) -> web.Response:
        recorder.reset()
        return web.json_response({"reset": True})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/models/{name}:predict", predict)
    app.router.add_get("/v1/models/{name}", metadata)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/stats", stats)
    app.router.add_post("/stats/reset", reset)
    return app
