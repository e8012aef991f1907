"""What the proxy writes is a replay dataset and a drift window, as it stands."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelrollout.cli.replay import main as replay_main
from modelrollout.core.replay.result import ReplayResult
from support.capture import PREDICT, call, lines, start_proxy
from support.modelservers import ModelServer, events_jsonl
from support.wait import async_poll_until

EVENTS = [json.loads(line) for line in events_jsonl(150).splitlines()]


async def capture_events(
    directory: Path, model: ModelServer, http: aiohttp.ClientSession, **options: Any
) -> list[tuple[str, float]]:
    """Send the events through a proxy; return each one's id and prediction."""
    answers = []
    async with start_proxy(directory, model.url, **options) as proxy:
        for event in EVENTS:
            status, headers, body = await call(
                http,
                proxy.url + PREDICT,
                payload=event["payload"],
                headers={"X-Inference-Id": event["id"]},
            )
            assert status == 200
            answers.append((headers["X-Inference-Id"], json.loads(body)["predictions"][0]))
        await call(http, proxy.url + "/v1/models/other:predict", payload=EVENTS[0]["payload"])
        await async_poll_until(
            lambda: (
                proxy.metrics.value("modelrollout_capture_records_written_total") == len(EVENTS) + 1
            ),
            timeout=10,
            message="every record written",
        )
    return answers


def replay(tmp_path: Path, *args: str) -> tuple[int, ReplayResult]:
    output = tmp_path / "result.json"
    code = replay_main(["replay", "--quiet", "--output", str(output), *args])
    return code, ReplayResult.model_validate_json(output.read_text())


def one_file(directory: Path, pattern: str) -> Path:
    (found,) = directory.glob(pattern)
    return found


@pytest.mark.parametrize("compressed", [False, True], ids=["jsonl", "gzip"])
async def test_a_captured_file_replays_against_a_model_server(
    tmp_path: Path, model: ModelServer, http: aiohttp.ClientSession, compressed: bool
):
    captured = tmp_path / "captured"
    await capture_events(captured, model, http, gzip=compressed)
    dataset = one_file(captured, "*.jsonl.gz" if compressed else "*.jsonl")
    code, result = await asyncio.to_thread(
        replay,
        tmp_path,
        "--events", str(dataset), "--target", model.predict, "--rate", "300",
        "--prediction-path", "predictions[0]", "--filter", "status=200",
        "--max-error-rate", "0",
    )  # fmt: skip
    assert code == 0
    c = result.counts
    assert (c.lines, c.malformed, c.filtered, c.selected) == (151, 0, 1, 150)
    assert (c.sent, c.ok, c.errors) == (150, 150, 0)
    assert result.verdict.passed


async def test_replay_at_the_recorded_pace_on_the_recorded_paths(
    tmp_path: Path, model: ModelServer, http: aiohttp.ClientSession
):
    captured = tmp_path / "captured"
    await capture_events(captured, model, http)
    dataset = one_file(captured, "*.jsonl")
    code, result = await asyncio.to_thread(
        replay,
        tmp_path,
        "--events", str(dataset), "--target", model.url, "--use-event-path",
        "--speed", "20", "--filter", "track=stable", "--filter", "version=v1",
    )  # fmt: skip
    assert code == 0
    assert (result.counts.selected, result.counts.malformed) == (151, 0)
    assert result.errors == {"http_404": 1}
    assert result.counts.ok == 150


async def test_records_hold_the_features_as_sent_and_the_answers_as_given(
    tmp_path: Path, model: ModelServer, http: aiohttp.ClientSession
):
    answers = await capture_events(tmp_path, model, http)
    records = lines(tmp_path)[: len(EVENTS)]
    assert [r["payload"] for r in records] == [e["payload"] for e in EVENTS]
    assert [r["inferenceId"] for r in records] == [e["id"] for e in EVENTS]
    assert [r["response"]["payload"]["predictions"][0] for r in records] == [
        prediction for _, prediction in answers
    ]
    first = records[0]
    assert (first["version"], first["track"], first["method"], first["path"]) == (
        "v1",
        "stable",
        "POST",
        PREDICT,
    )
    assert first["latencyMs"] > 0
    assert first["attributes"] == {"status": "200", "version": "v1", "track": "stable"}


def readable_lines(directory: Path) -> int:
    """Lines a reader gets from the gzip file being written, up to its last flush."""
    count = 0
    with gzip.open(one_file(directory, "*.jsonl.gz.part")) as reader:
        try:
            for _ in reader:
                count += 1
        except EOFError:
            pass  # the stream is not finished yet: that is expected
    return count


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


async def test_a_gzip_file_is_readable_while_it_is_written(
    tmp_path: Path, model: ModelServer, http: aiohttp.ClientSession
):
    async with start_proxy(tmp_path, model.url, gzip=True, flush_interval="20ms") as proxy:
        for event in EVENTS[:5]:
            await call(http, proxy.url + PREDICT, payload=event["payload"])
        await async_poll_until(
            lambda: readable_lines(tmp_path) == 5,
            timeout=10,
            message="five lines readable",
            ignore=(ValueError,),  # no file yet
        )
    (name,) = names(tmp_path)
    assert name.endswith(".jsonl.gz")
    with gzip.open(tmp_path / name) as done:
        assert len(done.readlines()) == 5
