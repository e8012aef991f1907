"""Capture settings: sizes, addresses, the options model and the queue's bound."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from modelrollout.core.capture.backlog import (
    DROP_QUEUE_FULL,
    DROP_TOO_LARGE,
    BacklogLimits,
    refusal,
)
from modelrollout.core.capture.options import CaptureOptions, parse_listen, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1048576", 1048576),
        ("500k", 500_000),
        ("500K", 500_000),
        ("64Mi", 64 * 1024**2),
        ("64MiB", 64 * 1024**2),
        ("1Gi", 1024**3),
        ("2GB", 2 * 10**9),
        ("1.5Ki", 1536),
        (" 10M ", 10**7),
        ("1Ti", 1024**4),
    ],
)
def test_sizes(text: str, size: int):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1", "1 Mi", "1Xi", "Mi", "1MiBB", "1e6", "1mi"])
def test_bad_sizes(text: str):
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":8081", (None, 8081)),
        ("8081", (None, 8081)),
        ("0.0.0.0:8081", ("0.0.0.0", 8081)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9464", ("::1", 9464)),
        ("[::]:80", ("::", 80)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str | None, int]):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["", ":", "host:", ":65536", ":-1", "::1:80", "[::1]80", "a:b"])
def test_bad_listen_addresses(text: str):
    with pytest.raises(ValueError, match="address"):
        parse_listen(text)


def test_defaults():
    options = CaptureOptions()
    assert options.sample == 1.0
    assert options.file_bytes_limit == 64 * 1024**2
    assert options.file_age_limit == 3600.0
    assert options.total_bytes_limit == 1024**3
    assert options.queue_bytes_limit == 64 * 1024**2
    assert options.flush_seconds == 1.0
    assert options.body_bytes_limit == 16 * 1024**2
    assert options.id_header == "X-Inference-Id"
    assert options.rotation.max_file_bytes == 64 * 1024**2


def test_zero_turns_a_rotation_limit_off():
    assert CaptureOptions(max_file_bytes="0").file_bytes_limit is None
    assert CaptureOptions(rotate_interval="0").file_age_limit is None


def test_camel_case_on_the_wire():
    options = CaptureOptions.model_validate({"maxFileBytes": "1Mi", "recordHeaders": ["X-A"]})
    assert options.file_bytes_limit == 1024**2
    assert options.to_wire()["recordHeaders"] == ["X-A"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_file_bytes": "0", "rotate_interval": "0"}, "cannot both be 0"),
        ({"max_file_bytes": "2Gi", "max_total_bytes": "1Gi"}, "must not exceed"),
        ({"max_total_bytes": "0"}, "must be positive"),
        ({"queue_bytes": "0"}, "must be positive"),
        ({"flush_interval": "0"}, "positive duration"),
        ({"sample": 1.5}, "less than or equal to 1"),
        ({"queue_records": 0}, "greater than or equal to 1"),
        ({"max_file_bytes": "lots"}, "should match pattern"),
        ({"rotate_interval": "soon"}, "should match pattern"),
        ({"id_header": "X Id"}, "should match pattern"),
        ({"record_headers": ["ok", "not ok"]}, "is not a header name"),
        ({"unknown": 1}, "Extra inputs"),
    ],
)
def test_invalid_options(values: dict[str, Any], message: str):
    with pytest.raises(ValidationError, match=message):
        CaptureOptions(**values)


LIMITS = BacklogLimits(max_records=3, max_bytes=100)


@pytest.mark.parametrize(
    ("records", "queued", "size", "reason"),
    [
        (0, 0, 10, None),
        (2, 80, 20, None),
        (3, 0, 1, DROP_QUEUE_FULL),
        (2, 81, 20, DROP_QUEUE_FULL),
        (0, 0, 100, None),
        (0, 0, 101, DROP_TOO_LARGE),
        (3, 100, 101, DROP_TOO_LARGE),
    ],
)
def test_the_queue_bound(records: int, queued: int, size: int, reason: str | None):
    assert refusal(LIMITS, records=records, queued_bytes=queued, size=size) == reason
