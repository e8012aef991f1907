"""Real model servers on 127.0.0.1 and event datasets for the replay CLI tests.

Servers are separate processes (``python -m modelrollout.modelserver --port 0``), started
once per session and stopped at the end; their port is read from ``--port-file`` by
polling with a deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.modelservers import ModelServer, events_jsonl, model_servers


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModelServer]]:
    """v2 candidate, v1 baseline, a slow one and a flaky one."""
    tmp = tmp_path_factory.mktemp("servers")
    with model_servers(
        tmp,
        v2=["--model-version", "v2"],
        v1=["--model-version", "v1"],
        slow=["--latency-ms", "400"],
        flaky=["--error-rate", "0.3", "--seed", "5"],
    ) as started:
        yield started


def write_events(
    path: Path, n: int, *, labels: bool = True, seed: int = 1, extra: list[str] | None = None
) -> Path:
    """A dataset of ``n`` events with 4 features, 100 events per recorded second."""
    text = events_jsonl(n, labels=labels, seed=seed)
    path.write_text(text + "".join(line + "\n" for line in extra or []))
    return path


@pytest.fixture
def events(tmp_path: Path) -> Callable[..., Path]:
    def make(n: int = 300, **kwargs: object) -> Path:
        return write_events(tmp_path / f"events-{n}.jsonl", n, **kwargs)  # type: ignore[arg-type]

    return make
