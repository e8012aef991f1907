"""One captured request and its answer, as one line of a replay dataset.

A capture file must be usable as it stands: ``modelrollout replay --events`` reads it
(:func:`modelrollout.core.replay.events.parse_event` accepts every line written here), a
drift job reads the features from ``payload`` exactly as the application sent them, and
labels that arrive later are joined on ``inferenceId``. So the line is a replay event
first, with the capture's own fields beside it, which the replay ignores:

.. code-block:: json

    {"timestamp": "2026-12-01T12:00:00.123456Z", "inferenceId": "3f0c...", "version": "v2",
     "track": "candidate", "method": "POST", "path": "/v1/models/fraud:predict",
     "payload": {"instances": [[0.3, -1.2, 0.8, 0.1]]},
     "response": {"status": 200, "payload": {"predictions": [0.71]}},
     "latencyMs": 3.214, "attributes": {"status": "200", "version": "v2", "track": "candidate"}}

Bodies are kept as faithfully as the replay can send them back. A JSON request (a JSON
content type, or none, and a body that parses as strict JSON) becomes ``payload``: the
bytes are copied verbatim when they hold no line break, so the recorded payload is
byte-for-byte what the model received, and are re-serialised compactly otherwise. Other
text becomes ``body`` with its ``contentType``. A request the replay could not send again
- a body that is not UTF-8, or a method it does not replay - raises :class:`Unrecordable`
instead of producing a line that would be counted as malformed later: the proxy counts it
as skipped, by reason. Responses are never a reason to skip: one that is not text is kept
as ``bodyBase64``.

``attributes`` repeats the status, version and track, because attributes are what
``replay --filter`` selects on (``--filter status=200`` replays only answered requests).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelrollout.core.replay.events import ALLOWED_METHODS

SKIP_METHOD = "method"
SKIP_BINARY_BODY = "binary_body"
SKIP_BODY_TOO_LARGE = "body_too_large"
"""Not decided here: the proxy answers 413 and has no body to record."""
SKIP_MALFORMED = "malformed_request"
"""Not decided here: the proxy could not read the request, answered 400 and closed."""


class Unrecordable(ValueError):
    """A request that no replay could send again; ``reason`` is a metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Exchange:
    """A request the proxy forwarded and the answer it returned, as raw bytes."""

    inference_id: str
    received_at: float
    """Epoch seconds when the request arrived at the proxy."""
    method: str
    path: str
    """The path and query string as received."""
    request_body: bytes
    request_content_type: str | None
    status: int
    """The status returned to the client: the model's, or the proxy's own on an error."""
    response_body: bytes
    response_content_type: str | None
    latency_seconds: float
    """From forwarding the request to the model's last response byte."""
    request_headers: tuple[tuple[str, str], ...] = ()
    """The request headers chosen for recording (``--record-header``)."""
    error: str | None = None
    """Set when the model gave no answer and the proxy answered (``timeout``, ...)."""

    @property
    def size(self) -> int:
        """Bytes held in memory, roughly: what the capture queue's byte bound counts."""
        return len(self.request_body) + len(self.response_body) + len(self.path) + 256


@dataclass(frozen=True, slots=True)
class RecordContext:
    """What every record of one proxy carries: the model version and the track."""

    version: str | None = None
    track: str | None = None


def format_timestamp(epoch: float) -> str:
    """RFC 3339 in UTC to the microsecond: ``2026-12-01T12:00:00.123456Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_compact = json.JSONEncoder(separators=(",", ":")).encode
"""``json.dumps`` with compact separators, without building an encoder at every call."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(text: str) -> object:
    """``json.loads`` without the NaN/Infinity extensions; raises ValueError."""
    return json.loads(text, parse_constant=_reject_constant)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(content_type: str | None) -> bool:
    """No content type, ``application/json`` or any ``+json`` type."""
    media = _media_type(content_type)
    return media in ("", "application/json") or media.endswith("+json")


_Member = tuple[str, str, Any]
"""A member of a record: its key, its JSON text, and the value that text stands for."""


def _json(body: bytes, content_type: str | None) -> tuple[str, Any] | None:
    if not body or not is_json_type(content_type):
        return None
    try:
        text = body.decode("utf-8")
        value = _strict_json(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if "\n" in text or "\r" in text:
        return _compact(value), value
    return text.strip(), value


def json_text(body: bytes, content_type: str | None) -> str | None:
    """The body as one line of JSON text, when it is JSON; otherwise ``None``."""
    found = _json(body, content_type)
    return None if found is None else found[0]


def _text(key: str, value: str) -> _Member:
    return key, json.dumps(value), value


def _body_members(
    body: bytes, content_type: str | None, *, binary: Callable[[bytes], list[_Member]]
) -> list[_Member]:
    found = _json(body, content_type)
    if found is not None:
        return [("payload", *found)]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return binary(body)
    members = [_text("body", text)]
    if content_type:
        members.append(_text("contentType", content_type))
    return members


def _unrecordable_body(body: bytes) -> list[_Member]:
    raise Unrecordable(SKIP_BINARY_BODY, f"a {len(body)}-byte request body is not UTF-8 text")


def _object(members: list[_Member]) -> _Member:
    text = "{" + ",".join(f'"{key}":{value}' for key, value, _ in members) + "}"
    return "", text, {key: value for key, _, value in members}


def _response(exchange: Exchange) -> _Member:
    members: list[_Member] = [("status", str(exchange.status), exchange.status)]
    if exchange.response_body:
        content_type = exchange.response_content_type

        def as_base64(body: bytes) -> list[_Member]:
            found = [_text("bodyBase64", base64.b64encode(body).decode("ascii"))]
            if content_type:
                found.append(_text("contentType", content_type))
            return found

        members += _body_members(exchange.response_body, content_type, binary=as_base64)
    if exchange.error is not None:
        members.append(_text("error", exchange.error))
    return _object(members)


def _headers(pairs: tuple[tuple[str, str], ...]) -> _Member:
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return "headers", _compact(joined), joined


class RecordEncoder:
    """Encodes the exchanges of one proxy; what never changes is encoded once."""

    def __init__(self, context: RecordContext) -> None:
        self.context = context
        tags = [
            (key, value)
            for key, value in (("version", context.version), ("track", context.track))
            if value is not None
        ]
        self._tags = "".join(f',"{key}":{json.dumps(value)}' for key, value in tags)
        self._tag_values = {key: value for key, value in tags if value is not None}
        self._second = -1
        self._second_text = ""

    def _timestamp(self, epoch: float) -> str:
        """:func:`format_timestamp`, formatting each second only once."""
        second, micros = divmod(round(epoch * 1_000_000), 1_000_000)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{micros:06d}Z"

    def encode(self, exchange: Exchange) -> bytes:
        """The dataset line of an exchange, ending in a newline.

        Raises :class:`Unrecordable` when the request could not be replayed.
        """
        return self.encode_event(exchange)[0]

    def encode_event(self, exchange: Exchange) -> tuple[bytes, dict[str, Any]]:
        """The dataset line of an exchange, and the event it reads back as.

        The event equals ``json.loads(line)``, built from the values the encoding parsed
        anyway, so a reader in the same process (the live window) does not parse the line
        again. Raises :class:`Unrecordable` when the request could not be replayed.
        """
        method = exchange.method.upper()
        if method not in ALLOWED_METHODS:
            raise Unrecordable(SKIP_METHOD, f"{method} requests are not replayed")
        timestamp = self._timestamp(exchange.received_at)
        event: dict[str, Any] = {"timestamp": timestamp, "inferenceId": exchange.inference_id}
        event.update(self._tag_values)
        event["method"] = method
        parts = [
            f'{{"timestamp":"{timestamp}"',
            f',"inferenceId":{json.dumps(exchange.inference_id)}',
            self._tags,
            f',"method":{json.dumps(method)}',
        ]
        if exchange.path.startswith("/"):
            parts.append(f',"path":{json.dumps(exchange.path)}')
            event["path"] = exchange.path
        if exchange.request_body:
            members = _body_members(
                exchange.request_body, exchange.request_content_type, binary=_unrecordable_body
            )
        else:
            members = [("body", '""', "")]
            if exchange.request_content_type:
                members.append(_text("contentType", exchange.request_content_type))
        if exchange.request_headers:
            members.append(_headers(exchange.request_headers))
        members.append(("response", *_response(exchange)[1:]))
        latency = f"{exchange.latency_seconds * 1000:.3f}"
        members.append(("latencyMs", latency, float(latency)))
        for key, text, value in members:
            parts.append(f',"{key}":{text}')
            event[key] = value
        parts.append(f',"attributes":{{"status":"{exchange.status}"{self._tags}}}}}\n')
        event["attributes"] = {"status": str(exchange.status), **self._tag_values}
        return "".join(parts).encode("utf-8"), event


def encode_record(exchange: Exchange, context: RecordContext) -> bytes:
    """The dataset line of an exchange (see :class:`RecordEncoder`)."""
    return RecordEncoder(context).encode(exchange)
