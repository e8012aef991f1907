"""The shadow stage: live requests sent again to the candidate, answers compared. Pure.

While the candidate is in shadow, the capture sidecar of every stable pod takes a sampled
share of the requests it has answered and sends each one twice more, at once: to the
candidate's Service, and to its own model container. The candidate's answers are never
served. Each sidecar pairs the answers by request:

* ``candidate``: stable's served answer against the candidate's (agreement, score
  difference);
* ``floor``: stable's served answer against stable's own second answer to the same
  request. A model that is not deterministic (sampling, batching, float reductions on a
  GPU) disagrees with itself; this is its noise floor, measured as Diffy does.

Both second answers leave the sidecar at the same moment, so their latencies are measured
under the same conditions and compare fairly.

The operator reads every stable pod's :class:`ShadowState`, merges them, and judges the
candidate's disagreement against the floor: it fails when the candidate disagrees more
often than stable disagrees with itself by more than the tolerance, with the stated
confidence (a Newcombe interval for the difference of two proportions).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from pydantic import Field

from modelrollout.core.api.base import ApiModel
from modelrollout.core.api.judging import ShadowStage
from modelrollout.core.judge import ErrorCounts, JudgeSettings, LatencyHistogram, judge_latency
from modelrollout.core.judge.proportions import newcombe_interval
from modelrollout.core.replay.accumulator import ComparisonAccumulator
from modelrollout.core.replay.histogram import HistogramState, LogHistogram
from modelrollout.core.replay.quality import Prediction, PredictionReader
from modelrollout.core.replay.result import (
    ComparisonState,
    comparison_from_state,
    comparison_state,
)

MAX_ERROR_KINDS = 16


class ShadowOrder(ApiModel):
    """What the operator asks of a stable pod's capture sidecar (POST /shadow)."""

    id: str = Field(
        min_length=1,
        max_length=128,
        description="The shadow run; a new id starts the counts again.",
    )
    target: str = Field(
        pattern=r"^https?://[^/]+$",
        max_length=512,
        description="Scheme, host and port of the candidate; each request keeps its path.",
    )
    sample: float = Field(gt=0, le=1, description="Fraction of answered requests shadowed.")
    ttl_seconds: float = Field(
        default=120,
        gt=0,
        le=3600,
        description="The sidecar stops shadowing this long after the last order.",
    )
    timeout_seconds: float = Field(
        default=10, gt=0, le=300, description="Timeout of one shadow request."
    )


class ShadowState(ApiModel):
    """What a sidecar has counted for one shadow run; states of several pods merge."""

    id: str = Field(description="The shadow run these counts belong to.")
    offered: int = Field(default=0, ge=0, description="Requests sampled for the shadow.")
    dropped: int = Field(
        default=0, ge=0, description="Sampled requests dropped because the queue was full."
    )
    candidate: ComparisonState | None = Field(
        default=None, description="Stable's served answers against the candidate's."
    )
    floor: ComparisonState | None = Field(
        default=None, description="Stable's served answers against its own second answers."
    )
    candidate_latency: HistogramState | None = Field(
        default=None, description="Latency of the candidate's answers, ms."
    )
    stable_latency: HistogramState | None = Field(
        default=None, description="Latency of stable's second answers, ms."
    )
    candidate_errors: dict[str, int] = Field(
        default_factory=dict, description="Failed candidate requests by kind."
    )
    stable_errors: dict[str, int] = Field(
        default_factory=dict, description="Failed second requests to stable, by kind."
    )


@dataclass(frozen=True)
class Answer:
    """One shadow request's outcome: a prediction and its latency, or an error kind."""

    prediction: Prediction | None
    latency_ms: float | None
    error: str | None = None


class ShadowTally:
    """The counts of one shadow run in one sidecar."""

    def __init__(self, run: str, reader: PredictionReader) -> None:
        self.id = run
        self.reader = reader
        self.offered = 0
        self.dropped = 0
        self.candidate = ComparisonAccumulator()
        self.floor = ComparisonAccumulator()
        self.candidate_latency = LogHistogram()
        self.stable_latency = LogHistogram()
        self.candidate_errors: dict[str, int] = {}
        self.stable_errors: dict[str, int] = {}

    def add(self, served: Prediction | None, candidate: Answer, again: Answer) -> None:
        """One shadowed request: stable's served prediction and the two second answers."""
        self.candidate.add(candidate.prediction, served, self.reader)
        self.floor.add(again.prediction, served, self.reader)
        for answer, latency, errors in (
            (candidate, self.candidate_latency, self.candidate_errors),
            (again, self.stable_latency, self.stable_errors),
        ):
            if answer.error is not None:
                kind = answer.error if len(errors) < MAX_ERROR_KINDS else "other"
                errors[kind] = errors.get(kind, 0) + 1
            elif answer.latency_ms is not None:
                latency.add(answer.latency_ms)

    def state(self) -> ShadowState:
        return ShadowState(
            id=self.id,
            offered=self.offered,
            dropped=self.dropped,
            candidate=comparison_state(self.candidate),
            floor=comparison_state(self.floor),
            candidate_latency=self.candidate_latency.to_state(),
            stable_latency=self.stable_latency.to_state(),
            candidate_errors=dict(self.candidate_errors),
            stable_errors=dict(self.stable_errors),
        )


def merge_states(run: str, states: Iterable[ShadowState]) -> ShadowState:
    """The sum of the pods' counts for ``run``; states of other runs are left out."""
    offered = dropped = 0
    candidate, floor = ComparisonAccumulator(), ComparisonAccumulator()
    candidate_latency, stable_latency = LogHistogram(), LogHistogram()
    candidate_errors: dict[str, int] = {}
    stable_errors: dict[str, int] = {}
    for state in states:
        if state.id != run:
            continue
        offered += state.offered
        dropped += state.dropped
        if state.candidate is not None:
            candidate.merge(comparison_from_state(state.candidate))
        if state.floor is not None:
            floor.merge(comparison_from_state(state.floor))
        if state.candidate_latency is not None:
            candidate_latency.merge(LogHistogram.from_state(state.candidate_latency))
        if state.stable_latency is not None:
            stable_latency.merge(LogHistogram.from_state(state.stable_latency))
        for mine, theirs in (
            (candidate_errors, state.candidate_errors),
            (stable_errors, state.stable_errors),
        ):
            for kind, count in theirs.items():
                mine[kind] = mine.get(kind, 0) + count
    return ShadowState(
        id=run,
        offered=offered,
        dropped=dropped,
        candidate=comparison_state(candidate),
        floor=comparison_state(floor),
        candidate_latency=candidate_latency.to_state(),
        stable_latency=stable_latency.to_state(),
        candidate_errors=candidate_errors,
        stable_errors=stable_errors,
    )


# -- the verdict ------------------------------------------------------------------------

Outcome = Literal["Pass", "Fail", "Inconclusive"]


@dataclass(frozen=True)
class Agreement:
    """The candidate's disagreement judged against the floor."""

    outcome: Outcome
    pairs: int
    floor_pairs: int
    agreement: float | None
    floor_agreement: float | None
    excess: float | None
    """Candidate's disagreement rate minus the floor's."""
    interval: tuple[float, float] | None
    """Two-sided interval of ``excess`` at the confidence level."""
    p_value: float | None
    """One-sided: the chance of an excess this large if it were at most the tolerance."""
    mean_abs_score_diff: float | None
    floor_mean_abs_score_diff: float | None
    message: str


def _z(confidence: float) -> float:
    """The standard normal quantile of ``confidence``."""
    return NormalDist().inv_cdf(confidence)


def _mean_abs(state: ComparisonState | None) -> float | None:
    if state is None or state.scored == 0:
        return None
    histogram = state.abs_diff
    return histogram.sum / histogram.count if histogram.count else None


def judge_agreement(
    state: ShadowState, *, tolerance: float, confidence: float, min_pairs: int
) -> Agreement:
    """Fail when the candidate's disagreement exceeds the floor's by more than
    ``tolerance`` with ``confidence`` (the interval's lower end is above it); Pass with at
    least ``min_pairs`` pairs on both sides otherwise; Inconclusive below that."""
    empty = comparison_state(ComparisonAccumulator())
    cand = state.candidate or empty
    floor = state.floor or empty
    n1, n2 = cand.pairs, floor.pairs
    agreement = cand.agreed / n1 if n1 else None
    floor_agreement = floor.agreed / n2 if n2 else None
    scores = _mean_abs(state.candidate), _mean_abs(state.floor)
    if n1 < min_pairs or n2 < min_pairs:
        return Agreement(
            "Inconclusive",
            n1,
            n2,
            agreement,
            floor_agreement,
            None,
            None,
            None,
            *scores,
            f"{n1} candidate and {n2} floor pairs; at least {min_pairs} of each are needed",
        )
    x1, x2 = n1 - cand.agreed, n2 - floor.agreed
    z_two = _z(1 - (1 - confidence) / 2)
    z_one = _z(confidence)
    excess = x1 / n1 - x2 / n2
    disagreeing = ErrorCounts(x1, n1), ErrorCounts(x2, n2)
    low, high = newcombe_interval(*disagreeing, z_two)
    one_sided_low, _ = newcombe_interval(*disagreeing, z_one)
    p1, p2 = x1 / n1, x2 / n2
    se = math.sqrt(max(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2, 1e-12))
    p_value = 0.5 * math.erfc(((excess - tolerance) / se) / math.sqrt(2))
    failed = one_sided_low > tolerance
    summary = (
        f"agreement {agreement:.2%} against stable's own {floor_agreement:.2%} "
        f"({n1} and {n2} pairs): {excess:+.2%} more disagreement, "
        f"{confidence:.0%} interval [{low:+.2%}, {high:+.2%}], tolerance {tolerance:.2%}, "
        f"p={p_value:.3g}"
    )
    return Agreement(
        "Fail" if failed else "Pass",
        n1,
        n2,
        agreement,
        floor_agreement,
        excess,
        (low, high),
        p_value,
        *scores,
        summary,
    )


@dataclass(frozen=True)
class ShadowVerdict:
    """The shadow step's verdict and the figures its status shows."""

    outcome: Outcome
    message: str
    figures: dict[str, object]


def judge_shadow(state: ShadowState, spec: ShadowStage) -> ShadowVerdict:
    """The candidate's answers in shadow against stable's and against stable's floor."""
    agreement = judge_agreement(
        state,
        tolerance=spec.max_extra_disagreement,
        confidence=spec.confidence,
        min_pairs=spec.min_pairs,
    )
    candidate_latency = _histogram(state.candidate_latency)
    stable_latency = _histogram(state.stable_latency)
    figures: dict[str, object] = {
        "pairs": agreement.pairs,
        "floor_pairs": agreement.floor_pairs,
        "agreement": _round(agreement.agreement),
        "floor_agreement": _round(agreement.floor_agreement),
        "excess_disagreement": _round(agreement.excess),
        "interval": None if agreement.interval is None else [_round(v) for v in agreement.interval],
        "p_value": _round(agreement.p_value),
        "mean_abs_score_diff": _round(agreement.mean_abs_score_diff),
        "floor_mean_abs_score_diff": _round(agreement.floor_mean_abs_score_diff),
        "candidate_p99_ms": _round(candidate_latency.quantile(0.99)),
        "stable_p99_ms": _round(stable_latency.quantile(0.99)),
        "candidate_errors": sum(state.candidate_errors.values()),
        "dropped": state.dropped,
    }
    outcome, message = agreement.outcome, agreement.message
    if spec.latency_tolerance is not None:
        latency = judge_shadow_latency(
            stable_latency, candidate_latency, spec.latency_tolerance, spec.confidence
        )
        message = f"{message}; latency: {latency.message}"
        if latency.outcome == "Fail":
            outcome = "Fail"
        elif latency.outcome == "Inconclusive" and outcome == "Pass":
            outcome = "Inconclusive"
    figures["message"] = message
    return ShadowVerdict(outcome, message, figures)


@dataclass(frozen=True)
class LatencyJudgement:
    outcome: Outcome
    message: str


def judge_shadow_latency(
    stable: LogHistogram, candidate: LogHistogram, tolerance: float, confidence: float
) -> LatencyJudgement:
    """The candidate's shadow latency against stable's second answers, sent at the same
    moments, with the latency judge (shift, tail and spread)."""
    indexes = sorted(set(stable.counts) | set(candidate.counts))
    verdict = judge_latency(
        _binned(stable, indexes),
        _binned(candidate, indexes),
        JudgeSettings(tolerance=tolerance, confidence=confidence),
    )
    checks = "; ".join(f"{c.name} {c.verdict.value}: {c.message}" for c in verdict.checks)
    return LatencyJudgement(verdict.verdict.value, f"{verdict.verdict.value} ({checks})")


def _binned(histogram: LogHistogram, indexes: list[int]) -> LatencyHistogram:
    """A log histogram as bucket counts on ``indexes`` (bucket i ends at gamma**i)."""
    gamma = (1 + histogram.alpha) / (1 - histogram.alpha)
    bounds = [histogram.min_value, *(gamma**i for i in indexes), math.inf]
    counts = [histogram.zero_count, *(histogram.counts.get(i, 0) for i in indexes), 0]
    return LatencyHistogram.of(bounds, counts, cumulative=False, field="shadow latency")


def _histogram(state: HistogramState | None) -> LogHistogram:
    return LogHistogram() if state is None else LogHistogram.from_state(state)


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")
