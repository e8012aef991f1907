"""The capture record: one replay event per request, with the answer beside it."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from modelrollout.core.capture.record import (
    SKIP_BINARY_BODY,
    SKIP_METHOD,
    Exchange,
    RecordContext,
    RecordEncoder,
    Unrecordable,
    encode_record,
    format_timestamp,
    json_text,
)
from modelrollout.core.replay.events import parse_event, parse_timestamp

BASE = Exchange(
    inference_id="id-1",
    received_at=1764590400.123456,
    method="POST",
    path="/v1/models/fraud:predict?explain=0",
    request_body=b'{"instances": [[0.3, -1.2, 0.8, 0.1]]}',
    request_content_type="application/json",
    status=200,
    response_body=b'{"predictions":[0.71]}',
    response_content_type="application/json",
    latency_seconds=0.0032144,
)
CONTEXT = RecordContext(version="v2", track="candidate")


def record(exchange: Exchange = BASE, context: RecordContext = CONTEXT) -> dict[str, Any]:
    line = encode_record(exchange, context)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    document: dict[str, Any] = json.loads(line)
    return document


def test_the_whole_record():
    assert record() == {
        "timestamp": "2025-12-01T12:00:00.123456Z",
        "inferenceId": "id-1",
        "version": "v2",
        "track": "candidate",
        "method": "POST",
        "path": "/v1/models/fraud:predict?explain=0",
        "payload": {"instances": [[0.3, -1.2, 0.8, 0.1]]},
        "response": {"status": 200, "payload": {"predictions": [0.71]}},
        "latencyMs": 3.214,
        "attributes": {"status": "200", "version": "v2", "track": "candidate"},
    }


def test_a_json_payload_is_copied_byte_for_byte():
    line = encode_record(BASE, CONTEXT)
    assert b'"payload":{"instances": [[0.3, -1.2, 0.8, 0.1]]},' in line


# (request body, content type) -> the request members of the record
REQUEST_BODIES = [
    (b'{"a": 1}', "application/json", {"payload": {"a": 1}}),
    (b'{"a": 1}', "application/json; charset=utf-8", {"payload": {"a": 1}}),
    (b'{"a": 1}', None, {"payload": {"a": 1}}),
    (b'{"a": 1}', "application/vnd.api+json", {"payload": {"a": 1}}),
    (b"[1, 2]", "application/json", {"payload": [1, 2]}),
    (b'{\n  "a": [1,\n 2]\n}\n', "application/json", {"payload": {"a": [1, 2]}}),
    (b'{"a": 1}', "text/plain", {"body": '{"a": 1}', "contentType": "text/plain"}),
    (b"0.3,-1.2", "text/csv", {"body": "0.3,-1.2", "contentType": "text/csv"}),
    (b"not json", "application/json", {"body": "not json", "contentType": "application/json"}),
    (b"not json", None, {"body": "not json"}),
    (b'{"a": NaN}', "application/json", {"body": '{"a": NaN}', "contentType": "application/json"}),
    (
        b"\xef\xbb\xbf{}",
        "application/json",
        {"body": "\ufeff{}", "contentType": "application/json"},
    ),
    (b"", None, {"body": ""}),
    (b"", "application/json", {"body": "", "contentType": "application/json"}),
    ('{"q": "h\u00e9"}'.encode(), "application/json", {"payload": {"q": "h\u00e9"}}),
]


@pytest.mark.parametrize(("body", "content_type", "expected"), REQUEST_BODIES)
def test_request_bodies(body: bytes, content_type: str | None, expected: dict[str, Any]):
    exchange = replace(BASE, request_body=body, request_content_type=content_type)
    found = record(exchange)
    members = {k: found[k] for k in ("payload", "body", "contentType") if k in found}
    assert members == expected


# (response body, content type, error) -> the recorded response
RESPONSES = [
    (b'{"p": 1}', "application/json", None, {"status": 200, "payload": {"p": 1}}),
    (b"ok", "text/plain", None, {"status": 200, "body": "ok", "contentType": "text/plain"}),
    (b"", None, None, {"status": 200}),
    (
        b"\x89PNG\x00",
        "image/png",
        None,
        {
            "status": 200,
            "bodyBase64": base64.b64encode(b"\x89PNG\x00").decode(),
            "contentType": "image/png",
        },
    ),
    (
        b'{"error": "x"}',
        "application/json",
        "timeout",
        {"status": 200, "payload": {"error": "x"}, "error": "timeout"},
    ),
]


@pytest.mark.parametrize(("body", "content_type", "error", "expected"), RESPONSES)
def test_responses(body: bytes, content_type: str | None, error: str | None, expected: Any):
    exchange = replace(BASE, response_body=body, response_content_type=content_type, error=error)
    assert record(exchange)["response"] == expected


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"method": "HEAD"}, SKIP_METHOD),
        ({"method": "OPTIONS"}, SKIP_METHOD),
        ({"request_body": b"\xff\xfe\x00"}, SKIP_BINARY_BODY),
        ({"request_body": b"\x89PNG", "request_content_type": "image/png"}, SKIP_BINARY_BODY),
    ],
)
def test_requests_a_replay_cannot_send_are_refused(change: dict[str, Any], reason: str):
    with pytest.raises(Unrecordable) as caught:
        encode_record(replace(BASE, **change), CONTEXT)
    assert caught.value.reason == reason


def test_lower_case_methods_are_recorded_upper_case():
    assert record(replace(BASE, method="put"))["method"] == "PUT"


def test_without_version_and_track():
    found = record(context=RecordContext())
    assert "version" not in found
    assert "track" not in found
    assert found["attributes"] == {"status": "200"}


def test_recorded_headers_repeated_names_are_joined():
    exchange = replace(BASE, request_headers=(("X-Tenant", "a"), ("X-Tenant", "b"), ("X-Req", "1")))
    assert record(exchange)["headers"] == {"X-Tenant": "a, b", "X-Req": "1"}


def test_a_path_that_is_not_absolute_is_left_out():
    assert "path" not in record(replace(BASE, path="http://elsewhere/x"))


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000000Z"),
        (1764590400.5, "2025-12-01T12:00:00.500000Z"),
        (1764590400.000001, "2025-12-01T12:00:00.000001Z"),
    ],
)
def test_timestamps(epoch: float, text: str):
    assert format_timestamp(epoch) == text
    assert parse_timestamp(text) == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"a":1}', None, '{"a":1}'),
        (b' {"a":1} ', "application/json", '{"a":1}'),
        (b'{"a":\r\n1}', "application/json", '{"a":1}'),
        (b"", "application/json", None),
        (b"1e999", "application/json", "1e999"),
        (b"Infinity", "application/json", None),
        (b'{"a":1}', "text/plain", None),
    ],
)
def test_json_text(body: bytes, content_type: str | None, expected: str | None):
    assert json_text(body, content_type) == expected


# Every recordable exchange is a replay event that sends the same request again.
REPLAYABLE = [
    BASE,
    replace(BASE, request_body=b"0.3,-1.2", request_content_type="text/csv"),
    replace(BASE, request_body=b"plain", request_content_type=None),
    replace(BASE, method="GET", request_body=b"", request_content_type=None),
    replace(BASE, method="delete", request_body=b"", request_content_type="application/json"),
    replace(BASE, request_body=b'{\n "a": 1\n}', status=502, error="connection"),
    replace(BASE, request_headers=(("X-Tenant", "acme"),)),
    replace(BASE, response_body=b"\x00\x01", response_content_type=None),
]


@pytest.mark.parametrize("exchange", REPLAYABLE)
def test_every_record_is_a_replay_event(exchange: Exchange):
    event = parse_event(encode_record(exchange, CONTEXT), 1, require_timestamp=True)
    assert event.method == exchange.method.upper()
    assert event.path == exchange.path
    assert event.timestamp == pytest.approx(exchange.received_at, abs=1e-6)
    assert event.attributes == {
        "status": str(exchange.status),
        "version": "v2",
        "track": "candidate",
    }
    assert event.headers == exchange.request_headers
    if exchange.request_content_type and "json" in exchange.request_content_type:
        assert json.loads(event.body or b"null") == json.loads(exchange.request_body or b"null")
    else:
        assert event.body == exchange.request_body


def test_the_encoder_formats_times_like_format_timestamp():
    encoder = RecordEncoder(CONTEXT)
    epochs = [1764590400 + i * 0.3337 + j * 1e-6 for i in range(300) for j in (0, 1, 499999)]
    for epoch in [*epochs, 0.0, 0.9999995, 1764590400.9999996]:
        line = encoder.encode(replace(BASE, received_at=epoch))
        assert json.loads(line)["timestamp"] == format_timestamp(epoch), epoch


@pytest.mark.parametrize(
    "exchange",
    [
        *REPLAYABLE,
        replace(BASE, response_body=b"text answer", response_content_type="text/plain"),
        replace(BASE, response_body=b"", status=204),
        replace(BASE, path="relative"),
        replace(BASE, request_headers=(("X-A", "1"), ("X-A", "2"), ("X-B", "3"))),
        replace(BASE, latency_seconds=0.0000004),
    ],
)
@pytest.mark.parametrize("context", [CONTEXT, RecordContext()], ids=["tagged", "untagged"])
def test_the_event_beside_the_line_is_what_the_line_reads_back_as(
    exchange: Exchange, context: RecordContext
):
    line, event = RecordEncoder(context).encode_event(exchange)
    assert event == json.loads(line)
    assert list(event) == list(json.loads(line))
