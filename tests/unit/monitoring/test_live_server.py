"""The sidecar's window endpoint and its labels follower."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from modelrollout.core.monitoring.live import LiveWindow
from modelrollout.core.replay.quality import QualityAccumulator, QualityState
from modelrollout.services.monitoring.live import LabelsFollower, window_routes


def event(score: float) -> dict:
    return {"payload": {"x": score * 10}, "response": {"predictions": [score]}}


def labels(*pairs: tuple[str, object]) -> str:
    return "\n".join(json.dumps({"inferenceId": i, "label": lab}) for i, lab in pairs) + "\n"


def test_each_label_is_joined_once_and_bad_lines_are_counted(tmp_path: Path):
    live = LiveWindow()
    live.record(1.0, event(0.9), "a")
    live.record(2.0, event(0.2), "b")
    follower = LabelsFollower(live, path=tmp_path / "labels.jsonl", clock=lambda: 3.0)
    assert follower.ingest(labels(("a", 1)) + "not json\n" + '{"label": 1}\n') == 1
    assert follower.ingest(labels(("a", 1), ("b", 1))) == 1  # "a" was joined already
    assert (follower.joined, follower.invalid) == (2, 2)
    quality = QualityAccumulator.from_state(
        QualityState.model_validate(live.answer(3.0, 60)["quality"])
    )
    assert (quality.labeled, quality.correct) == (2, 1)


def test_a_follower_needs_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        LabelsFollower(LiveWindow())


async def test_the_window_is_served_as_json(unused_tcp_port: int):
    live = LiveWindow()
    for second in range(30):
        live.record(float(second), event(0.5), None)
    app = web.Application()
    app.add_routes(window_routes(live, clock=lambda: 29.0))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{unused_tcp_port}") as client:
            ok = await client.get("/monitoring/window", params={"seconds": "60"})
            bad = await client.get("/monitoring/window", params={"seconds": "soon"})
    finally:
        await runner.cleanup()
    assert ok.status_code == 200
    assert ok.json()["events"] == 30
    assert ok.json()["profile"]["rows"] == 30
    assert bad.status_code == 400
    assert "seconds" in bad.text
