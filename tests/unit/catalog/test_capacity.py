"""Capacity from a ramp's windows: where p99 broke, and the lower bound when it never did."""

from __future__ import annotations

import pytest

from modelrollout.core.replay import capacity
from modelrollout.core.replay.accumulator import ReplayAccumulator
from modelrollout.core.replay.histogram import LogHistogram
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.result import RunInfo, result_from_run
from modelrollout.core.replay.run import RunSettings


def window(start: int, rate: int, p99_ms: float, errors: int = 0, dropped: int = 0):
    """A window of 5 s at `rate` answers/s, 5 % of them at `p99_ms` (so that is the p99)."""
    slow = max(1, rate * 5 // 20)
    hist = LogHistogram()
    hist.add_many([1.0] * (rate * 5 - slow) + [p99_ms] * slow)
    return capacity.Window(start, rate * 5 + errors, rate * 5, errors, dropped, hist)


@pytest.mark.parametrize(
    ("windows", "rate", "reached", "words"),
    [
        ([window(0, 10, 5), window(5, 20, 8), window(10, 40, 30)], 20, True, "p99 30"),
        ([window(0, 10, 5), window(5, 20, 8)], 20, False, "at least"),
        ([window(0, 10, 50), window(5, 20, 8)], None, True, "p99 50"),
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


def test_a_ramp_result_reports_its_capacity() -> None:
    """A replay whose latency grows with the rate: 2 ms up to 100 req/s, 40 ms above."""
    acc = ReplayAccumulator(baseline=False, reader=None)
    index = 0
    for second in range(20):
        rate = 20 + 10 * second  # 20 .. 210 req/s
        for k in range(rate):
            latency = 0.002 if rate <= 100 else 0.040
            acc.completed(0, index, second + k / rate, 0.0, latency, "ok", None, None)
            index += 1
    options = ReplayOptions(capacity_p99_ms=10, capacity_window="2s")
    info = RunInfo(
        target="http://t/p",
        duration_seconds=20,
        planned_seconds=20,
        settings=RunSettings(events="e.jsonl", options=options),
    )
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


def test_capacity_window_must_be_whole_seconds() -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        ReplayOptions(capacity_window="1500ms")
