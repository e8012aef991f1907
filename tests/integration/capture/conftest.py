"""Fixtures for the capture proxy tests: real model servers, an echo upstream, a client.

The model servers are separate processes (``python -m modelrollout.modelserver``), started
once per session. Each test runs its own proxy inside its event loop with
:func:`support.capture.start_proxy`. No Kubernetes cluster is involved.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from support.capture import READY, EchoUpstream, Sidecar
from support.modelservers import ModelServer, model_servers
from support.wait import poll_until


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


@pytest.fixture
def sidecar(
    tmp_path: Path, model: ModelServer, request: pytest.FixtureRequest
) -> Iterator[Sidecar]:
    """The command in an empty working directory, with version and track from the env (and
    the flags a test gives as the fixture's parameter, ``{tmp}`` standing for tmp_path)."""
    extra = [arg.format(tmp=tmp_path) for arg in getattr(request, "param", [])]
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    log = tmp_path / "capture.log"
    env = dict(os.environ, MODELROLLOUT_VERSION="v1", MODELROLLOUT_TRACK="candidate")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelrollout.cli.capture", "--dir", str(tmp_path / "captures"),
             "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
             "--upstream", model.url, "--prefix", "pod-a", *extra],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def ready() -> re.Match[str] | None:
        if process.poll() is not None:
            raise AssertionError(f"capture exited: {log.read_text()}")
        return READY.search(log.read_text())

    try:
        found = poll_until(ready, timeout=30, interval=0.05, message="the proxy listens")
        yield Sidecar(process, log, found.group(1), found.group(2))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
