"""Real HTTP model servers (``python -m modelrollout.modelserver``) for tests."""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from support.wait import poll_until


@dataclass
class ModelServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def predict(self) -> str:
        return f"{self.url}/v1/models/model:predict"


def start_model_server(tmp: Path, name: str, *args: str) -> ModelServer:
    """Start a model server on a free port; returns once it listens."""
    port_file = tmp / f"{name}.port"
    log_path = tmp / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelrollout.modelserver", "--port", "0",
             "--port-file", str(port_file), *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def ready() -> int | None:
        if process.poll() is not None:
            raise AssertionError(f"model server {name} exited: {log_path.read_text()}")
        text = port_file.read_text().strip() if port_file.exists() else ""
        return int(text) if text else None

    port = poll_until(ready, timeout=30, interval=0.05, message=f"model server {name} listens")
    return ModelServer(f"http://127.0.0.1:{port}", port, process)


def stop_model_servers(servers: list[ModelServer]) -> None:
    for server in servers:
        server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


@contextlib.contextmanager
def model_servers(tmp: Path, **specs: list[str]) -> Iterator[dict[str, ModelServer]]:
    """Several servers by name, each with its own arguments, stopped at the end."""
    started: dict[str, ModelServer] = {}
    try:
        for name, args in specs.items():
            started[name] = start_model_server(tmp, name, *args)
        yield started
    finally:
        stop_model_servers(list(started.values()))


def events_jsonl(n: int, *, labels: bool = True, seed: int = 1) -> str:
    """``n`` events with 4 features, 100 per recorded second, as JSON Lines."""
    rng = random.Random(seed)
    lines = []
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
        lines.append(json.dumps(event))
    return "\n".join(lines) + "\n"
