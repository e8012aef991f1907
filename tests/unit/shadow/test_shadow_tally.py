"""The shadow comparison: pairs counted in a sidecar, merged over pods, judged against the
floor of stable's own disagreement."""

from __future__ import annotations

import math

import pytest

from modelrollout.core.api.judging import ShadowStage
from modelrollout.core.replay.quality import Prediction, PredictionReader
from modelrollout.core.shadow import (
    Answer,
    ShadowState,
    ShadowTally,
    judge_agreement,
    judge_shadow,
    merge_states,
)

READER = PredictionReader.create("response.payload.predictions[0]")


def score(value: float) -> Prediction:
    return READER.interpret(value)


def tally_of(run: str, pairs: list[tuple[float, float | None, float | None]]) -> ShadowTally:
    """Served score, candidate score (None: failed), stable's second score."""
    tally = ShadowTally(run, READER)
    for served, candidate, again in pairs:
        tally.offered += 1
        tally.add(
            score(served),
            Answer(score(candidate), 5.0)
            if candidate is not None
            else Answer(None, None, "timeout"),
            Answer(score(again) if again is not None else None, 4.0),
        )
    return tally


def state(run: str, n: int, candidate_flips: int, floor_flips: int) -> ShadowState:
    """``n`` pairs; the candidate crosses the threshold on ``candidate_flips`` of them,
    stable's second answer on ``floor_flips``."""
    pairs = [
        (0.9, 0.1 if i < candidate_flips else 0.9, 0.1 if i < floor_flips else 0.9)
        for i in range(n)
    ]
    return tally_of(run, pairs).state()


def test_a_tally_counts_agreement_scores_latency_and_errors():
    t = tally_of("r1", [(0.9, 0.8, 0.9), (0.9, 0.2, 0.9), (0.2, None, 0.2)]).state()
    assert (t.candidate.pairs, t.candidate.agreed) == (2, 1)
    assert (t.floor.pairs, t.floor.agreed) == (3, 3)
    assert t.candidate_errors == {"timeout": 1}
    assert t.candidate_latency.count == 2
    assert t.stable_latency.count == 3
    assert math.isclose(t.candidate.abs_diff.sum, 0.1 + 0.7)


def test_states_of_pods_merge_and_other_runs_are_left_out():
    a, b = state("r1", 100, 3, 1), state("r1", 50, 2, 0)
    old = state("r0", 1000, 1000, 0)
    merged = merge_states("r1", [a, b, old])
    assert (merged.candidate.pairs, merged.candidate.agreed) == (150, 145)
    assert (merged.floor.pairs, merged.floor.agreed) == (150, 149)
    assert merged.offered == 150
    assert merged.candidate_latency.count == 150


@pytest.mark.parametrize(
    ("n", "candidate_flips", "floor_flips", "tolerance", "outcome"),
    [
        (1000, 0, 0, 0.01, "Pass"),  # identical models
        (1000, 20, 18, 0.01, "Pass"),  # nondeterministic, but no worse than stable itself
        (1000, 200, 0, 0.01, "Fail"),  # a candidate that answers differently
        (1000, 200, 180, 0.05, "Pass"),  # as noisy as stable's own floor
        (1000, 60, 0, 0.05, "Pass"),  # 6 % more, but not surely beyond 5 %
        (2000, 300, 0, 0.05, "Fail"),  # 15 %: surely beyond 5 %
        (50, 50, 0, 0.01, "Inconclusive"),  # too few pairs, however bad
    ],
)
def test_the_candidate_is_judged_against_the_floor(
    n, candidate_flips, floor_flips, tolerance, outcome
):
    verdict = judge_agreement(
        state("r", n, candidate_flips, floor_flips),
        tolerance=tolerance,
        confidence=0.99,
        min_pairs=100,
    )
    assert verdict.outcome == outcome, verdict.message
    if outcome != "Inconclusive":
        assert verdict.interval is not None
        assert verdict.interval[0] <= verdict.excess <= verdict.interval[1]
        assert 0 <= verdict.p_value <= 1
    else:
        assert "at least 100" in verdict.message


def test_the_verdict_shows_its_figures():
    spec = ShadowStage(minPairs=100, maxExtraDisagreement=0.01)
    verdict = judge_shadow(state("r", 500, 0, 0), spec)
    assert verdict.outcome == "Pass"
    figures = verdict.figures
    assert figures["pairs"] == 500
    assert figures["agreement"] == 1.0
    assert figures["candidate_p99_ms"] == pytest.approx(5.0, rel=0.01)
    assert figures["stable_p99_ms"] == pytest.approx(4.0, rel=0.01)
