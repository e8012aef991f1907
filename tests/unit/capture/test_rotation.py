"""Rotation, names and the total bound, decided without files."""

from __future__ import annotations

import pytest

from modelrollout.core.capture.rotation import (
    ROTATE_AGE,
    ROTATE_SIZE,
    CaptureFile,
    RotationPolicy,
    file_name,
    next_sequence,
    parse_names,
    to_delete,
)

# (max bytes, max age, size, opened at, now) -> reason
DUE = [
    (100, None, 0, 0.0, 1e9, None),
    (100, None, 99, 0.0, 0.0, None),
    (100, None, 100, 0.0, 0.0, ROTATE_SIZE),
    (100, None, 250, 0.0, 0.0, ROTATE_SIZE),
    (None, 60.0, 10**12, 0.0, 59.9, None),
    (None, 60.0, 0, 0.0, 60.0, ROTATE_AGE),
    (None, 60.0, 0, 100.0, 159.0, None),
    (100, 60.0, 100, 0.0, 60.0, ROTATE_SIZE),
    (100, 60.0, 50, 0.0, 61.0, ROTATE_AGE),
    (None, None, 10**12, 0.0, 1e9, None),
]


@pytest.mark.parametrize(("max_bytes", "max_age", "size", "opened", "now", "reason"), DUE)
def test_rotation_is_due(
    max_bytes: int | None,
    max_age: float | None,
    size: int,
    opened: float,
    now: float,
    reason: str | None,
):
    policy = RotationPolicy(max_file_bytes=max_bytes, max_file_age=max_age)
    assert policy.due(size=size, opened_at=opened, now=now) == reason


def test_deadline_is_the_age_limit():
    assert RotationPolicy(max_file_age=30).deadline(100.0) == 130.0
    assert RotationPolicy(max_file_bytes=5).deadline(100.0) is None


@pytest.mark.parametrize(
    ("opened", "sequence", "compressed", "name"),
    [
        (1764590400.9, 1, False, "pod-a-20251201T120000Z-000001.jsonl.part"),
        (1764590400.0, 42, True, "pod-a-20251201T120000Z-000042.jsonl.gz.part"),
        (0.0, 1234567, False, "pod-a-19700101T000000Z-1234567.jsonl.part"),
    ],
)
def test_file_names(opened: float, sequence: int, compressed: bool, name: str):
    assert file_name("pod-a", opened, sequence, compressed=compressed) == name
    (parsed,) = parse_names("pod-a", [name])
    assert (parsed.sequence, parsed.compressed, parsed.complete) == (sequence, compressed, False)
    assert parsed.final_name == name.removesuffix(".part")


def test_parsing_keeps_this_prefix_only_and_sorts_oldest_first():
    names = [
        "cap-20251201T120000Z-000003.jsonl",
        "cap-20251201T115959Z-000009.jsonl.gz",
        "cap-20251201T120000Z-000002.jsonl",
        "cap-20251201T120001Z-000004.jsonl.part",
        "cap-x-20251201T120000Z-000001.jsonl",  # another proxy's prefix
        "cap-20251201T120000Z-000001.json",
        "cap-20251201T120000Z-1.jsonl",
        "other.txt",
        "cap-20251201T120000Z-000005.jsonl.tmp",
    ]
    found = parse_names("cap", names)
    assert [f.name for f in found] == [
        "cap-20251201T115959Z-000009.jsonl.gz",
        "cap-20251201T120000Z-000002.jsonl",
        "cap-20251201T120000Z-000003.jsonl",
        "cap-20251201T120001Z-000004.jsonl.part",
    ]
    assert [f.complete for f in found] == [True, True, True, False]
    assert next_sequence(found) == 10
    assert next_sequence([]) == 1


def test_a_prefix_with_regex_characters_is_literal():
    assert parse_names("a.b", ["aXb-20251201T120000Z-000001.jsonl"]) == []
    assert len(parse_names("a.b", ["a.b-20251201T120000Z-000001.jsonl"])) == 1


def test_capture_files_order_by_time_then_sequence():
    a = CaptureFile("20251201T120000Z", 9, "a", False, True)
    b = CaptureFile("20251201T120001Z", 1, "b", False, True)
    c = CaptureFile("20251201T120001Z", 2, "c", False, True)
    assert sorted([c, b, a]) == [a, b, c]


CLOSED = [("f1", 40), ("f2", 30), ("f3", 20)]

# (closed, open bytes, max total) -> deleted
DELETE = [
    (CLOSED, 0, None, []),
    (CLOSED, 0, 90, []),
    (CLOSED, 10, 100, []),
    (CLOSED, 11, 100, ["f1"]),
    (CLOSED, 0, 89, ["f1"]),
    (CLOSED, 0, 50, ["f1"]),
    (CLOSED, 0, 49, ["f1", "f2"]),
    (CLOSED, 5, 20, ["f1", "f2", "f3"]),
    (CLOSED, 0, 0, ["f1", "f2", "f3"]),
    ([], 500, 100, []),
]


@pytest.mark.parametrize(("closed", "open_bytes", "limit", "deleted"), DELETE)
def test_oldest_files_make_room(
    closed: list[tuple[str, int]], open_bytes: int, limit: int | None, deleted: list[str]
):
    assert to_delete(closed, open_bytes=open_bytes, max_total_bytes=limit) == deleted
