"""Capacity from a ramp's windows: where p99 broke, and the lower bound when it never did."""

from __future__ import annotations

import pytest

from modelrollout.core.replay import capacity
from modelrollout.core.replay.accumulator import ReplayAccumulator, TimelineBucket
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.result import RunInfo, result_from_run
from modelrollout.core.replay.run import RunSettings


def window(start: int, rate: int, p99_ms: float, errors: int = 0, dropped: int = 0):
    """A window of 5 s at `rate` answers/s, 5 % of them at `p99_ms` (so that is the p99)."""
    slow = max(1, rate * 5 // 20)
    bucket = TimelineBucket(sent=rate * 5 + errors, ok=rate * 5, errors=errors, dropped=dropped)
    bucket.latency.add_many([1.0] * (rate * 5 - slow) + [p99_ms] * slow)
    return bucket, 5


@pytest.mark.parametrize(
    ("windows", "rate", "reached", "words"),
    [
        ([window(0, 10, 5), window(5, 20, 8), window(10, 40, 30)], 20, True, "p99 30"),
        ([window(0, 10, 5), window(5, 20, 8)], 20, False, "at least"),
        ([window(0, 10, 50), window(5, 20, 8)], None, True, "p99 49"),  # 2 % histogram
        # a failed window below a good one caps the capacity, whatever came after
        ([window(0, 10, 5), window(5, 30, 5, errors=20), window(10, 40, 5)], 10, True, "failed"),
        ([window(0, 10, 5), window(5, 30, 5, dropped=3)], 10, True, "dropped"),
        ([window(0, 1, 5)], None, False, "no window"),
    ],
)
def test_assess(windows, rate, reached, words) -> None:
    report = capacity.assess(windows, 20.0, 5)
    assert (report.rate, report.reached) == (rate, reached)
    assert words in report.message


def ramp(seconds: int, slow_above: int) -> ReplayAccumulator:
    """A replay whose latency grows with the rate: 20, 30, 40 ... req/s, answered in 2 ms up
    to `slow_above` req/s and in 40 ms above."""
    acc = ReplayAccumulator(baseline=False, reader=None)
    index = 0
    for second in range(seconds):
        rate = 20 + 10 * second
        for k in range(rate):
            latency = 0.002 if rate <= slow_above else 0.040
            acc.completed(0, index, second + k / rate, 0.0, latency, "ok", None, None)
            index += 1
    return acc


def ramp_info(seconds: int, window: str) -> RunInfo:
    options = ReplayOptions(capacity_p99_ms=10, capacity_window=window)
    return RunInfo(
        target="http://t/p",
        duration_seconds=seconds,
        planned_seconds=seconds,
        settings=RunSettings(events="e.jsonl", options=options),
    )


def test_a_ramp_result_reports_its_capacity() -> None:
    acc = ramp(20, slow_above=100)  # 20 .. 210 req/s
    info = ramp_info(20, "2s")
    result = result_from_run(acc, info)
    assert result.capacity is not None
    assert result.capacity.reached
    # windows of 2 s serve 25, 45, 65, 85 req/s at 2 ms; the next (100 and 110 req/s) mixes in
    # the 40 ms second and breaks the 10 ms target
    assert result.capacity.rate == pytest.approx(85.0)
    assert "p99 4" in result.capacity.message
    assert result.summary().capacity == result.capacity
    without = result_from_run(acc, RunInfo(target="http://t/p", planned_seconds=20))
    assert without.capacity is None


def test_a_short_last_window_is_measured_over_the_seconds_it_covers() -> None:
    """12 s in windows of 5 s: the last window covers 2 s (120 and 130 req/s, slow)."""
    result = result_from_run(ramp(12, slow_above=110), ramp_info(12, "5s"))
    assert result.capacity is not None
    # seconds 5-9 held at 70..110 req/s: 90 req/s served on average
    assert result.capacity.rate == pytest.approx(90.0)
    assert "offered 125.0 req/s" in result.capacity.message


def test_capacity_window_must_be_whole_seconds() -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        ReplayOptions(capacity_window="1500ms")
