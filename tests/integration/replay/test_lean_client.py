"""The lean HTTP/1.1 client of the replay, against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelrollout.services.replay.transport import (
    LeanTransport,
    clock,
    make_transport,
    resolve_client,
)
from support.imports import hide_module
from support.modelservers import ModelServer
from support.replaying import replay_cli
from support.serving import QuietHandler, serving

Answer = tuple[float, int, bytes, str | None, str]


class _Recorder(QuietHandler):
    """Answers every POST by echoing what it saw, in the framing the path asks for."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    seen: list[dict[str, object]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        seen = {
            "path": self.path,
            "body": body.decode(),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "port": self.client_address[1],
        }
        type(self).seen.append(seen)
        payload = json.dumps({"predictions": [0.25], "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.path.startswith("/chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = len(payload) // 2
            for part in (payload[:half], payload[half:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/gzip"):
            payload = gzip.compress(payload)
            self.send_header("Content-Encoding", "gzip")
        if self.path.startswith("/brotli"):
            self.send_header("Content-Encoding", "br")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    with serving(_Recorder) as address:
        yield f"http://{address}"


def _send_all(origin: str, requests: list[tuple[str, str, bytes, dict[str, str]]]) -> list[Answer]:
    async def scenario() -> list[Answer]:
        transport = LeanTransport(origin, timeout=5.0)
        answers: list[Answer] = []
        try:
            for method, url, body, headers in requests:
                done: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
                transport.start(
                    method, url, body, headers, lambda *answer, done=done: done.set_result(answer)
                )
                answers.append(await asyncio.wait_for(done, 10))
        finally:
            await transport.close()
        return answers

    return asyncio.run(scenario())


def test_requests_go_out_as_given_on_one_kept_alive_connection(recorder: str) -> None:
    before = clock()
    answers = _send_all(
        recorder,
        [
            ("POST", f"{recorder}/v1/models/m:predict", b'{"a": 1}', {"X-Trace": "t1"}),
            ("POST", f"{recorder}/v1/models/m:predict?x=1", b'{"a": 2}', {"X-Trace": "t2"}),
        ],
    )
    assert [(status, kind) for _, status, _, kind, _ in answers] == [(200, None), (200, None)]
    assert [json.loads(body)["path"] for _, _, body, _, _ in answers] == [
        "/v1/models/m:predict",
        "/v1/models/m:predict?x=1",
    ]
    assert all(before <= sent_at <= clock() for sent_at, *_ in answers)
    first, second = _Recorder.seen
    assert (first["body"], second["body"]) == ('{"a": 1}', '{"a": 2}')
    headers = first["headers"]
    assert isinstance(headers, dict)
    assert headers["x-trace"] == "t1"
    assert headers["user-agent"] == "modelrollout-replay"
    assert headers["host"] == recorder.removeprefix("http://")
    assert "accept-encoding" not in headers
    assert first["port"] == second["port"]  # the same connection, kept alive


def test_headers_given_replace_the_defaults(recorder: str) -> None:
    ((_, status, _, _, _),) = _send_all(
        recorder,
        [("POST", f"{recorder}/a", b"{}", {"user-agent": "probe/1", "Host": "model.example"})],
    )
    assert status == 200
    (seen,) = _Recorder.seen
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert (headers["user-agent"], headers["host"]) == ("probe/1", "model.example")


def test_chunked_and_compressed_answers_are_read_whole(recorder: str) -> None:
    answers = _send_all(
        recorder,
        [
            ("POST", f"{recorder}/chunked", b"{}", {}),
            ("POST", f"{recorder}/gzip", b"{}", {}),
            ("POST", f"{recorder}/brotli", b"{}", {}),
        ],
    )
    chunked, gzipped, brotli = answers
    assert json.loads(chunked[2]) == {"predictions": [0.25], "path": "/chunked"}
    assert json.loads(gzipped[2]) == {"predictions": [0.25], "path": "/gzip"}
    assert brotli[1:4] == (0, b"", "invalid_response")
    assert "br" in brotli[4]


def test_a_header_that_cannot_be_sent_is_an_error_not_a_crash(recorder: str) -> None:
    answers = _send_all(
        recorder,
        [
            ("POST", f"{recorder}/a", b"{}", {"X-Bad": "one\r\nInjected: yes"}),
            ("POST", f"{recorder}/b", b"{}", {"Bad Name": "x"}),
            ("POST", f"{recorder}/c", b"{}", {}),
        ],
    )
    assert [(status, kind) for _, status, _, kind, _ in answers] == [
        (0, "connection"),
        (0, "connection"),
        (200, None),
    ]
    assert [seen["path"] for seen in _Recorder.seen] == ["/c"]


def test_nothing_listening_is_a_connection_error(unused_tcp_port: int) -> None:
    origin = f"http://127.0.0.1:{unused_tcp_port}"
    ((_, status, body, kind, detail),) = _send_all(origin, [("POST", f"{origin}/x", b"{}", {})])
    assert (status, body, kind) == (0, b"", "connection")
    assert detail


def test_auto_picks_lean_only_when_every_endpoint_is_plain_http() -> None:
    assert resolve_client("auto", ["http://a", "http://b"]) == "lean"
    assert resolve_client("auto", ["http://a", "https://b"]) == "aiohttp"
    assert resolve_client("httpx", ["http://a"]) == "httpx"
    assert resolve_client("lean", ["https://a"]) == "lean"

    async def names() -> list[str]:
        made = [make_transport(c, "http://127.0.0.1:1", 4, 1.0) for c in ("lean", "aiohttp")]
        for transport in made:
            await transport.close()
        return [t.name for t in made]

    assert asyncio.run(names()) == ["lean", "aiohttp"]


@pytest.mark.parametrize(
    ("client", "event_loop"), [("auto", "asyncio"), ("lean", "uvloop"), ("aiohttp", "uvloop")]
)
def test_the_result_says_which_client_and_event_loop_sent(
    tmp_path: Path, servers: dict[str, ModelServer], client: str, event_loop: str
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"payload": {"instances": [[1, 2, 3, 4]]}}\n' * 20)
    code, result = replay_cli(
        tmp_path,
        *("--events", str(events), "--target", servers["v2"].predict, "--rate", "100"),
        *("--client", client, "--event-loop", event_loop, "--prediction-path", "predictions[0]"),
    )
    assert code == 0
    assert result is not None
    assert (result.client, result.event_loop) == (
        "lean" if client == "auto" else client,
        event_loop,
    )
    assert (result.counts.sent, result.counts.ok) == (20, 20)
    assert result.send_lag_ms.p50 is not None
    assert result.send_lag_ms.p50 < 50


def test_uvloop_asked_for_but_missing_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hide_module(monkeypatch, "uvloop")
    events = tmp_path / "events.jsonl"
    events.write_text('{"payload": {}}\n')
    code, _ = replay_cli(
        tmp_path,
        "--events",
        str(events),
        "--target",
        "http://127.0.0.1:1/",
        "--event-loop",
        "uvloop",
    )
    assert code == 2
    assert "--event-loop: uvloop is not installed" in capsys.readouterr().err
