"""Parsing one line of an event dataset.

A dataset is JSON Lines: every line is one request that an application sent to its model
in production. Parsing is strict about shape and lenient about presence: a field that is
there must be right (a ``headers`` that is not an object of strings is an error naming
``headers``), while fields that a given run does not need may be missing (a dataset
replayed at a constant rate does not need timestamps). A bad line raises
:class:`EventError` with a short reason; the caller counts it and moves on, because a
single corrupt line in a million must never abort a test run.

The request body is prepared once, at parse time, as bytes: ``payload`` (a JSON value) is
re-serialised compactly, ``body`` (a string) is sent as UTF-8 with its ``contentType``.
Labels are normalised to strings (``true``/``1``/``1.0`` all become ``"1"``) so that
ground truth from different producers compares equal.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON_CONTENT_TYPE = "application/json"
ALLOWED_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
DROPPED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
    }
)
"""Recorded headers that are not replayed: they describe the original connection (the
production host, the original body length), not the request."""
_EPOCH_SECONDS_LIMIT = 1e11  # ~ year 5138: larger numbers are almost surely milliseconds


class EventError(ValueError):
    """A dataset line that cannot be used; ``reason`` names the offending field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded request, ready to send."""

    line: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    method: str = "POST"
    path: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    timestamp: float | None = None
    id: str | None = None
    label: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def parse_timestamp(value: object) -> float:
    """RFC 3339 text or epoch seconds (number or numeric text) to epoch seconds.

    Text without a UTC offset is taken as UTC. Raises :class:`ValueError`.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("z", "Z"))
            except ValueError:
                raise ValueError(f"{_short(value)} is neither RFC 3339 nor epoch seconds") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.timestamp()
    else:
        raise ValueError(f"expected RFC 3339 text or epoch seconds, got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{_short(value)} is not a valid epoch time")
    if seconds > _EPOCH_SECONDS_LIMIT:
        raise ValueError(f"{_short(value)} looks like milliseconds; use epoch seconds")
    return seconds


def normalize_label(value: object) -> str:
    """Ground truth or a class prediction as comparable text."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, number or boolean, got {type(value).__name__}")


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _lookup(document: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    current: Any = document
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current


def parse_event(
    text: str | bytes,
    line: int,
    *,
    label_field: str = "label",
    require_timestamp: bool = False,
) -> Event:
    """Parse one dataset line; raises :class:`EventError` with a reason naming the field."""
    try:
        document = json.loads(text)
    except UnicodeDecodeError:
        raise EventError("line is not valid UTF-8") from None
    except json.JSONDecodeError as error:
        raise EventError(f"not JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(document, dict):
        raise EventError(f"expected a JSON object, got {type(document).__name__}")

    has_payload = "payload" in document
    has_body = "body" in document
    if has_payload and has_body:
        raise EventError("payload and body are both set; use one")
    content_type = JSON_CONTENT_TYPE
    if has_payload:
        body = json.dumps(document["payload"], separators=(",", ":")).encode()
        if "contentType" in document:
            raise EventError("contentType: only allowed with body (payload is always JSON)")
    elif has_body:
        raw = document["body"]
        if not isinstance(raw, str):
            raise EventError("body: must be a string (use payload for a JSON value)")
        body = raw.encode()
        content_type = document.get("contentType", "application/octet-stream")
        if not isinstance(content_type, str) or not content_type:
            raise EventError("contentType: must be a non-empty string")
    else:
        raise EventError("payload: missing (each event needs payload or body)")

    method = document.get("method", "POST")
    if not isinstance(method, str) or method.upper() not in ALLOWED_METHODS:
        raise EventError(f"method: {_short(method)} is not one of {sorted(ALLOWED_METHODS)}")

    path = document.get("path")
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        raise EventError("path: must be a string starting with /")

    headers_value = document.get("headers", {})
    if not isinstance(headers_value, dict) or not all(
        isinstance(v, str) for v in headers_value.values()
    ):
        raise EventError("headers: must be an object of string values")
    headers = tuple(
        (str(k), v) for k, v in headers_value.items() if str(k).lower() not in DROPPED_HEADERS
    )

    timestamp: float | None = None
    if "timestamp" in document and document["timestamp"] is not None:
        try:
            timestamp = parse_timestamp(document["timestamp"])
        except ValueError as error:
            raise EventError(f"timestamp: {error}") from None
    elif require_timestamp:
        raise EventError("timestamp: missing (needed by --speed and --since/--until)")

    event_id = document.get("id")
    if event_id is not None:
        if isinstance(event_id, bool) or not isinstance(event_id, str | int):
            raise EventError("id: must be a string or an integer")
        event_id = str(event_id)

    label: str | None = None
    found, raw_label = _lookup(document, label_field)
    if found and raw_label is not None:
        try:
            label = normalize_label(raw_label)
        except ValueError as error:
            raise EventError(f"{label_field}: {error}") from None

    attributes_value = document.get("attributes", {})
    if not isinstance(attributes_value, dict):
        raise EventError("attributes: must be an object")
    attributes: dict[str, str] = {}
    for key, value in attributes_value.items():
        if isinstance(value, dict | list) or value is None:
            raise EventError(f"attributes.{key}: must be a string, number or boolean")
        attributes[str(key)] = normalize_label(value)

    return Event(
        line=line,
        body=body,
        content_type=content_type,
        method=method.upper(),
        path=path,
        headers=headers,
        timestamp=timestamp,
        id=event_id,
        label=label,
        attributes=attributes,
    )
