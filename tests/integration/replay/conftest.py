"""Real model servers on 127.0.0.1 and event datasets for the replay CLI tests.

Servers are separate processes (``python -m modelrollout.modelserver --port 0``), started
once per session and stopped at the end; their port is read from ``--port-file`` by
polling with a deadline.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.wait import poll_until


@dataclass
class ModelServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def predict(self) -> str:
        return f"{self.url}/v1/models/model:predict"


def _start(tmp: Path, name: str, *args: str) -> ModelServer:
    port_file = tmp / f"{name}.port"
    log = (tmp / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelrollout.modelserver",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            *args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()

    def ready() -> int | None:
        if process.poll() is not None:
            raise AssertionError(f"model server {name} exited: {(tmp / f'{name}.log').read_text()}")
        return int(port_file.read_text()) if port_file.exists() else None

    port = poll_until(ready, timeout=30, interval=0.05, message=f"model server {name} listens")
    return ModelServer(f"http://127.0.0.1:{port}", port, process)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModelServer]]:
    """v2 candidate, v1 baseline, a slow one and a flaky one."""
    tmp = tmp_path_factory.mktemp("servers")
    started: dict[str, ModelServer] = {}
    try:
        for name, args in {
            "v2": ["--model-version", "v2"],
            "v1": ["--model-version", "v1"],
            "slow": ["--latency-ms", "400"],
            "flaky": ["--error-rate", "0.3", "--seed", "5"],
        }.items():
            started[name] = _start(tmp, name, *args)
        yield started
    finally:
        for server in started.values():
            server.process.terminate()
        for server in started.values():
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=10)


def write_events(
    path: Path, n: int, *, labels: bool = True, seed: int = 1, extra: list[str] | None = None
) -> Path:
    """A dataset of ``n`` events with 4 features, 100 events per recorded second."""
    rng = random.Random(seed)
    with path.open("w") as out:
        for i in range(n):
            x = [round(rng.gauss(0, 1), 3) for _ in range(4)]
            event: dict[str, object] = {
                "timestamp": 1714521600 + i / 100,
                "payload": {"instances": [x]},
                "attributes": {"region": "eu" if i % 2 else "us"},
                "id": f"e{i}",
            }
            if labels:
                signal = 0.8 * x[0] - 0.5 * x[1] + 1.2 * x[2] + 0.3 * x[3] - 0.2
                event["label"] = int(signal + rng.gauss(0, 0.7) > 0)
            out.write(json.dumps(event) + "\n")
        for line in extra or []:
            out.write(line + "\n")
    return path


@pytest.fixture
def events(tmp_path: Path) -> Callable[..., Path]:
    def make(n: int = 300, **kwargs: object) -> Path:
        return write_events(tmp_path / f"events-{n}.jsonl", n, **kwargs)  # type: ignore[arg-type]

    return make
