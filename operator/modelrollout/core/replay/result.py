"""The result of a replay (``result.json``), shard merging and the result log line.

A result has two layers:

* the *report*: counts, error types, latency percentiles, rates, quality, comparison,
  timeline and verdict, for people and for the operator's status;
* the *state*: the mergeable internals the report is computed from (histogram buckets,
  confusion counts, score bins, per-second counters).

The report is always derived from the state, never the other way round. That is what
makes :func:`merge_results` exact: it merges the states of the shards (adding counts,
adding histogram buckets) and derives the report again, so percentiles of a merged
result are computed from the merged histogram and never averaged. Merging the shards of
a run gives the same counts, percentiles and quality as a single process would have
measured.

Rates are the exception: shards run side by side, so the merged target and achieved rates
are the *sums* of the shard rates, and the merged duration is the longest shard's.

The operator reads a shard's result from its pod log: ``--result-line`` prints it as the
last stdout line, ``MODELROLLOUT_RESULT {...}``. That line omits the derived ``timeline``
(it is rebuilt from the state by :func:`parse_result_line`) to stay compact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer
from pydantic.alias_generators import to_camel

from modelrollout.core import jobs, schema
from modelrollout.core.api.base import ApiModel, parse_duration
from modelrollout.core.api.common import EmbeddedObject
from modelrollout.core.replay import capacity
from modelrollout.core.replay.accumulator import (
    TIMELINE_ACCURACY,
    ComparisonAccumulator,
    EndpointAccumulator,
    ReplayAccumulator,
    TimelineBucket,
)
from modelrollout.core.replay.capacity import CapacityReport
from modelrollout.core.replay.criteria import CheckResult, SuccessCriteria, Verdict
from modelrollout.core.replay.histogram import HistogramState, LogHistogram, decode_counts
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.quality import QualityAccumulator, QualityState
from modelrollout.core.replay.run import RunSettings
from modelrollout.core.replay.selection import MALFORMED_SAMPLES

SCHEMA_VERSION = "modelrollout.io/replay-result/v1"
RESULT_LINE_PREFIX = "MODELROLLOUT_RESULT "


# -- report models ------------------------------------------------------------------------


class LatencySummary(ApiModel):
    """Percentiles in milliseconds; each within 0.5 % of the true sample value."""

    count: int = Field(default=0, ge=0, description="Number of measured responses.")
    mean: float | None = Field(default=None, description="Mean, exact.")
    min: float | None = Field(default=None, description="Minimum, exact.")
    p50: float | None = Field(default=None, description="Median.")
    p90: float | None = Field(default=None, description="90th percentile.")
    p95: float | None = Field(default=None, description="95th percentile.")
    p99: float | None = Field(default=None, description="99th percentile.")
    p999: float | None = Field(default=None, description="99.9th percentile.")
    max: float | None = Field(default=None, description="Maximum, exact.")


class RateReport(ApiModel):
    """Send rates in requests per second."""

    target: float = Field(description="Scheduled sends divided by the planned run length.")
    achieved: float = Field(
        description=(
            "Sends that left divided by the actual run length (the planned length plus the "
            "lag of the last send)."
        )
    )


class Counts(ApiModel):
    """Every line and every send, accounted for.

    scheduled = sent + dropped; sent = ok + errors; scheduled = selected - omitted + repeated.
    """

    lines: int = Field(default=0, ge=0, description="Non-blank dataset lines read.")
    selected: int = Field(default=0, ge=0, description="Well-formed events the selection kept.")
    filtered: int = Field(
        default=0, ge=0, description="Well-formed events left out by the selection."
    )
    malformed: int = Field(default=0, ge=0, description="Lines that could not be parsed.")
    scheduled: int = Field(default=0, ge=0, description="Sends the schedule called for.")
    sent: int = Field(default=0, ge=0, description="Sends that left (ok + errors).")
    ok: int = Field(default=0, ge=0, description="Successful responses.")
    errors: int = Field(default=0, ge=0, description="Failed sends, all types.")
    dropped: int = Field(
        default=0, ge=0, description="Sends that could not leave within the max lag."
    )
    omitted: int = Field(
        default=0, ge=0, description="Selected events never sent because the run ended first."
    )
    repeated: int = Field(
        default=0, ge=0, description="Sends that repeated an event (the dataset was looped)."
    )


class MalformedLine(ApiModel):
    """A dataset line that could not be used."""

    line: int = Field(ge=1, description="Line number in the dataset (1-based).")
    reason: str = Field(description="Why, naming the field.")


class TimelinePoint(ApiModel):
    """One second of the run, by intended send time."""

    second: int = Field(ge=0, description="Seconds since the run start.")
    sent: int = Field(ge=0, description="Sends that left.")
    ok: int = Field(ge=0, description="Successful responses.")
    errors: int = Field(ge=0, description="Failed sends.")
    dropped: int = Field(ge=0, description="Dropped sends.")
    p99_ms: float | None = Field(
        default=None, description="p99 latency of the second's ok responses (2 % accuracy)."
    )


class QualityReport(ApiModel):
    """Prediction quality on labeled events."""

    labeled: int = Field(ge=0, description="Predictions with a ground-truth label.")
    unlabeled: int = Field(ge=0, description="Predictions without a label.")
    correct: int = Field(ge=0, description="Labeled predictions that were right.")
    accuracy: float | None = Field(default=None, description="correct / labeled.")
    precision: float | None = Field(default=None, description="Of the positive class.")
    recall: float | None = Field(default=None, description="Of the positive class.")
    f1: float | None = Field(default=None, description="Harmonic mean of precision and recall.")
    auc: float | None = Field(
        default=None,
        description="ROC AUC from 0.001-wide score bins (see the docs for the error bound).",
    )
    true_positives: int = Field(ge=0, description="Predicted and actually positive.")
    false_positives: int = Field(ge=0, description="Predicted positive, actually negative.")
    true_negatives: int = Field(ge=0, description="Predicted and actually negative.")
    false_negatives: int = Field(ge=0, description="Predicted negative, actually positive.")


class EndpointCounts(ApiModel):
    """Send outcomes of one endpoint."""

    scheduled: int = Field(ge=0, description="Sends the schedule called for.")
    sent: int = Field(ge=0, description="Sends that left.")
    ok: int = Field(ge=0, description="Successful responses.")
    errors: int = Field(ge=0, description="Failed sends.")
    dropped: int = Field(ge=0, description="Sends dropped past the max lag.")


class EndpointReport(ApiModel):
    """Operational measurements of the baseline endpoint."""

    url: str = Field(description="The endpoint URL.")
    counts: EndpointCounts = Field(description="Send outcomes.")
    errors: dict[str, int] = Field(default_factory=dict, description="Errors by type.")
    latency_ms: LatencySummary = Field(description="Latency from the intended send time.")
    service_time_ms: LatencySummary = Field(description="Latency from the actual send time.")
    availability: float | None = Field(default=None, description="ok / sent.")
    error_rate: float | None = Field(default=None, description="errors / sent.")
    drop_rate: float | None = Field(default=None, description="dropped / scheduled.")
    throughput: float = Field(description="Successful responses per second.")
    quality: QualityReport | None = Field(default=None, description="Quality when labeled.")


class ScoreDiff(ApiModel):
    """Target score minus baseline score, over pairs where both returned a score."""

    count: int = Field(ge=0, description="Pairs of scores.")
    mean: float | None = Field(default=None, description="Mean signed difference.")
    mean_abs: float | None = Field(default=None, description="Mean absolute difference.")
    p50_abs: float | None = Field(default=None, description="Median absolute difference.")
    p95_abs: float | None = Field(default=None, description="95th percentile absolute difference.")
    max_abs: float | None = Field(default=None, description="Largest absolute difference.")


class Deltas(ApiModel):
    """Target minus baseline (positive: the target is higher)."""

    p50_ms: float | None = Field(default=None, description="p50 latency difference, ms.")
    p95_ms: float | None = Field(default=None, description="p95 latency difference, ms.")
    p99_ms: float | None = Field(default=None, description="p99 latency difference, ms.")
    mean_ms: float | None = Field(default=None, description="Mean latency difference, ms.")
    p99_ratio: float | None = Field(default=None, description="Target p99 / baseline p99.")
    error_rate: float | None = Field(default=None, description="Error rate difference.")
    availability: float | None = Field(default=None, description="Availability difference.")
    accuracy: float | None = Field(default=None, description="Accuracy difference.")
    auc: float | None = Field(default=None, description="AUC difference.")


class ComparisonReport(ApiModel):
    """The target side by side with the baseline on the same events."""

    baseline: EndpointReport = Field(description="The baseline's own measurements.")
    pairs: int = Field(ge=0, description="Sends where both returned a prediction.")
    agreed: int = Field(ge=0, description="Pairs predicting the same class.")
    agreement: float | None = Field(default=None, description="agreed / pairs.")
    target_only_ok: int = Field(ge=0, description="Sends only the target answered usefully.")
    baseline_only_ok: int = Field(ge=0, description="Sends only the baseline answered usefully.")
    score_diff: ScoreDiff | None = Field(default=None, description="Score differences.")
    deltas: Deltas = Field(description="Latency, error and quality differences.")


class ShardInfo(ApiModel):
    """Which part of a sharded run this result covers."""

    index: int | None = Field(default=None, ge=0, description="Shard index; absent when merged.")
    count: int = Field(default=1, ge=1, description="Number of shards of the run.")
    merged: int = Field(default=1, ge=1, description="Number of shard results merged in.")


# -- state models -------------------------------------------------------------------------


class TimelineState(ApiModel):
    """Mergeable counters of one second."""

    second: int = Field(ge=0, description="Seconds since the run start.")
    sent: int = Field(default=0, ge=0, description="Sends that left.")
    ok: int = Field(default=0, ge=0, description="Successful responses.")
    errors: int = Field(default=0, ge=0, description="Failed sends.")
    dropped: int = Field(default=0, ge=0, description="Dropped sends.")
    zero: int = Field(default=0, ge=0, description="Latencies below the histogram minimum.")
    latency: list[int] = Field(
        default_factory=list,
        description="Latency histogram buckets (2 % accuracy), run-encoded like histograms.",
    )


class EndpointState(ApiModel):
    """Mergeable internals of one endpoint."""

    scheduled: int = Field(ge=0, description="Sends scheduled.")
    sent: int = Field(ge=0, description="Sends that left.")
    ok: int = Field(ge=0, description="Successful responses.")
    dropped: int = Field(ge=0, description="Dropped sends.")
    errors: dict[str, int] = Field(default_factory=dict, description="Errors by type.")
    planned_seconds: float = Field(ge=0, description="Planned run length.")
    run_seconds: float = Field(ge=0, description="Actual run length.")
    target_rate: float = Field(ge=0, description="Target send rate (sum over merged shards).")
    achieved_rate: float = Field(ge=0, description="Achieved rate (sum over merged shards).")
    throughput: float = Field(ge=0, description="ok per second (sum over merged shards).")
    last_offset: float = Field(description="Intended time of the last send.")
    last_lag: float = Field(description="Lag of the last send, seconds.")
    latency: HistogramState = Field(description="Latency from the intended time, ms.")
    service_time: HistogramState = Field(description="Latency from the actual send, ms.")
    send_lag: HistogramState = Field(description="Actual minus intended send time, ms.")
    timeline: list[TimelineState] = Field(default_factory=list, description="Per second.")
    quality: QualityState = Field(description="Quality counts.")


class ComparisonState(ApiModel):
    """Mergeable internals of the comparison."""

    pairs: int = Field(ge=0, description="Pairs of predictions.")
    agreed: int = Field(ge=0, description="Agreeing pairs.")
    target_only: int = Field(ge=0, description="Only the target answered.")
    baseline_only: int = Field(ge=0, description="Only the baseline answered.")
    neither: int = Field(ge=0, description="Neither answered.")
    scored: int = Field(ge=0, description="Pairs of scores.")
    diff_sum: float = Field(description="Sum of signed score differences.")
    abs_diff: HistogramState = Field(description="Histogram of absolute score differences.")


class ReplayState(ApiModel):
    """Everything needed to merge this result with others exactly."""

    target: EndpointState = Field(description="The target endpoint.")
    baseline: EndpointState | None = Field(default=None, description="The baseline endpoint.")
    comparison: ComparisonState | None = Field(default=None, description="The comparison.")


SUMMARY_DIGITS = 6
"""Floats in a summary keep six significant digits: far below the measurement error, and
readable in ``kubectl get``."""


class ApiShape(ApiModel):
    """JSON Schemas inferred from the requests sent and the target's successful answers
    (empty when none of them was a JSON document)."""

    request: EmbeddedObject = Field(
        default_factory=dict, description="Schema of the request bodies (JSON documents only)."
    )
    response: EmbeddedObject = Field(
        default_factory=dict, description="Schema of the answers (JSON documents only)."
    )
    request_samples: int = Field(default=0, ge=0, description="Request bodies looked at.")
    response_samples: int = Field(default=0, ge=0, description="Answers looked at.")

    def merged(self, other: ApiShape) -> ApiShape:
        def both(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
            return b if not a else a if not b else schema.merge(a, b)

        return ApiShape(
            request=both(self.request, other.request),
            response=both(self.response, other.response),
            request_samples=self.request_samples + other.request_samples,
            response_samples=self.response_samples + other.response_samples,
        )


class ReplaySummary(ApiModel):
    """The measurements of a run without its mergeable state, timeline and settings: what a
    ReplayTest's status shows. Every field is the result's field of the same name."""

    duration_seconds: float = Field(ge=0, description="Wall time of the run (longest shard).")
    rate: RateReport = Field(description="Target and achieved send rates.")
    counts: Counts = Field(description="Lines and sends, all accounted for.")
    errors: dict[str, int] = Field(
        default_factory=dict,
        description="Errors by type: http_<code>, timeout, connection, invalid_response.",
    )
    latency_ms: LatencySummary = Field(
        description="Latency of ok responses from the intended send time (includes send lag)."
    )
    service_time_ms: LatencySummary = Field(
        description="Latency of ok responses from the actual send time."
    )
    send_lag_ms: LatencySummary = Field(
        description="How late sends left compared with their intended time."
    )
    availability: float | None = Field(default=None, description="ok / sent.")
    error_rate: float | None = Field(default=None, description="errors / sent.")
    drop_rate: float | None = Field(default=None, description="dropped / scheduled.")
    throughput: float = Field(ge=0, description="Successful responses per second.")
    quality: QualityReport | None = Field(
        default=None, description="Prediction quality, when events carry labels."
    )
    comparison: ComparisonReport | None = Field(
        default=None, description="Side-by-side comparison, when a baseline was given."
    )
    capacity: CapacityReport | None = Field(
        default=None,
        description="The highest rate at which p99 stayed within capacityP99Ms, when asked.",
    )
    api: ApiShape | None = Field(
        default=None,
        description="The shape of the requests sent and of the target's answers, inferred.",
    )
    warnings: list[str] = Field(
        default_factory=list, description="Things that make the measurements less reliable."
    )


HEAD_FIELDS = tuple(
    key
    for name in ("schema_version", "target", "baseline", "started_at", "finished_at", "shard")
    for key in (name, to_camel(name))
)


class ReplayResult(ReplaySummary):
    """The outcome of a replay test (result.json)."""

    schema_version: str = Field(
        default=SCHEMA_VERSION, description=f"Format version, {SCHEMA_VERSION}."
    )
    target: str = Field(description="The candidate endpoint URL.")
    baseline: str | None = Field(default=None, description="The baseline endpoint URL.")
    started_at: str | None = Field(default=None, description="Run start, RFC 3339 UTC.")
    finished_at: str | None = Field(default=None, description="Run end, RFC 3339 UTC.")
    shard: ShardInfo = Field(default_factory=ShardInfo, description="Shard coverage.")
    settings: RunSettings | None = Field(default=None, description="The settings used.")
    client: str | None = Field(
        default=None,
        description="The HTTP client that sent the requests: lean (HTTP/1.1 on asyncio "
        "protocols), aiohttp or httpx; several, comma-separated, in a merge of shards that "
        "differ.",
    )
    event_loop: str | None = Field(
        default=None, description="The event loop the requests were sent from: asyncio or uvloop."
    )
    criteria: SuccessCriteria | None = Field(default=None, description="The criteria applied.")
    timeline: list[TimelinePoint] = Field(
        default_factory=list, description="Per-second counts and p99, by intended send time."
    )
    malformed_lines: list[MalformedLine] = Field(
        default_factory=list, description=f"The first {MALFORMED_SAMPLES} malformed lines."
    )
    verdict: Verdict = Field(
        default_factory=lambda: Verdict(passed=True),
        description="Whether the success criteria were met, and why not.",
    )
    state: ReplayState = Field(description="Mergeable internals (for merging shard results).")

    @model_serializer(mode="wrap")
    def _reading_order(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Who and when first, then the measurements (the summary's fields), then the rest."""
        data: dict[str, Any] = handler(self)
        first = [key for key in HEAD_FIELDS if key in data]
        return {**{key: data[key] for key in first}, **data}

    def summary(self) -> ReplaySummary:
        """This result's own summary (its fields of the same names), rounded for display."""
        fields = set(ReplaySummary.model_fields)
        return ReplaySummary.model_validate(_rounded(self.model_dump(include=fields)))


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return float(f"{value:.{SUMMARY_DIGITS}g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# -- building ---------------------------------------------------------------------------


@dataclass(slots=True)
class RunInfo:
    """What a run knows besides its measurements."""

    target: str
    baseline: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_seconds: float = 0.0
    planned_seconds: float = 0.0
    shard_index: int | None = 0
    shard_count: int = 1
    merged: int = 1
    settings: RunSettings | None = None
    criteria: SuccessCriteria | None = None
    lines: int = 0
    selected: int = 0
    filtered: int = 0
    malformed: int = 0
    malformed_lines: list[MalformedLine] = field(default_factory=list)
    api: ApiShape | None = None
    client: str | None = None
    event_loop: str | None = None


@dataclass(slots=True)
class _Rates:
    planned: float
    run: float
    target: float
    achieved: float
    throughput: float


def latency_summary(histogram: LogHistogram) -> LatencySummary:
    p50, p90, p95, p99, p999 = histogram.quantiles([0.5, 0.9, 0.95, 0.99, 0.999])
    return LatencySummary(
        count=histogram.count,
        mean=histogram.mean,
        min=histogram.min if histogram.count else None,
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        p999=p999,
        max=histogram.max if histogram.count else None,
    )


def _single_rates(acc: EndpointAccumulator, planned: float) -> _Rates:
    run = planned + max(acc.last_lag, 0.0)
    return _Rates(
        planned=planned,
        run=run,
        target=acc.scheduled / planned if planned > 0 else 0.0,
        achieved=acc.sent / run if run > 0 else 0.0,
        throughput=acc.ok / run if run > 0 else 0.0,
    )


def _quality_report(quality: QualityAccumulator) -> QualityReport | None:
    if quality.labeled == 0:
        return None
    return QualityReport(
        labeled=quality.labeled,
        unlabeled=quality.unlabeled,
        correct=quality.correct,
        accuracy=quality.accuracy,
        precision=quality.precision,
        recall=quality.recall,
        f1=quality.f1,
        auc=quality.auc,
        true_positives=quality.tp,
        false_positives=quality.fp,
        true_negatives=quality.tn,
        false_negatives=quality.fn,
    )


def _frac(a: int, b: int) -> float | None:
    return a / b if b else None


def _endpoint_state(acc: EndpointAccumulator, rates: _Rates) -> EndpointState:
    timeline = []
    for second in sorted(acc.timeline):
        bucket = acc.timeline[second]
        hist = bucket.latency.to_state()
        timeline.append(
            TimelineState(
                second=second,
                sent=bucket.sent,
                ok=bucket.ok,
                errors=bucket.errors,
                dropped=bucket.dropped,
                zero=hist.zero_count,
                latency=hist.buckets,
            )
        )
    return EndpointState(
        scheduled=acc.scheduled,
        sent=acc.sent,
        ok=acc.ok,
        dropped=acc.dropped,
        errors=dict(sorted(acc.errors.items())),
        planned_seconds=rates.planned,
        run_seconds=rates.run,
        target_rate=rates.target,
        achieved_rate=rates.achieved,
        throughput=rates.throughput,
        last_offset=acc.last_offset,
        last_lag=acc.last_lag,
        latency=acc.latency.to_state(),
        service_time=acc.service.to_state(),
        send_lag=acc.lag.to_state(),
        timeline=timeline,
        quality=acc.quality.to_state(),
    )


def _endpoint_from_state(state: EndpointState) -> tuple[EndpointAccumulator, _Rates]:
    acc = EndpointAccumulator()
    acc.scheduled = state.scheduled
    acc.sent = state.sent
    acc.ok = state.ok
    acc.dropped = state.dropped
    acc.errors = dict(state.errors)
    acc.latency = LogHistogram.from_state(state.latency)
    acc.service = LogHistogram.from_state(state.service_time)
    acc.lag = LogHistogram.from_state(state.send_lag)
    for point in state.timeline:
        latency = timeline_histogram(point)
        acc.timeline[point.second] = TimelineBucket(
            sent=point.sent,
            ok=point.ok,
            errors=point.errors,
            dropped=point.dropped,
            latency=latency,
        )
    acc.quality = QualityAccumulator.from_state(state.quality)
    acc.last_offset = state.last_offset
    acc.last_lag = state.last_lag
    if acc.ok + sum(acc.errors.values()) != acc.sent or acc.sent + acc.dropped != acc.scheduled:
        raise ValueError("result state is inconsistent: ok + errors + dropped != scheduled")
    rates = _Rates(
        planned=state.planned_seconds,
        run=state.run_seconds,
        target=state.target_rate,
        achieved=state.achieved_rate,
        throughput=state.throughput,
    )
    return acc, rates


def timeline_histogram(point: TimelineState) -> LogHistogram:
    """The latency histogram of one second of the timeline (its sum is not kept)."""
    return LogHistogram.from_state(
        HistogramState(
            relative_accuracy=TIMELINE_ACCURACY,
            min_value=LogHistogram(TIMELINE_ACCURACY).min_value,
            count=point.zero + sum(decode_counts(point.latency).values()),
            zero_count=point.zero,
            sum=0.0,
            buckets=point.latency,
        )
    )


def comparison_state(comparison: ComparisonAccumulator) -> ComparisonState:
    return ComparisonState(
        pairs=comparison.pairs,
        agreed=comparison.agreed,
        target_only=comparison.target_only,
        baseline_only=comparison.baseline_only,
        neither=comparison.neither,
        scored=comparison.scored,
        diff_sum=comparison.diff_sum,
        abs_diff=comparison.abs_diff.to_state(),
    )


def comparison_from_state(state: ComparisonState) -> ComparisonAccumulator:
    comparison = ComparisonAccumulator()
    comparison.pairs = state.pairs
    comparison.agreed = state.agreed
    comparison.target_only = state.target_only
    comparison.baseline_only = state.baseline_only
    comparison.neither = state.neither
    comparison.scored = state.scored
    comparison.diff_sum = state.diff_sum
    comparison.abs_diff = LogHistogram.from_state(state.abs_diff)
    return comparison


def _timeline(acc: EndpointAccumulator) -> list[TimelinePoint]:
    if not acc.timeline:
        return []
    points = []
    for second in range(min(acc.timeline), max(acc.timeline) + 1):
        bucket = acc.timeline.get(second)
        if bucket is None:
            points.append(TimelinePoint(second=second, sent=0, ok=0, errors=0, dropped=0))
            continue
        points.append(
            TimelinePoint(
                second=second,
                sent=bucket.sent,
                ok=bucket.ok,
                errors=bucket.errors,
                dropped=bucket.dropped,
                p99_ms=bucket.latency.quantile(0.99, clamp=False),
            )
        )
    return points


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _endpoint_report(url: str, acc: EndpointAccumulator, rates: _Rates) -> EndpointReport:
    errors = acc.error_count
    return EndpointReport(
        url=url,
        counts=EndpointCounts(
            scheduled=acc.scheduled, sent=acc.sent, ok=acc.ok, errors=errors, dropped=acc.dropped
        ),
        errors=dict(sorted(acc.errors.items())),
        latency_ms=latency_summary(acc.latency),
        service_time_ms=latency_summary(acc.service),
        availability=_frac(acc.ok, acc.sent),
        error_rate=_frac(errors, acc.sent),
        drop_rate=_frac(acc.dropped, acc.scheduled),
        throughput=rates.throughput,
        quality=_quality_report(acc.quality),
    )


def _comparison_report(
    target: EndpointReport, baseline: EndpointReport, comparison: ComparisonAccumulator
) -> ComparisonReport:
    score_diff = None
    if comparison.scored:
        hist = comparison.abs_diff
        p50, p95 = hist.quantiles([0.5, 0.95])
        score_diff = ScoreDiff(
            count=comparison.scored,
            mean=comparison.diff_sum / comparison.scored,
            mean_abs=hist.mean,
            p50_abs=p50,
            p95_abs=p95,
            max_abs=hist.max,
        )
    tl, bl = target.latency_ms, baseline.latency_ms
    tq, bq = target.quality, baseline.quality
    p99_ratio = None
    if tl.p99 is not None and bl.p99 is not None and bl.p99 > 0:
        p99_ratio = tl.p99 / bl.p99
    return ComparisonReport(
        baseline=baseline,
        pairs=comparison.pairs,
        agreed=comparison.agreed,
        agreement=_frac(comparison.agreed, comparison.pairs),
        target_only_ok=comparison.target_only,
        baseline_only_ok=comparison.baseline_only,
        score_diff=score_diff,
        deltas=Deltas(
            p50_ms=_diff(tl.p50, bl.p50),
            p95_ms=_diff(tl.p95, bl.p95),
            p99_ms=_diff(tl.p99, bl.p99),
            mean_ms=_diff(tl.mean, bl.mean),
            p99_ratio=p99_ratio,
            error_rate=_diff(target.error_rate, baseline.error_rate),
            availability=_diff(target.availability, baseline.availability),
            accuracy=_diff(tq.accuracy if tq else None, bq.accuracy if bq else None),
            auc=_diff(tq.auc if tq else None, bq.auc if bq else None),
        ),
    )


def _warnings(result: ReplayResult) -> list[str]:
    warnings = []
    counts = result.counts
    if counts.dropped:
        options = result.settings.options if result.settings else ReplayOptions()
        warnings.append(
            f"{counts.dropped} of {counts.scheduled} sends were dropped: the concurrency limit "
            f"({options.concurrency}) held them more than {options.max_lag} past their "
            "intended time; raise --concurrency or lower the rate"
        )
    if result.rate.target > 0 and counts.sent:
        ratio = result.rate.achieved / result.rate.target
        if ratio < 0.99:
            warnings.append(
                f"the achieved rate {result.rate.achieved:.4g}/s is {(1 - ratio) * 100:.1f} % "
                f"below the target {result.rate.target:.4g}/s"
            )
    lag = result.send_lag_ms
    if lag.p99 is not None and lag.p99 > 100:
        warnings.append(
            f"sends left up to {lag.p99:.0f} ms late (p99): latencies include this wait; the "
            "client or its concurrency limit could not keep the schedule"
        )
    if counts.malformed:
        warnings.append(f"{counts.malformed} malformed lines were skipped (see malformedLines)")
    if counts.omitted:
        warnings.append(f"{counts.omitted} selected events were not sent: the run ended first")
    if counts.repeated:
        warnings.append(f"the dataset was looped: {counts.repeated} sends repeated an event")
    if result.errors.get("connection") and result.errors["connection"] == counts.sent:
        warnings.append("every request failed to connect: is the target URL right?")
    return warnings


def build_result(
    target: EndpointAccumulator,
    target_rates: _Rates,
    baseline: tuple[EndpointAccumulator, _Rates] | None,
    comparison: ComparisonAccumulator | None,
    info: RunInfo,
) -> ReplayResult:
    """Derive the whole report from accumulators (used for single runs and merges)."""
    target_report = _endpoint_report(info.target, target, target_rates)
    comparison_report = None
    baseline_state = None
    saved_comparison = None
    if baseline is not None and comparison is not None:
        baseline_acc, baseline_rates = baseline
        baseline_report = _endpoint_report(info.baseline or "", baseline_acc, baseline_rates)
        comparison_report = _comparison_report(target_report, baseline_report, comparison)
        baseline_state = _endpoint_state(baseline_acc, baseline_rates)
        saved_comparison = comparison_state(comparison)
    scheduled = target.scheduled
    result = ReplayResult(
        target=info.target,
        baseline=info.baseline,
        started_at=info.started_at,
        finished_at=info.finished_at,
        duration_seconds=info.duration_seconds,
        shard=ShardInfo(index=info.shard_index, count=info.shard_count, merged=info.merged),
        settings=info.settings,
        client=info.client,
        event_loop=info.event_loop,
        criteria=info.criteria,
        rate=RateReport(target=target_rates.target, achieved=target_rates.achieved),
        counts=Counts(
            lines=info.lines,
            selected=info.selected,
            filtered=info.filtered,
            malformed=info.malformed,
            scheduled=scheduled,
            sent=target.sent,
            ok=target.ok,
            errors=target.error_count,
            dropped=target.dropped,
            omitted=max(0, info.selected - scheduled),
            repeated=max(0, scheduled - info.selected),
        ),
        errors=target_report.errors,
        latency_ms=target_report.latency_ms,
        service_time_ms=target_report.service_time_ms,
        send_lag_ms=latency_summary(target.lag),
        availability=target_report.availability,
        error_rate=target_report.error_rate,
        drop_rate=target_report.drop_rate,
        throughput=target_rates.throughput,
        quality=target_report.quality,
        comparison=comparison_report,
        timeline=_timeline(target),
        malformed_lines=info.malformed_lines,
        state=ReplayState(
            target=_endpoint_state(target, target_rates),
            baseline=baseline_state,
            comparison=saved_comparison,
        ),
    )
    result.api = info.api
    result.capacity = _capacity(
        target.timeline, info.settings.options if info.settings is not None else None
    )
    result.warnings = _warnings(result)
    result.verdict = evaluate(result, info.criteria)
    return result


def result_from_run(acc: ReplayAccumulator, info: RunInfo) -> ReplayResult:
    """The result of one run (or one shard) from its accumulator."""
    target_rates = _single_rates(acc.target, info.planned_seconds)
    baseline = None
    if acc.baseline is not None:
        baseline = (acc.baseline, _single_rates(acc.baseline, info.planned_seconds))
    comparison = acc.comparison
    if info.api is None and (acc.requests.count or acc.responses.count):
        info = replace(
            info,
            api=ApiShape(
                request=acc.requests.schema or {},
                response=acc.responses.schema or {},
                request_samples=acc.requests.count,
                response_samples=acc.responses.count,
            ),
        )
    if baseline is not None and comparison is None:  # pragma: no cover - defensive
        comparison = ComparisonAccumulator()
    return build_result(acc.target, target_rates, baseline, comparison, info)


# -- merging ------------------------------------------------------------------------------


def merge_results(
    results: Sequence[ReplayResult], criteria: SuccessCriteria | None = None
) -> ReplayResult:
    """Merge shard results exactly; ``criteria`` default to the first result's.

    Raises :class:`ValueError` for an empty list, mixed schema versions or targets, and
    the same shard given twice.
    """
    if not results:
        raise ValueError("no result to merge")
    first = results[0]
    for result in results:
        if result.schema_version != SCHEMA_VERSION:
            raise ValueError(f"unsupported result schema {result.schema_version!r}")
        if result.target != first.target or result.baseline != first.baseline:
            raise ValueError("results are for different target or baseline endpoints")
        if (result.state.baseline is None) != (first.state.baseline is None):
            raise ValueError("some results have a baseline and some do not")
    seen: set[tuple[int, int]] = set()
    for result in results:
        if result.shard.index is not None:
            key = (result.shard.index, result.shard.count)
            if key in seen:
                raise ValueError(f"shard {key[0]} of {key[1]} appears twice")
            seen.add(key)

    def merge_endpoint(states: list[EndpointState]) -> tuple[EndpointAccumulator, _Rates]:
        acc, rates = _endpoint_from_state(states[0])
        for state in states[1:]:
            other, other_rates = _endpoint_from_state(state)
            acc.merge(other)
            rates.planned = max(rates.planned, other_rates.planned)
            rates.run = max(rates.run, other_rates.run)
            rates.target += other_rates.target
            rates.achieved += other_rates.achieved
            rates.throughput += other_rates.throughput
        return acc, rates

    target, target_rates = merge_endpoint([r.state.target for r in results])
    baseline = None
    comparison = None
    if first.state.baseline is not None:
        baseline = merge_endpoint([r.state.baseline for r in results if r.state.baseline])
        comparison = ComparisonAccumulator()
        for result in results:
            if result.state.comparison is not None:
                comparison.merge(comparison_from_state(result.state.comparison))
    samples = sorted(
        {(m.line, m.reason) for r in results for m in r.malformed_lines},
    )[:MALFORMED_SAMPLES]
    started = [r.started_at for r in results if r.started_at]
    finished = [r.finished_at for r in results if r.finished_at]
    shard_counts = {r.shard.count for r in results}
    info = RunInfo(
        target=first.target,
        baseline=first.baseline,
        started_at=min(started) if started else None,
        finished_at=max(finished) if finished else None,
        duration_seconds=max(r.duration_seconds for r in results),
        planned_seconds=target_rates.planned,
        shard_index=first.shard.index if len(results) == 1 else None,
        shard_count=max(shard_counts),
        merged=sum(r.shard.merged for r in results),
        settings=first.settings,
        criteria=criteria if criteria is not None else first.criteria,
        lines=sum(r.counts.lines for r in results),
        selected=sum(r.counts.selected for r in results),
        filtered=sum(r.counts.filtered for r in results),
        malformed=sum(r.counts.malformed for r in results),
        malformed_lines=[MalformedLine(line=line, reason=reason) for line, reason in samples],
        api=_merged_api([r.api for r in results if r.api is not None]),
        client=_joined(r.client for r in results),
        event_loop=_joined(r.event_loop for r in results),
    )
    return build_result(target, target_rates, baseline, comparison, info)


def _merged_api(shapes: Sequence[ApiShape]) -> ApiShape | None:
    return reduce(ApiShape.merged, shapes) if shapes else None


def _capacity(
    timeline: Mapping[int, TimelineBucket], options: ReplayOptions | None
) -> CapacityReport | None:
    """The capacity shown by the target's timeline, when the run asked for it."""
    if options is None or options.capacity_p99_ms is None:
        return None
    width = int(parse_duration(options.capacity_window))
    windows: dict[int, TimelineBucket] = {}
    for second in sorted(timeline):
        windows.setdefault(second // width, TimelineBucket()).merge(timeline[second])
    end = max(timeline, default=-1) + 1
    cut = [(bucket, min(width, end - start * width)) for start, bucket in sorted(windows.items())]
    return capacity.assess(cut, options.capacity_p99_ms, width)


def _joined(values: Iterable[str | None]) -> str | None:
    """The distinct values, comma-separated, in order of first appearance; None if none."""
    distinct = list(dict.fromkeys(v for v in values if v))
    return ",".join(distinct) if distinct else None


# -- the result log line ------------------------------------------------------------------


def format_result_line(result: ReplayResult) -> str:
    """``MODELROLLOUT_RESULT {json}``: compact, without the derived timeline."""
    compact = result.model_copy(update={"timeline": []})
    return RESULT_LINE_PREFIX + compact.model_dump_json(by_alias=True, exclude_none=True)


def parse_result_line(text: str) -> ReplayResult | None:
    """Find the last ``MODELROLLOUT_RESULT`` line in ``text`` (e.g. pod logs) and parse it.

    Returns ``None`` when there is no such line. Raises :class:`ValueError` (a pydantic
    ``ValidationError`` is one) when the line is there but is not a valid result, e.g.
    truncated. Anything before the prefix on the line (a log timestamp) is ignored.
    """
    payload = jobs.marked_line(text, RESULT_LINE_PREFIX)
    if payload is None:
        return None
    result = ReplayResult.model_validate_json(payload)
    if not result.timeline:
        rebuilt = merge_results([result], result.criteria)
        rebuilt.shard = result.shard
        rebuilt.started_at, rebuilt.finished_at = result.started_at, result.finished_at
        return rebuilt
    return result


def result_is_consistent(result: ReplayResult) -> bool:
    """Durability: every scheduled send is ok, failed or dropped, and errors add up."""
    c = result.counts
    return (
        c.scheduled == c.sent + c.dropped
        and c.sent == c.ok + c.errors
        and sum(result.errors.values()) == c.errors
        and c.scheduled == c.selected - c.omitted + c.repeated
        and not math.isnan(result.rate.target)
    )


# ---------------------------------------------------------------- the verdict
Getter = Callable[["ReplayResult"], float | str | None]


@dataclass(frozen=True)
class _Rule:
    field: str
    what: str
    direction: Literal["max", "min"]
    getter: Getter
    unit: str = ""
    percent: bool = False


def _ratio(a: float | None, b: float | None) -> float | str | None:
    if a is None or b is None:
        return None
    if b <= 0:
        return "the baseline value is zero"
    return a / b


def _p(name: str) -> Getter:
    def get(result: ReplayResult) -> float | str | None:
        if result.counts.ok == 0:
            return "no successful response"
        return getattr(result.latency_ms, name)  # type: ignore[no-any-return]

    return get


def _quality(name: str) -> Getter:
    def get(result: ReplayResult) -> float | str | None:
        if result.quality is None or result.quality.labeled == 0:
            return "no labeled prediction (needs labels and --prediction-path)"
        value = getattr(result.quality, name)
        return value if value is not None else f"{name} is undefined for these labels"

    return get


def _baseline_latency(name: str) -> Getter:
    def get(result: ReplayResult) -> float | str | None:
        if result.comparison is None:
            return "no baseline endpoint"
        if result.counts.ok == 0 or result.comparison.baseline.counts.ok == 0:
            return "no successful response from one of the endpoints"
        return _ratio(
            getattr(result.latency_ms, name), getattr(result.comparison.baseline.latency_ms, name)
        )

    return get


def _error_rate_delta(result: ReplayResult) -> float | str | None:
    if result.comparison is None:
        return "no baseline endpoint"
    t, b = result.error_rate, result.comparison.baseline.error_rate
    if t is None or b is None:
        return "no request was sent"
    return t - b


def _quality_drop(name: str) -> Getter:
    def get(result: ReplayResult) -> float | str | None:
        if result.comparison is None:
            return "no baseline endpoint"
        mine = _quality(name)(result)
        if not isinstance(mine, float):
            return mine
        baseline_quality = result.comparison.baseline.quality
        theirs = None if baseline_quality is None else getattr(baseline_quality, name)
        if theirs is None:
            return f"the baseline has no {name}"
        return float(theirs) - mine

    return get


def _throughput_ratio(result: ReplayResult) -> float | str | None:
    if result.rate.target <= 0:
        return "the target rate is zero"
    return result.rate.achieved / result.rate.target


def _agreement(result: ReplayResult) -> float | str | None:
    if result.comparison is None:
        return "no baseline endpoint"
    if result.comparison.agreement is None:
        return "no pair of predictions (needs --prediction-path and successes on both)"
    return result.comparison.agreement


def _score_diff(name: str) -> Getter:
    def get(result: ReplayResult) -> float | str | None:
        if result.comparison is None:
            return "no baseline endpoint"
        diff = result.comparison.score_diff
        if diff is None or diff.count == 0:
            return "no pair of score predictions"
        return getattr(diff, name)  # type: ignore[no-any-return]

    return get


def _rate(name: str) -> Getter:
    def get(result: ReplayResult) -> float | str | None:
        value = getattr(result, name)
        return "no request was scheduled" if value is None else float(value)

    return get


RULES: tuple[_Rule, ...] = (
    _Rule("max_p50_ms", "p50 latency", "max", _p("p50"), " ms"),
    _Rule("max_p95_ms", "p95 latency", "max", _p("p95"), " ms"),
    _Rule("max_p99_ms", "p99 latency", "max", _p("p99"), " ms"),
    _Rule("max_mean_ms", "mean latency", "max", _p("mean"), " ms"),
    _Rule("max_error_rate", "error rate", "max", _rate("error_rate"), percent=True),
    _Rule("min_availability", "availability", "min", _rate("availability"), percent=True),
    _Rule("max_drop_rate", "drop rate", "max", _rate("drop_rate"), percent=True),
    _Rule("min_throughput_ratio", "achieved/target rate", "min", _throughput_ratio),
    _Rule("min_requests", "requests sent", "min", lambda r: float(r.counts.sent)),
    _Rule("min_accuracy", "accuracy", "min", _quality("accuracy"), percent=True),
    _Rule("min_precision", "precision", "min", _quality("precision"), percent=True),
    _Rule("min_recall", "recall", "min", _quality("recall"), percent=True),
    _Rule("min_auc", "ROC AUC", "min", _quality("auc")),
    _Rule("min_agreement", "agreement with the baseline", "min", _agreement, percent=True),
    _Rule("max_mean_abs_score_diff", "mean |score diff|", "max", _score_diff("mean_abs")),
    _Rule("max_p95_abs_score_diff", "p95 |score diff|", "max", _score_diff("p95_abs")),
    _Rule("max_p50_ratio_to_baseline", "p50 / baseline p50", "max", _baseline_latency("p50")),
    _Rule("max_p95_ratio_to_baseline", "p95 / baseline p95", "max", _baseline_latency("p95")),
    _Rule("max_p99_ratio_to_baseline", "p99 / baseline p99", "max", _baseline_latency("p99")),
    _Rule(
        "max_error_rate_delta_to_baseline",
        "error rate minus baseline's",
        "max",
        _error_rate_delta,
        percent=True,
    ),
    _Rule(
        "max_accuracy_drop_to_baseline",
        "accuracy drop from the baseline",
        "max",
        _quality_drop("accuracy"),
        percent=True,
    ),
    _Rule("max_auc_drop_to_baseline", "AUC drop from the baseline", "max", _quality_drop("auc")),
)


def _fmt(value: float, rule: _Rule) -> str:
    if rule.percent:
        return f"{value * 100:.3g} %"
    return f"{value:.4g}{rule.unit}"


def evaluate(result: ReplayResult, criteria: SuccessCriteria | None) -> Verdict:
    """Check ``result`` against ``criteria``; a criterion without data fails, saying why."""
    if criteria is None:
        return Verdict(passed=True)
    checks: list[CheckResult] = []
    for rule in RULES:
        threshold = getattr(criteria, rule.field)
        if threshold is None:
            continue
        name = SuccessCriteria.model_fields[rule.field].alias or rule.field
        value = rule.getter(result)
        if value is None or isinstance(value, str):
            why = value if isinstance(value, str) else "not measured"
            checks.append(
                CheckResult(
                    criterion=name,
                    threshold=float(threshold),
                    passed=False,
                    message=f"{rule.what} cannot be checked: {why} ({name})",
                )
            )
            continue
        actual = float(value)
        passed = actual <= threshold if rule.direction == "max" else actual >= threshold
        op = ("<=" if passed else ">") if rule.direction == "max" else (">=" if passed else "<")
        checks.append(
            CheckResult(
                criterion=name,
                threshold=float(threshold),
                actual=actual,
                passed=passed,
                message=f"{rule.what} {_fmt(actual, rule)} {op} {_fmt(threshold, rule)} ({name})",
            )
        )
    reasons = [check.message for check in checks if not check.passed]
    return Verdict(passed=not reasons, reasons=reasons, checks=checks)
