"""Dataset lines: parsing, selection, gzip and accounting of every line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from modelrollout.core.replay.events import EventError, parse_event, parse_timestamp
from modelrollout.core.replay.selection import (
    DatasetTally,
    EventReader,
    EventSelection,
    sample_key,
    select_events,
)
from modelrollout.services.replay.dataset import LocalDataset

GOOD = [
    (
        '{"timestamp": "2024-05-01T00:00:00Z", "payload": {"instances": [[1, 2]]}, "label": 1}',
        {"timestamp": 1714521600.0, "body": b'{"instances":[[1,2]]}', "label": "1"},
    ),
    (
        '{"timestamp": 1714521600.5, "payload": [1], "label": true}',
        {"timestamp": 1714521600.5, "label": "1"},
    ),
    ('{"timestamp": "1714521600", "payload": {}, "label": 0.0}', {"label": "0"}),
    (
        '{"timestamp": "2024-05-01T02:00:00+02:00", "payload": {}}',
        {"timestamp": 1714521600.0, "label": None},
    ),
    ('{"timestamp": "2024-05-01T00:00:00", "payload": {}}', {"timestamp": 1714521600.0}),
    (
        '{"body": "a,b,c", "contentType": "text/csv", "method": "put", "path": "/x"}',
        {"body": b"a,b,c", "content_type": "text/csv", "method": "PUT", "path": "/x"},
    ),
    (
        '{"payload": {}, "headers": {"X-A": "1"}, "id": 7, "attributes": {"region": "eu", "n": 2}}',
        {"headers": (("X-A", "1"),), "id": "7", "attributes": {"region": "eu", "n": "2"}},
    ),
    ('{"payload": null, "label": "fraud"}', {"body": b"null", "label": "fraud"}),
    (
        '{"payload": {}, "headers": {"Host": "prod", "Content-Length": "9", "X-B": "2"}}',
        {"headers": (("X-B", "2"),)},
    ),
]


@pytest.mark.parametrize(("line", "expected"), GOOD)
def test_parse_good_lines(line: str, expected: dict[str, object]) -> None:
    event = parse_event(line, 3)
    assert event.line == 3
    for name, value in expected.items():
        assert getattr(event, name) == value, name


BAD = [
    ("not json", "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"timestamp": 1}', "payload: missing"),
    ('{"payload": {}, "body": "x"}', "payload and body are both set"),
    ('{"body": {"a": 1}}', "body: must be a string"),
    ('{"payload": {}, "contentType": "text/plain"}', "contentType: only allowed with body"),
    ('{"payload": {}, "timestamp": "yesterday"}', "timestamp:"),
    ('{"payload": {}, "timestamp": 1714521600000}', "timestamp: 1714521600000 looks like ms"),
    ('{"payload": {}, "timestamp": -5}', "timestamp:"),
    ('{"payload": {}, "timestamp": true}', "timestamp:"),
    ('{"payload": {}, "method": "FETCH"}', "method:"),
    ('{"payload": {}, "path": "no-slash"}', "path:"),
    ('{"payload": {}, "headers": {"a": 1}}', "headers:"),
    ('{"payload": {}, "headers": []}', "headers:"),
    ('{"payload": {}, "id": 1.5}', "id:"),
    ('{"payload": {}, "label": [1]}', "label:"),
    ('{"payload": {}, "attributes": []}', "attributes:"),
    ('{"payload": {}, "attributes": {"a": {"b": 1}}}', "attributes.a:"),
]


@pytest.mark.parametrize(("line", "reason"), BAD)
def test_parse_bad_lines_name_the_field(line: str, reason: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(line, 1)
    first_word = reason.split(" ")[0]
    assert caught.value.reason.startswith(first_word), caught.value.reason
    if "looks like ms" in reason:
        assert "milliseconds" in caught.value.reason


def test_required_timestamp_and_label_field() -> None:
    with pytest.raises(EventError, match="timestamp: missing"):
        parse_event('{"payload": {}}', 1, require_timestamp=True)
    event = parse_event('{"payload": {}, "meta": {"truth": "yes"}}', 1, label_field="meta.truth")
    assert event.label == "yes"
    assert parse_event(b'{"payload": {}}', 1).label is None
    with pytest.raises(EventError, match="UTF-8"):
        parse_event(b'{"payload": "\xff"}', 1)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2024-05-01T00:00:00Z", 1714521600.0),
        ("2024-05-01T00:00:00.250Z", 1714521600.25),
        ("2024-05-01 00:00:00+00:00", 1714521600.0),
        (1714521600, 1714521600.0),
        ("1714521600.75", 1714521600.75),
    ],
)
def test_parse_timestamp(value: object, seconds: float) -> None:
    assert parse_timestamp(value) == seconds


def _lines(texts: list[str]) -> list[tuple[int, bytes]]:
    return [(i, t.encode()) for i, t in enumerate(texts, start=1)]


def _dataset(n: int) -> list[str]:
    rows = []
    for i in range(n):
        rows.append(
            json.dumps(
                {
                    "timestamp": 1000 + i,
                    "payload": {"i": i},
                    "attributes": {"region": "eu" if i % 2 else "us", "tier": str(i % 3)},
                }
            )
        )
    return rows


SELECTIONS = [
    (EventSelection(), list(range(10))),
    (EventSelection(since="1003", until="1007"), [3, 4, 5, 6]),
    (EventSelection(filters={"region": "eu"}), [1, 3, 5, 7, 9]),
    (EventSelection(filters={"region": "eu", "tier": "0"}), [3, 9]),
    (EventSelection(max_events=3), [0, 1, 2]),
    (EventSelection(filters={"region": "us"}, max_events=2), [0, 2]),
    (EventSelection(filters={"region": "nowhere"}), []),
]


@pytest.mark.parametrize(("selection", "indexes"), SELECTIONS)
def test_selection(selection: EventSelection, indexes: list[int]) -> None:
    tally = DatasetTally()
    reader = EventReader(selection=selection)
    events = list(select_events(_lines(_dataset(10)), reader, tally))
    assert [json.loads(e.body)["i"] for e in events] == indexes
    assert tally.selected == len(indexes)
    assert tally.filtered == 10 - len(indexes)
    assert tally.selected + tally.filtered + tally.malformed == tally.lines == 10


def test_sampling_is_deterministic_and_close_to_the_fraction() -> None:
    lines = _lines(_dataset(4000))
    runs = []
    for _ in range(2):
        tally = DatasetTally()
        selection = EventSelection(sample=0.25, seed=7)
        runs.append([e.line for e in select_events(lines, EventReader(selection), tally)])
    assert runs[0] == runs[1]
    assert 900 < len(runs[0]) < 1100
    other = DatasetTally()
    seeded = [
        e.line
        for e in select_events(lines, EventReader(EventSelection(sample=0.25, seed=8)), other)
    ]
    assert seeded != runs[0]
    keys = [sample_key(3, line) for line in range(10000)]
    assert min(keys) >= 0
    assert max(keys) < 1


def test_malformed_lines_are_counted_with_the_first_ten_samples() -> None:
    texts = _dataset(5)
    texts[1:1] = ["garbage"] * 12
    texts.append("")
    texts.append('{"payload": {}, "timestamp": "x"}')
    tally = DatasetTally()
    events = list(select_events(_lines(texts), EventReader(), tally))
    assert len(events) == 5
    assert tally.malformed == 13
    assert len(tally.malformed_samples) == 10
    assert tally.malformed_samples[0].line == 2
    assert tally.malformed_samples[0].reason.startswith("not JSON")
    assert tally.lines == 18  # the blank line is not counted


def test_shard_tallies_add_up_to_the_single_run() -> None:
    texts = _dataset(23)
    texts[4] = "bad"
    texts[9] = "bad"
    lines = _lines(texts)
    selection = EventSelection(filters={"region": "us"})
    whole = DatasetTally()
    list(select_events(lines, EventReader(selection), whole))
    parts = []
    for index in range(3):
        tally = DatasetTally(shard_index=index, shard_count=3)
        list(select_events(lines, EventReader(selection), tally))
        parts.append(tally)
    for name in ("lines", "selected", "filtered", "malformed"):
        assert sum(getattr(p, name) for p in parts) == getattr(whole, name), name
    merged_samples = sorted(s.line for p in parts for s in p.malformed_samples)
    assert merged_samples == [s.line for s in whole.malformed_samples]


def test_gzip_is_detected_by_content_and_truncation_is_reported(tmp_path: Path) -> None:
    text = "\n".join(_dataset(50)) + "\n"
    plain = tmp_path / "events.data"
    plain.write_text(text)
    packed = tmp_path / "events.jsonl"  # no .gz extension on purpose
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, packed):
        dataset = LocalDataset(path, str(path))
        assert dataset.compressed == (path == packed)
        lines = list(dataset.lines())
        assert len(lines) == 50
        assert lines[0][0] == 1
        assert dataset.read_error is None
    truncated = tmp_path / "cut"
    truncated.write_bytes(packed.read_bytes()[: len(packed.read_bytes()) // 2])
    dataset = LocalDataset(truncated, "cut")
    lines = list(dataset.lines())
    assert len(lines) < 50
    assert dataset.read_error is not None
    assert "gzip" in dataset.read_error[1]
