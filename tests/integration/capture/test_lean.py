"""The lean path over loopback, byte by byte: keep-alive, pipelining, odd answers from the
model, errors, disconnects, and the connections it hands to the full path."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
import uvloop

from support.capture import (
    PREDICT,
    EchoUpstream,
    RawUpstream,
    call,
    lines,
    raw_exchange,
    read_answer,
    start_proxy,
)
from support.modelservers import ModelServer

BODY = b'{"instances": [[0.3, -1.2, 0.8, 0.1]]}'


def _post(path: str = PREDICT, body: bytes = BODY, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: model", "Content-Type: application/json", *extra]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _ok(body: bytes, *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", "Content-Type: application/json", *extra]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def test_pipelined_requests_are_answered_in_order_on_one_connection(
    tmp_path: Path, echo: EchoUpstream
):
    echo.body = None  # answer with the request's body
    bodies = [json.dumps({"i": i}).encode() for i in range(5)]
    async with start_proxy(tmp_path, echo.url) as proxy:
        answers, rest = await raw_exchange(
            proxy.url, b"".join(_post(body=body) for body in bodies), answers=5
        )
    assert [answer.body for answer in answers] == bodies
    assert all(answer.status == 200 for answer in answers)
    assert rest == b"(open)"  # kept alive
    ids = [answer.get("X-Inference-Id") for answer in answers]
    assert len(set(ids)) == 5
    assert [record["inferenceId"] for record in lines(tmp_path)] == ids
    assert [record["payload"] for record in lines(tmp_path)] == [{"i": i} for i in range(5)]
    assert len(set(echo.peers)) == 1


async def test_a_request_split_into_many_writes_is_read_whole(tmp_path: Path, echo: EchoUpstream):
    echo.body = None
    request = _post(body=b'{"x": "' + b"y" * 5000 + b'"}')
    async with start_proxy(tmp_path, echo.url) as proxy:
        host, _, port = proxy.url.removeprefix("http://").partition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        for i in range(0, len(request), 777):
            writer.write(request[i : i + 777])
            await writer.drain()
            await asyncio.sleep(0.001)
        answer = await read_answer(reader)
        writer.close()
    assert answer.status == 200
    assert answer.body == request.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "full"])
async def test_large_bodies_both_ways(tmp_path: Path, echo: EchoUpstream, lean: bool):
    echo.body = None
    big = json.dumps({"instances": [[i * 0.5 for i in range(4)]] * 45_000}).encode()
    assert 800_000 < len(big) < 1 << 20  # aiohttp warns over 1 MiB of raw bytes
    async with (
        aiohttp.ClientSession() as session,
        start_proxy(tmp_path, echo.url, lean=lean, max_body_bytes="8Mi") as proxy,
    ):
        status, headers, body = await call(
            session, proxy.url + PREDICT, body=big, headers={"Content-Type": "application/json"}
        )
    assert (status, body == big) == (200, True)
    assert headers["Content-Length"] == str(len(big))
    (record,) = lines(tmp_path)
    assert record["payload"]["instances"][0] == [0.0, 0.5, 1.0, 1.5]


async def test_a_chunked_answer_is_returned_with_a_length(tmp_path: Path):
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b'\r\na\r\n{"predicti\r\n10\r\nons": [0.25]}   \r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    async with RawUpstream(chunked) as model, start_proxy(tmp_path, model.url) as proxy:
        answers, rest = await raw_exchange(proxy.url, _post() + _post(), answers=2)
    for answer in answers:
        assert answer.status == 200
        assert answer.body == b'{"predictions": [0.25]}   '
        assert answer.get("Content-Length") == "26"
        assert answer.get("Transfer-Encoding") is None
    assert rest == b"(open)"
    assert model.connections == 1  # the model's connection was reused after a chunked answer
    assert [r["response"]["payload"] for r in lines(tmp_path)] == [{"predictions": [0.25]}] * 2


async def test_an_answer_until_close_is_read_to_the_end(tmp_path: Path):
    until_close = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    async with (
        RawUpstream(until_close, close_after=True) as model,
        start_proxy(tmp_path, model.url) as proxy,
    ):
        answers, _ = await raw_exchange(proxy.url, _post() + _post(), answers=2)
    assert [(a.status, a.body) for a in answers] == [(200, b"all of it")] * 2
    assert model.connections == 2


async def test_interim_answers_are_left_out(tmp_path: Path):
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + _ok(b"{}")
    async with RawUpstream(early) as model, start_proxy(tmp_path, model.url) as proxy:
        answers, _ = await raw_exchange(proxy.url, _post(), answers=1)
    assert (answers[0].status, answers[0].body) == (200, b"{}")
    assert answers[0].get("Link") is None


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "before the end of its answer"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "is not HTTP/1.x"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "is not a number"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "is not hexadecimal"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"),
    ],
)
async def test_an_unreadable_answer_is_a_502_counted_and_recorded(
    tmp_path: Path, answer: bytes, words: str
):
    async with (
        RawUpstream(answer, close_after=True) as model,
        start_proxy(tmp_path, model.url) as proxy,
    ):
        answers, rest = await raw_exchange(proxy.url, _post() + _post(), answers=2)
        errors = proxy.metrics.value(
            "modelrollout_capture_proxy_errors_total", type="invalid_response"
        )
    for found in answers:
        assert found.status == 502
        assert found.get("Content-Type") == "application/json"
        assert found.get("X-Inference-Id")
        error = json.loads(found.body)["error"]
        assert error.startswith("capture proxy: invalid_response: ")
        assert words in error
    assert rest == b"(open)"  # the client's connection is not the model's fault
    assert errors == 2
    assert [r["response"]["error"] for r in lines(tmp_path)] == ["invalid_response"] * 2


async def test_a_model_that_hangs_up_without_a_word_is_a_502(tmp_path: Path):
    async with RawUpstream(None) as model, start_proxy(tmp_path, model.url) as proxy:
        answers, _ = await raw_exchange(proxy.url, _post(), answers=1)
        errors = proxy.metrics.value("modelrollout_capture_proxy_errors_total", type="connection")
    assert answers[0].status == 502
    assert b"capture proxy: connection" in answers[0].body
    assert errors == 1


async def test_a_client_that_leaves_early_is_still_recorded_and_the_proxy_goes_on(
    tmp_path: Path, echo: EchoUpstream, http: aiohttp.ClientSession
):
    echo.hold = True
    async with start_proxy(tmp_path, echo.url) as proxy:
        host, _, port = proxy.url.removeprefix("http://").partition(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(_post(body=b'{"gone": true}'))
        await writer.drain()
        await asyncio.wait_for(echo.arrived.wait(), 5)
        writer.close()
        await asyncio.sleep(0.05)
        echo.hold = False
        echo.release.set()
        status, _, _ = await call(http, proxy.url + PREDICT, payload={"next": True})
    assert status == 200
    assert [r["payload"] for r in lines(tmp_path)] == [{"gone": True}, {"next": True}]


async def test_header_names_in_any_case(tmp_path: Path, echo: EchoUpstream):
    request = (
        b"POST /p HTTP/1.1\r\nhost: model\r\nx-inference-id: lower-17\r\n"
        b"content-type: application/json\r\nCONTENT-LENGTH: 2\r\n\r\n{}"
    )
    async with start_proxy(tmp_path, echo.url) as proxy:
        answers, _ = await raw_exchange(proxy.url, request, answers=1)
    assert answers[0].getall("X-Inference-Id") == ["lower-17"]
    _, _, headers, body = echo.requests[0]
    assert headers.getall("X-Inference-Id") == ["lower-17"]
    assert body == b"{}"
    assert lines(tmp_path)[0]["inferenceId"] == "lower-17"


async def test_an_http_1_0_client_gets_its_answer_then_the_connection_closes(
    tmp_path: Path, model: ModelServer
):
    async with start_proxy(tmp_path, model.url) as proxy:
        answers, rest = await raw_exchange(proxy.url, b"GET /healthz HTTP/1.0\r\n\r\n", answers=1)
    assert answers[0].status == 200
    assert answers[0].get("Connection") == "close"
    assert rest == b""


@pytest.mark.parametrize(
    ("request_bytes", "status", "words"),
    [
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400, "has no colon"),
        (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "several"),
        (b"GET / HTTP/2.0\r\n\r\n", 505, "not supported"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000, 431, "longer than"),
    ],
)
async def test_a_malformed_request_is_refused_saying_why_and_the_connection_closes(
    tmp_path: Path, echo: EchoUpstream, request_bytes: bytes, status: int, words: str
):
    async with start_proxy(tmp_path, echo.url) as proxy:
        answers, rest = await raw_exchange(proxy.url, request_bytes, answers=1)
        skipped = proxy.metrics.value(
            "modelrollout_capture_records_skipped_total", reason="malformed_request"
        )
    assert answers[0].status == status
    assert words in json.loads(answers[0].body)["error"]
    assert answers[0].get("Connection") == "close"
    assert answers[0].get("X-Inference-Id")
    assert rest == b""
    assert skipped == 1
    assert echo.requests == []


async def test_a_chunked_upload_goes_to_the_full_path_and_is_recorded(
    tmp_path: Path, echo: EchoUpstream
):
    echo.body = None
    request = (
        b"POST /v1/models/model:predict HTTP/1.1\r\nHost: model\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'6\r\n{"a": \r\n2\r\n1}\r\n0\r\n\r\n'
    )
    async with start_proxy(tmp_path, echo.url) as proxy:
        # A lean request first, then the chunked one on the same connection.
        answers, rest = await raw_exchange(proxy.url, _post(body=b"[1]") + request, answers=2)
        handed = proxy.metrics.value(
            "modelrollout_capture_full_path_connections_total", reason="transfer-encoding"
        )
    assert [(a.status, a.body) for a in answers] == [(200, b"[1]"), (200, b'{"a": 1}')]
    assert rest == b"(open)"
    assert handed == 1
    assert [r["payload"] for r in lines(tmp_path)] == [[1], {"a": 1}]


async def test_a_client_that_expects_100_continue_goes_to_the_full_path(
    tmp_path: Path, echo: EchoUpstream
):
    echo.body = None
    async with (
        aiohttp.ClientSession() as session,
        start_proxy(tmp_path, echo.url) as proxy,
    ):
        async with session.post(proxy.url + PREDICT, data=b'{"e": 1}', expect100=True) as answer:
            body = await answer.read()
        handed = proxy.metrics.value(
            "modelrollout_capture_full_path_connections_total", reason="expect"
        )
    assert (answer.status, body) == (200, b'{"e": 1}')
    assert handed == 1
    assert "Expect" not in echo.requests[0][2]


async def test_a_body_over_the_limit_is_refused_and_the_connection_goes_on(
    tmp_path: Path, echo: EchoUpstream
):
    async with start_proxy(tmp_path, echo.url, max_body_bytes="1k") as proxy:
        answers, rest = await raw_exchange(
            proxy.url, _post(body=b"x" * 3000) + _post(body=b"{}"), answers=2
        )
    assert [a.status for a in answers] == [413, 200]
    assert "capture proxy: request_too_large" in json.loads(answers[0].body)["error"]
    assert rest == b"(open)"
    assert len(echo.requests) == 1


def test_the_lean_path_under_uvloop(tmp_path: Path, models: dict[str, ModelServer]):
    """``--event-loop uvloop``: uvloop's transports are not asyncio's classes."""

    async def scenario() -> list[int]:
        echo_body = b'{"instances": [[1, 2, 3, 4]]}'
        chunked = b"POST /v1/models/model:predict HTTP/1.1\r\nHost: m\r\n"
        chunked += b"Transfer-Encoding: chunked\r\n\r\n"
        chunked += b"%x\r\n%s\r\n0\r\n\r\n" % (len(echo_body), echo_body)
        async with start_proxy(tmp_path, models["v1"].url) as proxy:
            answers, rest = await raw_exchange(
                proxy.url, _post(body=echo_body) * 3 + chunked + _post(body=echo_body), answers=5
            )
            assert rest == b"(open)"
        return [answer.status for answer in answers]

    assert uvloop.run(scenario()) == [200] * 5
    assert len(lines(tmp_path)) == 5


@pytest.mark.parametrize(("method", "status"), [("GET", 200), ("POST", 502)])
async def test_a_kept_alive_connection_found_closed_is_retried_only_when_idempotent(
    tmp_path: Path, method: str, status: int
):
    first = f"{method} /a HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\n\r\n".encode()
    again = first.replace(b"/a", b"/b")
    async with (
        RawUpstream(_ok(b"1"), None, _ok(b"3")) as model,
        start_proxy(tmp_path, model.url) as proxy,
    ):
        answers, _ = await raw_exchange(proxy.url, first + again, answers=2)
    assert [a.status for a in answers] == [200, status]
    assert model.connections == (2 if method == "GET" else 1)
