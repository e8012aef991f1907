"""What a judge in the analysis reads and how its verdict becomes a measurement. Pure.

A judge compares the judged version (the candidate while it bakes; the promoted version
during a production watch) with its baseline (stable while baking; the previous version,
before the promotion, during a watch) over one window: everything since the stage began,
so that samples accumulate. Each look's confidence is adjusted for the number of looks the
stage will take, so that looking every interval keeps the false rollback rate bounded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from modelrollout.core import names
from modelrollout.core.analysis import render_query
from modelrollout.core.api.base import parse_duration
from modelrollout.core.api.judging import Judge
from modelrollout.core.api.modeldeployment import ModelDeployment
from modelrollout.core.clock import parse_rfc3339
from modelrollout.core.judge import (
    ErrorCounts,
    JudgeSettings,
    LatencyHistogram,
    Outcome,
    Verdict,
    judge_errors,
    judge_latency,
    look_confidence,
)
from modelrollout.core.rollout import active_analysis

MIN_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Side:
    """One side of the comparison: which version, its Service, and where in time."""

    version: str
    service: str
    window_seconds: int
    offset_seconds: int = 0


@dataclass(frozen=True)
class JudgeQueries:
    """The PromQL of one side: the histogram buckets, or the request and error counts."""

    buckets: str | None = None
    total: str | None = None
    errors: str | None = None


def window_seconds(stage_elapsed: float, interval: float) -> int:
    """The window a judge reads: everything since the stage began, at least one interval
    (and a minute, so that Prometheus has two scrapes to take an increase from)."""
    return math.ceil(max(stage_elapsed, interval, MIN_WINDOW_SECONDS))


def queries(judge: Judge, variables: Mapping[str, str], side: Side, *, field: str) -> JudgeQueries:
    """The queries of ``side`` for ``judge``; ``field`` is the judge's path in the spec,
    named when a selector uses an unknown variable."""
    scope = {**variables, "version": side.version, "service": side.service}
    offset = f" offset {side.offset_seconds}s" if side.offset_seconds > 0 else ""
    window = f"[{side.window_seconds}s]{offset}"
    if judge.latency is not None and judge.metric == "Latency":
        source = judge.latency
        selector = render_query(source.selector, scope, field=f"{field}.latency.selector")
        return JudgeQueries(
            buckets=f"sum by (le) (increase({source.histogram}_bucket{{{selector}}}{window}))"
        )
    assert judge.errors is not None, "the API requires errors for metric Errors"
    source_e = judge.errors
    selector = render_query(source_e.selector, scope, field=f"{field}.errors.selector")
    failed = source_e.error_selector
    if selector.strip():
        failed = f"{selector}, {failed}"
    return JudgeQueries(
        total=f"sum(increase({source_e.counter}{{{selector}}}{window}))",
        errors=f"sum(increase({source_e.counter}{{{failed}}}{window}))",
    )


def looks(done: int, stage_seconds: float | None, interval: float) -> tuple[int, int]:
    """(this look's number, the stage's planned number of looks): ``done`` measurements so
    far, one per interval over ``stage_seconds`` (unknown: this look is the last)."""
    look = done + 1
    if stage_seconds is None or interval <= 0:
        return look, look
    return look, max(look, math.ceil(stage_seconds / interval))


def bucket_counts(
    series: list[tuple[dict[str, str], float]], *, unit_ms: float, field: str
) -> tuple[list[float], list[float]]:
    """Cumulative bucket counts out of ``sum by (le)`` series, sorted by bound, with the
    bounds in milliseconds (``+Inf`` last). Raises ValueError naming ``field`` for series
    without an ``le`` label or with one that is not a number."""
    pairs: list[tuple[float, float]] = []
    for labels, value in series:
        text = labels.get("le")
        if text is None:
            raise ValueError(f"{field}: a series has no le label: {labels}")
        try:
            bound = float(text)
        except ValueError:
            raise ValueError(f"{field}: le={text!r} is not a number") from None
        pairs.append((bound if math.isinf(bound) else bound * unit_ms, max(value, 0.0)))
    pairs.sort()
    counts: list[float] = []
    for _, count in pairs:  # increase() of each bucket is estimated on its own: keep order
        counts.append(max(count, counts[-1] if counts else 0.0))
    return [bound for bound, _ in pairs], counts


def sides(md: ModelDeployment, now: datetime) -> tuple[Side, Side]:
    """(judged, baseline) of the current stage. While baking: the candidate and stable, now,
    over the time since the bake began. During a production watch: the promoted version
    now, and the previous version over as long a time before the promotion."""
    status = md.status
    assert status is not None, "judges run only once the rollout has a status"
    active = active_analysis(md)
    interval = parse_duration(active.interval) if active is not None else 60.0
    started = parse_rfc3339(status.stage_started_at) if status.stage_started_at else now
    elapsed = max((now - started).total_seconds(), 0.0)
    seconds = window_seconds(elapsed, interval)
    name = str(md.metadata["name"])
    if status.phase == "Production":
        previous = status.revisions[0].version if status.revisions else ""
        return (
            Side(status.stable_version or "", names.stable_name(name), seconds),
            Side(previous, names.stable_name(name), seconds, math.ceil(elapsed)),
        )
    return (
        Side(status.candidate_version or "", names.candidate_name(name), seconds),
        Side(status.stable_version or "", names.stable_name(name), seconds),
    )


def stage_seconds(md: ModelDeployment) -> float | None:
    """How long the current stage is planned to last: the bake's steps, or the watch."""
    spec = md.spec
    if md.status is not None and md.status.phase == "Production":
        watch = spec.stages.production.watch
        return parse_duration(watch.duration) if watch is not None else None
    if spec.stages.baking is None:
        return None
    return sum(parse_duration(s.duration) for s in spec.stages.baking.steps)


def _settings(judge: Judge, look: tuple[int, int]) -> JudgeSettings:
    return JudgeSettings(
        tolerance=judge.tolerance,
        confidence=look_confidence(judge.confidence, *look),
        min_samples=judge.min_samples,
    )


def _measurement(verdict: Verdict, look: tuple[int, int]) -> tuple[float | None, str]:
    """A verdict as a measurement: 1 for Fail, 0 for Pass, no value for Inconclusive, and
    the verdict's evidence in words."""
    value = {Outcome.FAIL: 1.0, Outcome.PASS: 0.0}.get(verdict.verdict)
    parts = [f"{verdict.verdict.value}: {verdict.message}"]
    parts += [f"{c.name} {c.verdict.value}: {c.message}" for c in verdict.checks]
    n = verdict.n
    parts.append(
        f"n={n.baseline} baseline, {n.candidate} judged; look {look[0]} of {look[1]}, "
        f"confidence {verdict.confidence or 0:.6g}"
    )
    return value, "; ".join(parts)


def evaluate_latency(
    judge: Judge,
    baseline: tuple[list[float], list[float]],
    judged: tuple[list[float], list[float]],
    look: tuple[int, int],
) -> tuple[float | None, str]:
    """Judge the latency histograms (bounds in ms, cumulative counts) of both sides."""
    for side, (bounds, _) in (("baseline", baseline), ("judged version", judged)):
        if not bounds:
            return None, f"Inconclusive: no latency histogram of the {side} in the window"
    verdict = judge_latency(
        LatencyHistogram.of(*baseline, cumulative=True, field="baseline"),
        LatencyHistogram.of(*judged, cumulative=True, field="candidate"),
        _settings(judge, look),
    )
    return _measurement(verdict, look)


def evaluate_errors(
    judge: Judge,
    baseline: tuple[float, float],
    judged: tuple[float, float],
    look: tuple[int, int],
) -> tuple[float | None, str]:
    """Judge the (failed, all) request counts of both sides; increases are rounded."""
    counts = [
        ErrorCounts.of(float(round(min(e, t))), float(round(t)), field=side)
        for side, (e, t) in (("baseline", baseline), ("candidate", judged))
    ]
    return _measurement(judge_errors(counts[0], counts[1], _settings(judge, look)), look)
