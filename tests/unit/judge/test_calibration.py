"""False-fail rates on healthy pairs, simulated: the confidence must mean what it says.

Each test draws healthy pairs (the same distribution on both sides) and counts Fails. At
confidence 0.9 the rate must stay below 10 %; the bounds allow for the simulation's own
noise (a binomial count of 200 draws has a standard deviation of about 2 %).
"""

from __future__ import annotations

import numpy as np

from modelrollout.core import judge
from support.judging import PROMETHEUS_BUCKETS, histogram, samples

DRAWS = 200
SETTINGS = judge.JudgeSettings(confidence=0.9, tolerance=0.0)


def _healthy(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.lognormal(np.log(60), 0.5, n), rng.lognormal(np.log(60), 0.5, n)


def test_samples_fail_healthy_pairs_at_most_as_often_as_the_confidence_allows() -> None:
    fails = {"any": 0, "shift": 0, "tail": 0, "spread": 0}
    for seed in range(DRAWS):
        b, c = _healthy(seed, 1500)
        verdict = judge.judge_latency(samples(b), samples(c), SETTINGS)
        fails["any"] += verdict.failed
        for check in verdict.checks:
            fails[check.name] += check.failed
    assert fails["any"] <= 0.15 * DRAWS, fails
    for name in ("shift", "tail", "spread"):  # each check runs at 1 - 0.1/3
        assert fails[name] <= 0.08 * DRAWS, fails


def test_coarse_histograms_fail_healthy_pairs_no_more_often() -> None:
    fails = 0
    for seed in range(DRAWS):
        b, c = _healthy(seed, 1500)
        verdict = judge.judge_latency(
            histogram(b, PROMETHEUS_BUCKETS), histogram(c, PROMETHEUS_BUCKETS), SETTINGS
        )
        fails += verdict.failed
    assert fails <= 0.15 * DRAWS


def test_errors_fail_healthy_pairs_at_most_as_often_as_the_confidence_allows() -> None:
    rng = np.random.default_rng(5)
    fails = 0
    for _ in range(2000):
        xb, xc = rng.binomial(2000, 0.003, size=2)
        fails += judge.judge_errors(
            judge.ErrorCounts.of(int(xb), 2000), judge.ErrorCounts.of(int(xc), 2000), SETTINGS
        ).failed
    assert fails <= 0.1 * 2000


def test_repeated_looks_with_alpha_spending_keep_the_false_rollback_rate() -> None:
    """Five cumulative looks on a healthy pair: with look_confidence the chance of any Fail
    stays within 10 %; judging every look at 0.9 would exceed it."""
    looks, per_look, draws = 5, 300, 120
    spent_fails = naive_fails = 0
    for seed in range(draws):
        b, c = _healthy(seed, per_look * looks)
        spent = naive = False
        for k in range(1, looks + 1):
            window_b, window_c = samples(b[: per_look * k]), samples(c[: per_look * k])
            confidence = judge.look_confidence(0.9, k, looks)
            settings = judge.JudgeSettings(confidence=confidence, tolerance=0.0)
            spent |= judge.judge_latency(window_b, window_c, settings).failed
            naive |= judge.judge_latency(window_b, window_c, SETTINGS).failed
        spent_fails += spent
        naive_fails += naive
    assert spent_fails <= 0.14 * draws, (spent_fails, naive_fails)
    assert naive_fails >= spent_fails
