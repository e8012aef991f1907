"""The shadow in a real sidecar process: ordered on its metrics port, it sends the answered
requests again to a candidate model server and to its own model, and counts the pairs."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.capture import PREDICT, Sidecar, post
from support.modelservers import ModelServer, start_model_server
from support.wait import poll_until


@pytest.fixture
def v3(tmp_path: Path) -> Iterator[ModelServer]:
    server = start_model_server(tmp_path, "v3", "--model-version", "v3")
    try:
        yield server
    finally:
        server.process.kill()
        server.process.wait(timeout=10)


def order(sidecar: Sidecar, body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{sidecar.metrics}/monitoring/shadow",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def counts(sidecar: Sidecar) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sidecar.metrics}/monitoring/shadow", timeout=10) as answer:
        found: dict[str, Any] = json.loads(answer.read())
    return found


def send(sidecar: Sidecar, n: int) -> None:
    rng = random.Random(5)
    for i in range(n):
        instance = {"instances": [[rng.gauss(0, 1) for _ in range(4)]]}
        assert post(sidecar.url + PREDICT, instance, {"X-Inference-Id": f"r{i}"})[0] == 200


def test_a_shadow_pairs_answers_with_the_candidate_and_with_the_model_itself(
    sidecar: Sidecar, v3: ModelServer, model: ModelServer
):
    status, text = order(sidecar, {"id": "run-1", "target": v3.url, "sample": 1.0})
    assert status == 200, text
    send(sidecar, 60)
    state = poll_until(
        lambda: (c := counts(sidecar))["candidate"]["pairs"] == 60 and c,
        timeout=30,
        message="60 shadow pairs",
    )
    assert state["id"] == "run-1"
    assert state["offered"] == 60
    assert state["floor"] == {**state["floor"], "pairs": 60, "agreed": 60}  # deterministic
    assert state["candidate"]["agreed"] < 10  # v3 answers the other way
    assert state["candidateLatency"]["count"] == 60
    assert state["stableLatency"]["count"] == 60
    # the candidate's answers were never served: the client saw only v1's
    # a new run starts the counts again
    assert order(sidecar, {"id": "run-2", "target": model.url, "sample": 1.0})[0] == 200
    send(sidecar, 20)
    state = poll_until(
        lambda: (c := counts(sidecar))["candidate"]["pairs"] == 20 and c,
        timeout=30,
        message="20 pairs of the second run",
    )
    assert state["id"] == "run-2"
    assert state["candidate"]["agreed"] == 20


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target": "http://x:1", "sample": 0.5}, "id"),
        ({"id": "r", "target": "ftp://x", "sample": 0.5}, "target"),
        ({"id": "r", "target": "http://x:1", "sample": 0}, "sample"),
        ({"id": "r", "target": "http://x:1/path", "sample": 0.5}, "target"),
    ],
)
def test_a_bad_order_is_refused_naming_the_field(sidecar: Sidecar, body, field):
    status, text = order(sidecar, body)
    assert status == 400
    assert text.startswith(f"{field}:"), text


def test_no_shadow_is_counted_before_one_is_ordered(sidecar: Sidecar):
    send(sidecar, 3)
    with pytest.raises(urllib.error.HTTPError) as refused:
        counts(sidecar)
    with refused.value:
        assert refused.value.code == 404
