"""Serve ``/metrics`` on the metrics port while the operator runs."""

from __future__ import annotations

from typing import Any

import kopf
from aiohttp import web

from modelrollout.services import metrics

PORT = 8081


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(
        body=metrics.render(),
        content_type="text/plain",
        charset="utf-8",
    )


@kopf.on.startup()
async def start_metrics(memo: kopf.Memo, **_: Any) -> None:
    if not PORT:
        return
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", PORT).start()
    memo.metrics_runner = runner


@kopf.on.cleanup()
async def stop_metrics(memo: kopf.Memo, **_: Any) -> None:
    runner = memo.get("metrics_runner")
    if runner is not None:
        await runner.cleanup()
