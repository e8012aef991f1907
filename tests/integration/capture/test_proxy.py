"""The proxy answers exactly as the model does, and carries the inference id both ways."""

from __future__ import annotations

import gzip
import socket
import uuid
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict

from support.capture import PREDICT, EchoUpstream, all_text, call, lines, start_proxy
from support.modelservers import ModelServer

IGNORED = {"date", "x-inference-id"}

REQUESTS = [
    ("POST", PREDICT, b'{"instances": [[0.3, -1.2, 0.8, 0.1], [1, 2, 3, 4]]}', "application/json"),
    ("POST", PREDICT, b'{"instances": [1, 2, 3, 4]}', None),
    ("POST", PREDICT, b"not json", "application/json"),
    ("POST", PREDICT, b'{"instances": [[1, 2]]}', "application/json"),
    ("POST", "/v1/models/other:predict", b'{"instances": [[1, 2, 3, 4]]}', "application/json"),
    ("GET", "/v1/models/model", b"", None),
    ("GET", "/healthz", b"", None),
    ("GET", "/nowhere?x=1&y=%20", b"", None),
    ("DELETE", "/v1/models/model", b"", None),
    ("HEAD", "/v1/models/model", b"", None),
]
STATUSES = [200, 200, 400, 400, 404, 200, 200, 404, 405, 200]


def _comparable(headers: CIMultiDict[str]) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in headers.items() if k.lower() not in IGNORED)


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "full"])
async def test_answers_are_unchanged(
    tmp_path: Path, model: ModelServer, http: aiohttp.ClientSession, lean: bool
):
    async with start_proxy(tmp_path, model.url, lean=lean) as proxy:
        for method, path, body, content_type in REQUESTS:
            headers = {"Content-Type": content_type} if content_type else {}
            direct = await call(http, model.url + path, method=method, body=body, headers=headers)
            through = await call(http, proxy.url + path, method=method, body=body, headers=headers)
            assert through[0] == direct[0], (method, path)
            assert through[2] == direct[2], path
            assert _comparable(through[1]) == _comparable(direct[1]), path
    recorded = [(r["method"], r["path"], r["response"]["status"]) for r in lines(tmp_path)]
    assert recorded == [
        (method, path, status)
        for (method, path, _, _), status in zip(REQUESTS, STATUSES, strict=True)
        if method != "HEAD"  # answered, but not recorded: a replay does not send HEAD
    ]


async def test_a_client_inference_id_goes_to_the_model_and_back(
    tmp_path: Path, echo: EchoUpstream, http: aiohttp.ClientSession
):
    async with start_proxy(tmp_path, echo.url) as proxy:
        status, headers, _ = await call(
            http, proxy.url + PREDICT, payload={"x": 1}, headers={"X-Inference-Id": "order-17"}
        )
    assert status == 200
    assert headers["X-Inference-Id"] == "order-17"
    assert echo.requests[0][2].getall("X-Inference-Id") == ["order-17"]
    assert [r["inferenceId"] for r in lines(tmp_path)] == ["order-17"]


async def test_without_an_id_one_is_generated_sent_returned_and_recorded(
    tmp_path: Path, echo: EchoUpstream, http: aiohttp.ClientSession
):
    async with start_proxy(tmp_path, echo.url) as proxy:
        returned = [
            (await call(http, proxy.url + PREDICT, payload={"i": i}))[1]["X-Inference-Id"]
            for i in range(5)
        ]
    assert len(set(returned)) == 5
    assert all(uuid.UUID(value).version == 4 for value in returned)
    assert [request[2]["X-Inference-Id"] for request in echo.requests] == returned
    assert [r["inferenceId"] for r in lines(tmp_path)] == returned


@pytest.mark.parametrize("bad", ["", "x" * 129, "two words"])
async def test_an_unusable_client_id_is_replaced(
    tmp_path: Path, echo: EchoUpstream, http: aiohttp.ClientSession, bad: str
):
    async with start_proxy(tmp_path, echo.url) as proxy:
        _, headers, _ = await call(
            http, proxy.url + PREDICT, payload={}, headers={"X-Inference-Id": bad}
        )
    assert headers["X-Inference-Id"] != bad
    assert uuid.UUID(headers["X-Inference-Id"]).version == 4
    assert echo.requests[0][2]["X-Inference-Id"] == headers["X-Inference-Id"]


async def test_the_id_header_can_be_renamed(
    tmp_path: Path, echo: EchoUpstream, http: aiohttp.ClientSession
):
    async with start_proxy(tmp_path, echo.url, id_header="X-Request-Id") as proxy:
        _, headers, _ = await call(
            http, proxy.url + PREDICT, payload={}, headers={"X-Request-Id": "r-1"}
        )
    assert headers["X-Request-Id"] == "r-1"
    assert "X-Inference-Id" not in headers
    assert lines(tmp_path)[0]["inferenceId"] == "r-1"


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "full"])
async def test_what_the_model_receives(tmp_path: Path, echo: EchoUpstream, lean: bool):
    bare = ("Accept", "Accept-Encoding", "User-Agent")
    async with (
        aiohttp.ClientSession(skip_auto_headers=bare) as session,
        start_proxy(tmp_path, echo.url, lean=lean) as proxy,
    ):
        await call(
            session,
            proxy.url + "/v1/models/m:predict?a=1&b=%2F",
            body=b"0.1,0.2",
            headers={
                "Content-Type": "text/csv",
                "Host": "fraud.ml.svc",
                "X-Tenant": "acme",
                "Authorization": "Bearer t",
                "Connection": "keep-alive, X-Hop",
                "X-Hop": "dropped",
                "Keep-Alive": "timeout=5",
            },
        )
    method, path, headers, body = echo.requests[0]
    assert (method, path, body) == ("POST", "/v1/models/m:predict?a=1&b=%2F", b"0.1,0.2")
    assert headers["Host"] == "fraud.ml.svc"
    assert headers["Content-Type"] == "text/csv"
    assert headers["X-Tenant"] == "acme"
    assert headers["Authorization"] == "Bearer t"
    assert headers["Content-Length"] == "7"
    for absent in ("X-Hop", "Keep-Alive", *bare):
        assert absent not in headers, absent


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "full"])
async def test_what_the_client_receives(
    tmp_path: Path, echo: EchoUpstream, http: aiohttp.ClientSession, lean: bool
):
    compressed = gzip.compress(b'{"predictions": [0.25]}')
    echo.status = 201
    echo.body = compressed
    echo.headers = [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-Model", "fraud"),
        ("Keep-Alive", "timeout=99"),
    ]
    async with start_proxy(tmp_path, echo.url, lean=lean) as proxy:
        status, headers, body = await call(http, proxy.url + PREDICT, payload={})
    assert (status, body) == (201, compressed)
    assert headers["Content-Encoding"] == "gzip"
    assert headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert headers["X-Model"] == "fraud"
    assert headers["Content-Length"] == str(len(compressed))
    assert "Keep-Alive" not in headers
    (record,) = lines(tmp_path)
    assert record["response"]["status"] == 201
    assert "bodyBase64" in record["response"]


async def test_recorded_headers_are_only_those_asked_for(
    tmp_path: Path, model: ModelServer, http: aiohttp.ClientSession
):
    async with start_proxy(tmp_path, model.url, record_headers=["X-Tenant"]) as proxy:
        await call(
            http,
            proxy.url + PREDICT,
            payload={"instances": [[1, 2, 3, 4]]},
            headers={"X-Tenant": "acme", "Authorization": "Bearer secret"},
        )
    (record,) = lines(tmp_path)
    assert record["headers"] == {"X-Tenant": "acme"}
    assert "secret" not in all_text(tmp_path)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_model_is_a_502_counted_and_recorded(
    tmp_path: Path, http: aiohttp.ClientSession
):
    async with start_proxy(tmp_path, f"http://127.0.0.1:{_closed_port()}") as proxy:
        status, headers, body = await call(http, proxy.url + PREDICT, payload={"x": 1})
        errors = proxy.metrics.value("modelrollout_capture_proxy_errors_total", type="connection")
    assert status == 502
    assert headers["Content-Type"] == "application/json"
    assert b"capture proxy: connection" in body
    assert errors == 1
    (record,) = lines(tmp_path)
    assert record["response"]["status"] == 502
    assert record["response"]["error"] == "connection"
    assert record["payload"] == {"x": 1}


async def test_a_model_slower_than_the_timeout_is_a_504(
    tmp_path: Path, models: dict[str, ModelServer], http: aiohttp.ClientSession
):
    async with start_proxy(tmp_path, models["slow"].url, upstream_timeout=0.05) as proxy:
        status, _, body = await call(
            http, proxy.url + PREDICT, payload={"instances": [[1, 2, 3, 4]]}
        )
        errors = proxy.metrics.value("modelrollout_capture_proxy_errors_total", type="timeout")
    assert status == 504
    assert b"no answer within 0.05s" in body
    assert errors == 1
    assert lines(tmp_path)[0]["response"]["error"] == "timeout"


async def test_a_body_over_the_limit_is_refused_with_413(
    tmp_path: Path, echo: EchoUpstream, http: aiohttp.ClientSession
):
    async with start_proxy(tmp_path, echo.url, max_body_bytes="1k") as proxy:
        status, headers, _ = await call(http, proxy.url + PREDICT, body=b"x" * 2000)
        ok, _, _ = await call(http, proxy.url + PREDICT, body=b"x" * 1000)
        value = proxy.metrics.value
        refused = value("modelrollout_capture_proxy_errors_total", type="request_too_large")
        skipped = value("modelrollout_capture_records_skipped_total", reason="body_too_large")
    assert (status, ok) == (413, 200)
    assert "X-Inference-Id" in headers
    assert (refused, skipped) == (1, 1)
    assert len(echo.requests) == 1


async def test_connections_are_kept_alive_on_both_sides(tmp_path: Path, echo: EchoUpstream):
    created: list[object] = []

    async def on_create(*_: object) -> None:
        created.append(None)

    tracing = aiohttp.TraceConfig()
    tracing.on_connection_create_end.append(on_create)
    async with (
        aiohttp.ClientSession(trace_configs=[tracing]) as session,
        start_proxy(tmp_path, echo.url) as proxy,
    ):
        for i in range(10):
            async with session.post(proxy.url + PREDICT, json={"i": i}) as response:
                assert response.status == 200
                await response.read()
    assert len(created) == 1
    assert len(echo.peers) == 10
    assert len(set(echo.peers)) == 1


async def test_cookies_set_by_the_model_are_not_sent_with_other_requests(
    tmp_path: Path, echo: EchoUpstream
):
    echo.headers = [("Content-Type", "application/json"), ("Set-Cookie", "session=alice")]
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        start_proxy(tmp_path, echo.url) as proxy,
    ):
        for _ in range(2):
            _, headers, _ = await call(session, proxy.url + PREDICT, payload={})
            assert headers["Set-Cookie"] == "session=alice"
    assert [request[2].get("Cookie") for request in echo.requests] == [None, None]
