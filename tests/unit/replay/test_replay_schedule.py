"""Rate specifications, patterns and the intended send times of every mode."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from modelrollout.core.replay.events import Event
from modelrollout.core.replay.plan import DatasetInfo, EmptyDatasetError, Plan, PlannedSend
from modelrollout.core.replay.rates import (
    RatePattern,
    RateSpec,
    build_pattern_rate,
    parse_pattern,
)


def _events(n: int, *, step: float = 1.0, start: float = 1000.0) -> list[Event]:
    return [Event(line=i + 1, body=b"{}", timestamp=start + i * step) for i in range(n)]


def _plan(rate: RateSpec, events: list[Event]) -> Plan:
    timestamps = [e.timestamp for e in events if e.timestamp is not None]
    return Plan(
        rate,
        DatasetInfo(
            len(events),
            timestamps[0] if timestamps else None,
            max(timestamps) if timestamps else None,
        ),
    )


def _run(
    rate: RateSpec, events: list[Event], shard: tuple[int, int] = (0, 1)
) -> tuple[Plan, list[PlannedSend]]:
    plan = _plan(rate, events)
    return plan, list(plan.sends(lambda: iter(events), *shard))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ramp:10:200", RatePattern(shape="ramp", start_rate=10, end_rate=200)),
        (" RAMP:0:5.5 ", RatePattern(shape="ramp", start_rate=0, end_rate=5.5)),
        (
            "steps:50@30s,100@1m",
            RatePattern(
                shape="steps",
                steps=[{"rate": 50, "duration": "30s"}, {"rate": 100, "duration": "1m"}],
            ),
        ),
        ("daily:peak=200,trough=20", RatePattern(shape="daily", peak=200, trough=20)),
        (
            "daily:trough=1,peak=2,start=6",
            RatePattern(shape="daily", peak=2, trough=1, start_hour=6),
        ),
    ],
)
def test_parse_pattern(spec: str, expected: RatePattern) -> None:
    parsed = parse_pattern(spec)
    assert parsed == expected
    assert parse_pattern(parsed.to_spec()) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ramp", "incomplete"),
        ("ramp:10", "ramp:FROM:TO"),
        ("ramp:a:5", "not a number"),
        ("ramp:0:0", "positive"),
        ("ramp:-1:5", "non-negative"),
        ("steps:50", "RATE@DURATION"),
        ("steps:50@", "duration"),
        ("steps:0@10s", "positive rate"),
        ("steps:5@0s", "no duration"),
        ("daily:peak=200", "peak= and trough="),
        ("daily:peak=10,trough=20", "trough must not exceed peak"),
        ("daily:peak=10,trough=1,shape=1/2", "24 values"),
        ("daily:peak=10,trough=1,start=25", "24"),
        ("daily:high=3", "is not peak="),
        ("sine:1:2", "unknown shape"),
    ],
)
def test_bad_patterns_are_rejected_with_a_clear_message(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match="pattern") as caught:
        parse_pattern(spec)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"rate": 1, "speed": 1},
        {"rate": 1, "pattern": {"shape": "ramp", "startRate": 1, "endRate": 2}},
        {"rate": 1, "duration": "1s", "count": 3},
        {"rate": 0},
        {"rate": 1, "duration": "soon"},
        {"rate": 1, "duration": "0s"},
        {"pattern": {"shape": "ramp", "startRate": 1}},
    ],
)
def test_rate_spec_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RateSpec.model_validate(kwargs)


def test_rate_spec_modes_and_cel_rules() -> None:
    assert RateSpec(rate=5).mode == "constant"
    assert RateSpec(speed=2).mode == "speed"
    assert RateSpec(pattern=parse_pattern("steps:1@1s")).mode == "steps"
    schema = RateSpec.model_json_schema()
    rules = [r["rule"] for r in schema["x-kubernetes-validations"]]
    assert any("has(self.rate)" in r for r in rules)


def test_constant_rate_times_are_exact_and_events_loop() -> None:
    events = _events(3)
    plan, sends = _run(RateSpec(rate=8, duration="1s"), events)
    assert [s.offset for s in sends] == [k / 8 for k in range(8)]
    assert [s.event.line for s in sends] == [1, 2, 3, 1, 2, 3, 1, 2]
    assert plan.scheduled_total == 8
    assert plan.planned_duration == 1.0


@pytest.mark.parametrize(
    ("rate", "total", "planned"),
    [
        (RateSpec(rate=10, count=25), 25, 2.5),
        (RateSpec(rate=10), 7, 0.7),  # one pass by default
        (RateSpec(rate=3, duration="2500ms"), 8, 2.5),
        (RateSpec(rate=0.5, duration="3s"), 2, 3.0),
    ],
)
def test_run_length(rate: RateSpec, total: int, planned: float) -> None:
    plan, sends = _run(rate, _events(7))
    assert len(sends) == total == plan.scheduled_total
    assert plan.planned_duration == pytest.approx(planned)
    assert plan.expected_total() == total


def _cumulative(pattern: RatePattern, duration: float, t: float) -> float:
    """L(t) by numeric integration, as an independent reference."""
    rate = build_pattern_rate(pattern, duration)
    total = 0.0
    steps = 4000
    for seg in rate.segments:
        lo, hi = seg.t0, min(seg.t1, t)
        if hi <= lo:
            continue
        h = (hi - lo) / steps
        for i in range(steps):
            x = lo + (i + 0.5) * h
            total += (seg.r0 + (seg.r1 - seg.r0) * (x - seg.t0) / (seg.t1 - seg.t0)) * h
    return total


@pytest.mark.parametrize(
    ("spec", "duration"),
    [("ramp:10:200", 2.0), ("ramp:100:0", 1.0), ("daily:peak=300,trough=30,start=7.5", 2.0)],
)
def test_pattern_times_solve_the_cumulative_count(spec: str, duration: float) -> None:
    pattern = parse_pattern(spec)
    _, sends = _run(RateSpec(pattern=pattern, duration=f"{duration}s"), _events(5))
    assert sends
    assert all(0 <= s.offset < duration for s in sends)
    offsets = [s.offset for s in sends]
    assert offsets == sorted(offsets)
    for send in sends[:: max(1, len(sends) // 12)]:
        assert _cumulative(pattern, duration, send.offset) == pytest.approx(send.index, abs=1e-3)
    expected = _cumulative(pattern, duration, duration)
    assert len(sends) == math.ceil(expected - 1e-9)


def test_ramp_by_count_stretches_over_the_run() -> None:
    plan, sends = _run(RateSpec(pattern=parse_pattern("ramp:10:30"), count=40), _events(3))
    assert len(sends) == 40
    assert plan.planned_duration == pytest.approx(2.0)  # 40 / mean rate 20
    # 10 req/s at the start, 30 at the end.
    assert sends[1].offset - sends[0].offset == pytest.approx(0.1, rel=0.05)
    assert sends[-1].offset - sends[-2].offset == pytest.approx(1 / 30, rel=0.05)


def test_steps_hold_each_rate_and_repeat() -> None:
    pattern = parse_pattern("steps:4@1s,0@1s,2@1s")
    plan, sends = _run(RateSpec(pattern=pattern), _events(3))
    assert [s.offset for s in sends] == [0, 0.25, 0.5, 0.75, 2.0, 2.5]
    assert plan.planned_duration == 3.0
    plan, sends = _run(RateSpec(pattern=pattern, duration="5s"), _events(3))
    assert [round(s.offset, 9) for s in sends][6:] == [3.0, 3.25, 3.5, 3.75]


def test_daily_default_shape_peaks_in_the_afternoon() -> None:
    pattern = parse_pattern("daily:peak=240,trough=24")
    rate = build_pattern_rate(pattern, 24.0)  # one second per hour
    by_hour = {round(seg.t0): seg.r0 for seg in rate.segments}
    assert by_hour[4] == pytest.approx(24)
    assert by_hour[16] == pytest.approx(240)
    assert rate.period == pytest.approx(24.0)


def test_speed_mode_scales_recorded_gaps_and_loops() -> None:
    events = _events(4, step=2.0)  # 1000, 1002, 1004, 1006
    plan, sends = _run(RateSpec(speed=2), events)
    assert [s.offset for s in sends] == [0, 1, 2, 3]
    assert plan.planned_duration == pytest.approx(4.0)
    plan, sends = _run(RateSpec(speed=2, count=6), events)
    assert [s.offset for s in sends] == [0, 1, 2, 3, 4, 5]
    assert [s.event.line for s in sends] == [1, 2, 3, 4, 1, 2]
    plan, sends = _run(RateSpec(speed=4, duration="2s"), events)
    assert [s.offset for s in sends] == [0, 0.5, 1.0, 1.5]


def test_speed_mode_keeps_file_order_when_timestamps_go_backwards() -> None:
    events = [
        Event(line=1, body=b"{}", timestamp=10.0),
        Event(line=2, body=b"{}", timestamp=14.0),
        Event(line=3, body=b"{}", timestamp=12.0),
        Event(line=4, body=b"{}", timestamp=16.0),
    ]
    _, sends = _run(RateSpec(speed=1), events)
    assert [s.offset for s in sends] == [0, 4, 4, 6]


def test_speed_needs_timestamps_and_an_empty_dataset_is_an_error() -> None:
    with pytest.raises(EmptyDatasetError):
        Plan(RateSpec(speed=1), DatasetInfo(3))
    with pytest.raises(EmptyDatasetError, match="no usable event"):
        Plan(RateSpec(rate=1), DatasetInfo(0))


@pytest.mark.parametrize(
    "rate",
    [
        RateSpec(rate=50, duration="1s"),
        RateSpec(speed=3, count=17),
        RateSpec(pattern=parse_pattern("ramp:5:60"), duration="1s"),
        RateSpec(pattern=parse_pattern("steps:20@500ms,40@500ms"), count=31),
    ],
)
@pytest.mark.parametrize("shards", [2, 3])
def test_shards_partition_the_single_run(rate: RateSpec, shards: int) -> None:
    events = _events(7, step=0.5)
    _, whole = _run(rate, events)
    parts = []
    for index in range(shards):
        plan, sends = _run(rate, events, (index, shards))
        assert all(s.index % shards == index for s in sends)
        assert plan.scheduled_total == len(whole)
        parts.extend(sends)
    assert sorted(parts, key=lambda s: s.index) == whole
