"""Bad input is refused with a message naming the field, never judged."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelrollout.core import judge

INF = math.inf


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, 2.0, math.nan], r"values\[2\]: nan is not a finite number"),
        ([1.0, math.inf], r"values\[1\]: inf is not a finite number"),
        ([1.0, -3.0], r"values\[1\]: -3.0 is a negative latency"),
        (["a", 1.0], r"values: not a list of numbers"),
        ([[1.0, 2.0]], r"values: expected a flat list"),
    ],
)
def test_bad_samples(values: list[object], message: str) -> None:
    with pytest.raises(judge.JudgeInputError, match=message):
        judge.LatencySamples.of(values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("le", "counts", "message"),
    [
        (
            [10, 20, INF],
            [5, 3, 9],
            r"histogram.counts\[1\]: cumulative count 3 is below the previous 5",
        ),
        ([10, 20, INF], [5, -1, 9], r"histogram.counts\[1\]: -1.0 is a negative count"),
        ([10, 20, INF], [5, math.nan, 9], r"histogram.counts\[1\]: nan is not a finite number"),
        ([10, 20, 30], [1, 2, 3], r"histogram.le: the last bound must be \+Inf"),
        ([10, 10, INF], [1, 2, 3], r"histogram.le\[1\]: 10.0 is not above the previous bound"),
        ([10, math.nan, INF], [1, 2, 3], r"histogram.le\[1\]: NaN is not a bucket bound"),
        ([10, 20, INF], [1, 2], r"histogram.counts: 2 counts for 3 le bounds"),
        ([-1, 20, INF], [1, 2, 3], r"histogram.le\[0\]: -1.0 is a negative latency"),
    ],
)
def test_bad_histograms(le: list[float], counts: list[float], message: str) -> None:
    with pytest.raises(judge.JudgeInputError, match=message):
        judge.LatencyHistogram.of(le, counts)


def test_histogram_counts_from_increase_are_rounded_after_validation() -> None:
    hist = judge.LatencyHistogram.of([10, 20, INF], [4.6, 9.4, 10.2])
    assert hist.counts.tolist() == [5.0, 4.0, 1.0]
    assert hist.n == 10


def test_per_bucket_counts_are_accepted_without_cumulative() -> None:
    hist = judge.LatencyHistogram.of([10, 20, INF], [5, 3, 9], cumulative=False)
    assert hist.counts.tolist() == [5.0, 3.0, 9.0]


@pytest.mark.parametrize(
    ("errors", "total", "message"),
    [
        (-1, 10, r"counts.errors: -1 is a negative count"),
        (11, 10, r"counts.errors: 11 errors is more than the 10 requests"),
        (1.5, 10, r"counts.errors: 1.5 is not a whole count"),
        (1, math.nan, r"counts.total: nan is not a finite number"),
        ("3", 10, r"counts.errors: '3' is not a number"),
        (True, 10, r"counts.errors: True is not a number"),
    ],
)
def test_bad_error_counts(errors: object, total: object, message: str) -> None:
    with pytest.raises(judge.JudgeInputError, match=message):
        judge.ErrorCounts.of(errors, total)  # type: ignore[arg-type]


def test_histograms_with_different_buckets_are_refused() -> None:
    a = judge.LatencyHistogram.of([10, 20, INF], [1, 2, 3])
    b = judge.LatencyHistogram.of([10, 25, INF], [1, 2, 3])
    with pytest.raises(judge.JudgeInputError, match=r"candidate.le: .* differ from the baseline"):
        judge.judge_latency(a, b)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tolerance": -0.1}, r"tolerance: -0.1 must be in \[0, 10\]"),
        ({"tolerance": math.nan}, r"tolerance: nan"),
        ({"confidence": 1.0}, r"confidence: 1.0 must be in \[0.5, 1\)"),
        ({"confidence": 0.3}, r"confidence: 0.3"),
        ({"min_samples": 1}, r"min_samples: 1 must be at least 2"),
        ({"tail_quantile": 1.0}, r"tail_quantile: 1.0"),
    ],
)
def test_bad_settings(settings: dict[str, float], message: str) -> None:
    with pytest.raises(judge.JudgeInputError, match=message):
        judge.JudgeSettings(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(("look", "looks"), [(0, 5), (6, 5), (1, 0)])
def test_bad_looks(look: int, looks: int) -> None:
    with pytest.raises(judge.JudgeInputError):
        judge.look_confidence(0.99, look, looks)


def test_numpy_inputs_are_accepted() -> None:
    values = np.random.default_rng(1).lognormal(3, 0.4, 200)
    assert judge.LatencySamples.of(values).n == 200
    assert judge.ErrorCounts.of(np.int64(3), np.int64(10)) == judge.ErrorCounts(3, 10)
