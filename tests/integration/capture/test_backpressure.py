"""Capture never holds a request back: a stalled writer costs records, counted, not requests.

The stalled disk is :class:`support.capture.GatedFiles`: every write waits for a gate the
test opens. Nothing here waits with a sleep; every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp

from modelrollout.core.capture.sampling import Sampler
from modelrollout.services.capture import RunningCapture
from support.capture import PREDICT, EchoUpstream, GatedFiles, call, lines, start_proxy
from support.modelservers import ModelServer
from support.wait import async_poll_until

INSTANCE = {"instances": [[0.3, -1.2, 0.8, 0.1]]}


def counted(proxy: RunningCapture, name: str, **labels: str) -> float:
    return proxy.metrics.value(f"modelrollout_capture_{name}_total", **labels)


async def test_a_full_queue_drops_records_and_every_request_still_succeeds(
    tmp_path: Path, model: ModelServer, http: aiohttp.ClientSession
):
    files = GatedFiles(tmp_path)
    async with start_proxy(tmp_path, model.url, files=files, queue_records=5) as proxy:
        status, _, _ = await call(http, proxy.url + PREDICT, payload=INSTANCE)
        assert status == 200
        # The writer now holds the first record and waits on the stalled disk.
        await async_poll_until(files.entered.is_set, timeout=10, message="the writer writes")
        statuses = [(await call(http, proxy.url + PREDICT, payload=INSTANCE))[0] for _ in range(29)]
        assert statuses == [200] * 29
        assert proxy.writer.queued_records == 5
        assert counted(proxy, "records_dropped", reason="queue_full") == 24
        assert counted(proxy, "requests", code="200") == 30
        files.gate.set()
        await async_poll_until(
            lambda: counted(proxy, "records_written") == 6,
            timeout=10,
            message="the queued records are written once the disk is back",
        )
    assert len(lines(tmp_path)) == 6


async def test_a_record_larger_than_the_queue_is_dropped_as_too_large(
    tmp_path: Path, echo: EchoUpstream, http: aiohttp.ClientSession
):
    async with start_proxy(tmp_path, echo.url, queue_bytes="2k") as proxy:
        status, _, _ = await call(http, proxy.url + PREDICT, body=b"x" * 4000)
        small, _, _ = await call(http, proxy.url + PREDICT, body=b"x" * 10)
        assert (status, small) == (200, 200)
        assert counted(proxy, "records_dropped", reason="too_large") == 1
    assert [r["body"] for r in lines(tmp_path)] == ["x" * 10]


async def test_sampling_keeps_the_ids_the_sampler_keeps(
    tmp_path: Path, echo: EchoUpstream, http: aiohttp.ClientSession
):
    sent = [f"req-{i}" for i in range(200)]
    async with start_proxy(tmp_path, echo.url, sample=0.3, seed=9) as proxy:
        for inference_id in sent:
            await call(
                http, proxy.url + PREDICT, payload={}, headers={"X-Inference-Id": inference_id}
            )
        sampled_out = counted(proxy, "records_sampled_out")
    expected = [i for i in sent if Sampler(0.3, seed=9).keep(i)]
    assert [r["inferenceId"] for r in lines(tmp_path)] == expected
    assert sampled_out == 200 - len(expected)
    assert 30 < len(expected) < 90


def kept_id(sampler: Sampler, stem: str) -> str:
    return next(f"{stem}{n}" for n in range(1000) if sampler.keep(f"{stem}{n}"))


async def test_every_request_is_accounted_for(
    tmp_path: Path, model: ModelServer, http: aiohttp.ClientSession
):
    sampler = Sampler(0.5)
    ids = [f"a{i}" for i in range(40)]
    kept = sum(sampler.keep(i) for i in ids)
    async with start_proxy(tmp_path, model.url, sample=0.5) as proxy:
        for inference_id in ids:
            headers = {"X-Inference-Id": inference_id}
            await call(http, proxy.url + PREDICT, payload=INSTANCE, headers=headers)
        head = {"X-Inference-Id": kept_id(sampler, "head")}
        await call(http, proxy.url + PREDICT, method="HEAD", headers=head)
        binary = {"X-Inference-Id": kept_id(sampler, "bin"), "Content-Type": "image/png"}
        await call(http, proxy.url + PREDICT, body=b"\x89PNG\xff\x00", headers=binary)
        get = {"X-Inference-Id": kept_id(sampler, "get")}
        await call(http, proxy.url + "/v1/models/model", method="GET", headers=get)
    total = proxy.metrics.total
    assert total("modelrollout_capture_requests_total") == 43
    assert counted(proxy, "records_written") == kept + 1
    assert counted(proxy, "records_skipped", reason="method") == 1
    assert counted(proxy, "records_skipped", reason="binary_body") == 1
    assert counted(proxy, "records_sampled_out") == 40 - kept
    assert total("modelrollout_capture_records_dropped_total") == 0
    assert len(lines(tmp_path)) == kept + 1


async def _refused(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:  # refused, or reset while the listening socket closes
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def test_stopping_answers_requests_in_flight_and_writes_them(
    tmp_path: Path, echo: EchoUpstream, http: aiohttp.ClientSession
):
    echo.hold = True
    async with contextlib.AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(start_proxy(tmp_path, echo.url))
        pending = asyncio.create_task(call(http, proxy.url + PREDICT, payload={"late": True}))
        await asyncio.wait_for(echo.arrived.wait(), timeout=10)
        stopping = asyncio.create_task(stack.aclose())
        await async_poll_until(
            lambda: _refused(proxy.url), timeout=10, message="the proxy stops listening"
        )
        assert not stopping.done()
        echo.release.set()
        status, headers, body = await asyncio.wait_for(pending, timeout=10)
        await asyncio.wait_for(stopping, timeout=10)
    assert (status, body) == (200, echo.body)
    (record,) = lines(tmp_path)
    assert record["payload"] == {"late": True}
    assert record["inferenceId"] == headers["X-Inference-Id"]
    assert [r["inferenceId"] for r in lines(tmp_path, "*.part")] == []


async def test_a_writer_that_cannot_finish_in_time_drops_the_rest_at_shutdown(
    tmp_path: Path, echo: EchoUpstream, http: aiohttp.ClientSession
):
    files = GatedFiles(tmp_path)
    async with start_proxy(tmp_path, echo.url, files=files, shutdown_timeout=0.2) as proxy:
        await call(http, proxy.url + PREDICT, payload={"n": 0})
        await async_poll_until(files.entered.is_set, timeout=10, message="the writer writes")
        for n in range(1, 5):
            await call(http, proxy.url + PREDICT, payload={"n": n})
    assert counted(proxy, "records_dropped", reason="shutdown") == 4
    files.gate.set()
    await async_poll_until(
        lambda: not proxy.writer.alive, timeout=10, message="the writer ends its last write"
    )
    assert [r["payload"] for r in lines(tmp_path)] == [{"n": 0}]
