"""The Prometheus provider against stand-in HTTP servers.

A real Prometheus cannot be made to demand a token, to sit behind a proxy that answers
with an error page, or to hang; a small local server can. Each test sets the answer the
server gives and reads back the requests it received.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from modelrollout.core.api.modeldeployment import MetricProvider as ProviderSpec
from modelrollout.services.providers import MetricQueryError, PrometheusProvider, make_provider


def vector(*values: str) -> bytes:
    samples = [{"metric": {"i": str(n)}, "value": [1.5, v]} for n, v in enumerate(values)]
    body = {"status": "success", "data": {"resultType": "vector", "result": samples}}
    return json.dumps(body).encode()


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    authorization: str | None


@dataclass
class StandIn:
    """What the server answers (status, content type, body) and what it received."""

    url: str
    status: int = 200
    content_type: str = "application/json"
    body: bytes = field(default_factory=lambda: vector("0.5"))
    received: list[Received] = field(default_factory=list)


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    state = StandIn(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            state.received.append(
                Received(parts.path, parse_qs(parts.query), self.headers.get("Authorization"))
            )
            self.send_response(state.status)
            self.send_header("Content-Type", state.content_type)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_the_bearer_token_and_the_timeout_are_sent(stand_in: StandIn) -> None:
    spec = ProviderSpec(address=f"{stand_in.url}/prometheus/", timeout="2500ms")
    provider = make_provider(spec, bearer_token="s3cret")
    assert provider.query("up") == 0.5
    [request] = stand_in.received
    assert request.path == "/prometheus/api/v1/query"
    assert request.query == {"query": ["up"], "timeout": ["2.5"]}
    assert request.authorization == "Bearer s3cret"


def test_no_token_no_authorization_header(stand_in: StandIn) -> None:
    provider = make_provider(ProviderSpec(address=stand_in.url), bearer_token=None)
    assert provider.is_online() is False  # the stand-in answers 0.5 to vector(1)
    [request] = stand_in.received
    assert request.authorization is None
    assert request.query["query"] == ["vector(1)"]


@pytest.mark.parametrize(
    ("status", "content_type", "body", "expected"),
    [
        (
            401,
            "text/plain",
            b"Unauthorized\n",
            "Prometheus at {url} answered HTTP 401: Unauthorized",
        ),
        (
            503,
            "text/html",
            b"<html>\n  <body>upstream   unavailable</body>\n</html>",
            "Prometheus at {url} answered HTTP 503: <html> <body>upstream unavailable</body> "
            "</html>",
        ),
        (
            422,
            "application/json",
            b'{"status":"error","errorType":"execution","error":"too many samples"}',
            "Prometheus at {url} answered HTTP 422: (execution) too many samples",
        ),
        (
            503,
            "application/json",
            b'{"status":"error","errorType":"timeout","error":"query timed out"}',
            "Prometheus at {url} answered HTTP 503: (timeout) query timed out",
        ),
        (502, "text/plain", b"", "Prometheus at {url} answered HTTP 502: an empty body"),
        (
            200,
            "text/html",
            b"<html>Prometheus UI</html>",
            "{url} did not answer like the Prometheus HTTP API",
        ),
        (
            200,
            "application/json",
            b'{"status":"success"}',
            "{url} did not answer like the Prometheus HTTP API",
        ),
    ],
)
def test_http_errors_are_readable(
    stand_in: StandIn, status: int, content_type: str, body: bytes, expected: str
) -> None:
    stand_in.status, stand_in.content_type, stand_in.body = status, content_type, body
    provider = PrometheusProvider(stand_in.url, timeout=5.0)
    with pytest.raises(MetricQueryError) as caught:
        provider.query("up")
    assert str(caught.value).startswith(expected.format(url=stand_in.url))
    assert len(stand_in.received) == 1  # no retries: the SLO's error limit decides
    assert provider.is_online() is False


def test_a_long_error_page_is_cut(stand_in: StandIn) -> None:
    stand_in.status, stand_in.content_type, stand_in.body = 500, "text/plain", b"x" * 5000
    with pytest.raises(MetricQueryError) as caught:
        PrometheusProvider(stand_in.url, timeout=5.0).query("up")
    assert str(caught.value).endswith("x" * 300)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    ("values", "expected"),
    [(("0.25",), 0.25), (("NaN",), None), (("+Inf",), float("inf")), ((), None)],
)
def test_sample_values(stand_in: StandIn, values: tuple[str, ...], expected: float | None) -> None:
    stand_in.body = vector(*values)
    assert PrometheusProvider(stand_in.url, timeout=5.0).query("x") == expected


def test_many_series_are_counted_and_a_few_shown(stand_in: StandIn) -> None:
    stand_in.body = vector(*["1"] * 7)
    with pytest.raises(MetricQueryError) as caught:
        PrometheusProvider(stand_in.url, timeout=5.0).query("x")
    assert str(caught.value).startswith(
        'the query returned 7 series, not one ({i="0"}, {i="1"}, {i="2"}, ...)'
    )


def test_a_query_that_takes_too_long_times_out(silent_port: int) -> None:
    provider = make_provider(
        ProviderSpec(address=f"http://127.0.0.1:{silent_port}", timeout="200ms"),
        bearer_token=None,
    )
    with pytest.raises(MetricQueryError) as caught:
        provider.query("up")
    assert str(caught.value) == (
        f"Prometheus at http://127.0.0.1:{silent_port} did not answer within 0.2s"
    )
    assert provider.is_online() is False
