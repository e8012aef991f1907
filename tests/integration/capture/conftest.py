"""Fixtures for the capture proxy tests: real model servers, an echo upstream, a client.

The model servers are separate processes (``python -m modelrollout.modelserver``), started
once per session. Each test runs its own proxy inside its event loop with
:func:`support.capture.start_proxy`. No Kubernetes cluster is involved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web

from support.capture import EchoUpstream
from support.modelservers import ModelServer, model_servers


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModelServer]]:
    """A v1 model server, and a slow one (300 ms per prediction)."""
    with model_servers(
        tmp_path_factory.mktemp("capture-models"),
        v1=["--model-version", "v1"],
        slow=["--latency-ms", "300"],
    ) as started:
        yield started


@pytest.fixture
def model(models: dict[str, ModelServer]) -> ModelServer:
    return models["v1"]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that leaves bodies as they come (no decompression)."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


@pytest.fixture
async def echo() -> AsyncIterator[EchoUpstream]:
    upstream = EchoUpstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield upstream
    finally:
        upstream.release.set()
        await runner.cleanup()
