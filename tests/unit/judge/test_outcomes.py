"""Outcomes on constructed cases: what Pass, Fail and Inconclusive must mean."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from modelrollout.core import judge
from support.judging import FINE_BUCKETS, PROMETHEUS_BUCKETS, histogram, lognormal, samples

Array = npt.NDArray[np.float64]
N = 5000


def _same(seed: int) -> Array:
    return lognormal(seed, N)


def _shift(factor: float) -> Callable[[int], Array]:
    return lambda seed: lognormal(seed, N) * factor


def _tail_only(factor: float, share: float = 0.03) -> Callable[[int], Array]:
    """The slowest ``share`` of requests ``factor`` times slower; the rest unchanged."""

    def draw(seed: int) -> Array:
        values = lognormal(seed, N)
        cut = np.quantile(values, 1.0 - share)
        return np.where(values > cut, values * factor, values)

    return draw


def _spread(factor: float) -> Callable[[int], Array]:
    """Log latency spread ``factor`` times wider around the same median."""

    def draw(seed: int) -> Array:
        logs = np.log(lognormal(seed, N))
        return np.exp(np.log(20.0) + factor * (logs - np.log(20.0)))

    return draw


LATENCY_CASES = [
    # name, candidate, verdict, the check that must fail (or None)
    ("identical", _same, "Pass", None),
    ("1% faster", _shift(0.99), "Pass", None),
    ("+3% within tolerance", _shift(1.03), "Pass", None),
    ("+30% shift", _shift(1.30), "Fail", "shift"),
    ("p99-only +40%", _tail_only(1.40), "Fail", "tail"),
    ("spread x2", _spread(2.0), "Fail", "spread"),
    ("spread x0.7 (less variable)", _spread(0.7), "Pass", None),
]


@pytest.mark.parametrize(
    ("name", "draw", "expected", "failing"), LATENCY_CASES, ids=[c[0] for c in LATENCY_CASES]
)
def test_latency_outcomes_on_samples(
    name: str, draw: Callable[[int], Array], expected: str, failing: str | None
) -> None:
    verdict = judge.judge_latency(samples(lognormal(1, N)), samples(draw(2)))
    assert verdict.verdict.value == expected, verdict.message
    checks = {check.name: check for check in verdict.checks}
    assert set(checks) == {"shift", "tail", "spread"}
    if failing is not None:
        assert checks[failing].failed, checks[failing].message
    else:
        assert not any(check.failed for check in verdict.checks)
    assert verdict.p_value is not None
    assert 0.0 <= verdict.p_value <= 1.0


@pytest.mark.parametrize(
    ("name", "draw", "expected", "failing"), LATENCY_CASES, ids=[c[0] for c in LATENCY_CASES]
)
def test_latency_outcomes_on_fine_histograms(
    name: str, draw: Callable[[int], Array], expected: str, failing: str | None
) -> None:
    verdict = judge.judge_latency(
        histogram(lognormal(1, N), FINE_BUCKETS), histogram(draw(2), FINE_BUCKETS)
    )
    assert verdict.verdict.value == expected, verdict.message
    if failing is not None:
        assert next(c for c in verdict.checks if c.name == failing).failed


def test_shift_effect_is_relative_to_the_baseline() -> None:
    verdict = judge.judge_latency(samples(lognormal(1, N)), samples(lognormal(2, N) * 1.3))
    shift = verdict.checks[0]
    assert shift.name == "shift"
    assert shift.effect is not None
    assert shift.interval is not None
    assert shift.effect == pytest.approx(0.30, abs=0.03)
    lower, upper = shift.interval
    assert lower < shift.effect < upper
    assert lower > 0.05  # the tolerance: this is what Fail means
    assert "median +" in shift.message


def test_a_p99_only_regression_is_missed_by_the_shift_and_caught_by_the_tail() -> None:
    verdict = judge.judge_latency(samples(lognormal(1, 20_000)), samples(_tail_heavy(2)))
    shift, tail, _ = verdict.checks
    assert verdict.failed
    assert shift.passed
    assert tail.failed
    assert tail.effect is not None
    assert tail.effect == pytest.approx(0.40, abs=0.12)


def _tail_heavy(seed: int) -> Array:
    values = lognormal(seed, 20_000)
    cut = np.quantile(values, 0.97)
    return np.where(values > cut, values * 1.4, values)


def test_coarse_prometheus_buckets_are_cautious_not_wrong() -> None:
    """A 3 % shift sits inside one default bucket: no Fail; a 60 % shift crosses buckets."""
    base = histogram(lognormal(1, 20_000, median=60), PROMETHEUS_BUCKETS)
    small = histogram(lognormal(2, 20_000, median=60) * 1.03, PROMETHEUS_BUCKETS)
    large = histogram(lognormal(3, 20_000, median=60) * 1.6, PROMETHEUS_BUCKETS)
    assert not judge.judge_latency(base, small).failed
    assert judge.judge_latency(base, large).failed


def test_samples_against_a_histogram_are_binned_into_its_buckets() -> None:
    base = histogram(lognormal(1, N), FINE_BUCKETS)
    verdict = judge.judge_latency(base, samples(lognormal(2, N) * 1.3))
    assert verdict.failed
    assert verdict.n == judge.SampleSizes(N, N)


@pytest.mark.parametrize(
    ("baseline_n", "candidate_n", "expected", "minimum"),
    [
        (50, 5000, "Inconclusive", "100"),  # below min_samples: every check
        (5000, 99, "Inconclusive", "100"),
        (500, 500, "Inconclusive", "1000"),  # enough for shift/spread, not for p99
        (1000, 1000, "Pass", None),
    ],
)
def test_too_few_samples_is_inconclusive_and_names_the_minimum(
    baseline_n: int, candidate_n: int, expected: str, minimum: str | None
) -> None:
    verdict = judge.judge_latency(
        samples(lognormal(1, baseline_n)), samples(lognormal(2, candidate_n))
    )
    assert verdict.verdict.value == expected, verdict.message
    if minimum is not None:
        assert f"need at least {minimum} per side" in verdict.message
        assert verdict.p_value is None
        assert verdict.effect is None
        assert verdict.interval is None


def test_a_large_shift_fails_even_when_the_tail_lacks_samples() -> None:
    verdict = judge.judge_latency(samples(lognormal(1, 400)), samples(lognormal(2, 400) * 1.6))
    assert verdict.failed
    assert verdict.checks[1].verdict is judge.Outcome.INCONCLUSIVE


def test_tail_minimum_follows_the_quantile() -> None:
    settings = judge.JudgeSettings(tail_quantile=0.95, min_tail_samples=10)
    verdict = judge.judge_latency(samples(lognormal(1, 500)), samples(lognormal(2, 500)), settings)
    assert verdict.passed, verdict.message
    assert settings.tail_minimum() == 200


@pytest.mark.parametrize(
    ("baseline", "candidate", "expected", "measure"),
    [
        ((0, 1000), (0, 1000), "Pass", "difference"),  # zero errors both sides: Pass, not NaN
        ((0, 1000), (5, 1000), "Pass", "difference"),  # 0 vs 5: p = 0.035, not enough at 99 %
        ((0, 1000), (20, 1000), "Fail", "difference"),
        ((5, 1000), (0, 1000), "Pass", "ratio"),
        ((1, 1000), (2, 1000), "Pass", "ratio"),  # doubled, but from one error to two
        ((10, 1000), (30, 1000), "Fail", "ratio"),
        ((100, 10000), (104, 10000), "Pass", "ratio"),  # +4 %: within the tolerance
        ((10, 100000), (10, 50), "Inconclusive", "ratio"),  # 50 requests < min_samples
    ],
)
def test_error_outcomes(
    baseline: tuple[int, int], candidate: tuple[int, int], expected: str, measure: str
) -> None:
    verdict = judge.judge_errors(judge.ErrorCounts.of(*baseline), judge.ErrorCounts.of(*candidate))
    assert verdict.verdict.value == expected, verdict.message
    assert measure in verdict.measure
    text = json.dumps(verdict.to_dict(), allow_nan=False)  # never NaN or infinite
    assert "NaN" not in text
    if expected != "Inconclusive":
        assert verdict.effect is not None
        assert math.isfinite(verdict.effect)
        assert verdict.interval is not None
        assert all(math.isfinite(x) for x in verdict.interval)
        assert verdict.interval[0] <= verdict.effect <= verdict.interval[1]


def test_zero_against_five_errors_fails_at_95_percent() -> None:
    """The same evidence, a laxer confidence: p = 0.035 < 0.05."""
    verdict = judge.judge_errors(
        judge.ErrorCounts.of(0, 1000),
        judge.ErrorCounts.of(5, 1000),
        judge.JudgeSettings(confidence=0.95),
    )
    assert verdict.failed
    assert verdict.p_value == pytest.approx((1.05 / 2.05) ** 5)
    assert verdict.effect == pytest.approx(0.005)


def test_zero_errors_on_both_sides_says_so() -> None:
    verdict = judge.judge_errors(judge.ErrorCounts.of(0, 1000), judge.ErrorCounts.of(0, 1200))
    assert verdict.passed
    assert verdict.p_value == 1.0
    assert verdict.effect == 0.0
    assert verdict.message == "no errors on either side in 1000 and 1200 requests"


def test_tolerance_decides_between_significant_and_harmful() -> None:
    """+8 % more errors on a million requests each: significant, but within 10 %."""
    base, cand = judge.ErrorCounts.of(10_000, 1_000_000), judge.ErrorCounts.of(10_800, 1_000_000)
    strict = judge.judge_errors(base, cand, judge.JudgeSettings(tolerance=0.0))
    lenient = judge.judge_errors(base, cand, judge.JudgeSettings(tolerance=0.10))
    assert strict.failed
    assert lenient.passed
    assert lenient.interval is not None
    assert lenient.interval[1] < 0.13


def test_verdict_json_has_the_documented_keys() -> None:
    verdict = judge.judge_latency(samples(lognormal(1, 2000)), samples(lognormal(2, 2000)))
    data = json.loads(verdict.to_json())
    assert {"verdict", "pValue", "effect", "interval", "n", "test", "message", "checks"} <= set(
        data
    )
    assert data["n"] == {"baseline": 2000, "candidate": 2000}
    assert [check["name"] for check in data["checks"]] == ["shift", "tail", "spread"]
    for check in data["checks"]:
        assert {"verdict", "pValue", "effect", "interval", "n", "test", "message"} <= set(check)
        assert len(check["interval"]) == 2


def test_an_unbounded_interval_end_is_null_in_json() -> None:
    """Two errors against none: the ratio's upper end would be infinite."""
    verdict = judge.Verdict(
        verdict=judge.Outcome.PASS,
        test="t",
        message="m",
        n=judge.SampleSizes(1, 1),
        measure="x",
        p_value=0.5,
        effect=math.inf,
        interval=(0.1, math.inf),
    )
    assert verdict.to_dict()["interval"] == [0.1, None]
    assert verdict.to_dict()["effect"] is None
