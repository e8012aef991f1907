"""Running measurements of a replay, each mergeable by addition.

Every scheduled send ends in exactly one of three ways, and each is recorded once:

* **ok**: a 2xx response (holding a prediction, when a prediction path is set);
* **error**, by type: ``http_<code>`` for other statuses, ``timeout``, ``connection``
  (refused, reset, DNS) and ``invalid_response`` (unreadable body, or no prediction);
* **dropped**: the send could not leave within the max-lag bound because the
  concurrency limit was reached.

So ``scheduled == ok + errors + dropped`` and ``sent == ok + errors`` hold by construction
(a unit test checks them on every path), and the counts of shards add up.

Latency is measured from the *intended* send time, so waiting behind a slow target counts
(no coordinated omission); service time is measured from the *actual* send; send lag is
the difference. Latency percentiles are over ok responses. The timeline buckets sends by
the second of their intended time and keeps a coarser histogram per second for its p99.

Baseline comparison pairs the two responses of the same send index: whichever finishes
second triggers the comparison, and the pending map holds at most the sends in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelrollout.core import schema
from modelrollout.core.replay.histogram import LogHistogram
from modelrollout.core.replay.quality import (
    InvalidPrediction,
    Prediction,
    PredictionReader,
    QualityAccumulator,
)

TIMELINE_ACCURACY = 0.02
"""Relative accuracy of the per-second p99 in the timeline (2 %)."""

SCORE_DIFF_MIN = 1e-9
"""Score differences at or below this count as identical."""

ERROR_TYPES = ("timeout", "connection", "invalid_response")


def classify_response(
    status: int, body: bytes, reader: PredictionReader | None
) -> tuple[str, Prediction | None]:
    """Outcome type of an HTTP response and its prediction (when a reader is set)."""
    if not 200 <= status < 300:
        return f"http_{status}", None
    if reader is None:
        return "ok", None
    try:
        return "ok", reader.read(body)
    except InvalidPrediction:
        return "invalid_response", None


@dataclass(slots=True)
class TimelineBucket:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    dropped: int = 0
    latency: LogHistogram = field(default_factory=lambda: LogHistogram(TIMELINE_ACCURACY))

    def merge(self, other: TimelineBucket) -> None:
        self.sent += other.sent
        self.ok += other.ok
        self.errors += other.errors
        self.dropped += other.dropped
        self.latency.merge(other.latency)


class EndpointAccumulator:
    """Operational and quality measurements of one endpoint (target or baseline)."""

    def __init__(self) -> None:
        self.scheduled = 0
        self.sent = 0
        self.ok = 0
        self.dropped = 0
        self.errors: dict[str, int] = {}
        self.latency = LogHistogram()
        self.service = LogHistogram()
        self.lag = LogHistogram()
        self.timeline: dict[int, TimelineBucket] = {}
        self.quality = QualityAccumulator()
        self.last_offset = -1.0
        self.last_lag = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def _bucket(self, offset: float) -> TimelineBucket:
        second = int(offset) if offset >= 0 else 0
        bucket = self.timeline.get(second)
        if bucket is None:
            bucket = self.timeline[second] = TimelineBucket()
        return bucket

    def record_dropped(self, offset: float, lag: float) -> None:
        """A send that could not leave within the max lag (``lag`` seconds late when given up)."""
        self.scheduled += 1
        self.dropped += 1
        self._bucket(offset).dropped += 1
        self._note_last(offset, lag)

    def record_response(
        self,
        offset: float,
        lag: float,
        service: float,
        kind: str,
        prediction: Prediction | None = None,
        label: str | None = None,
        positive_label: str = "1",
    ) -> None:
        """A send that left ``lag`` s late and ended after ``service`` s as ``kind``."""
        self.scheduled += 1
        self.sent += 1
        lag = max(lag, 0.0)
        self.lag.add(lag * 1000.0)
        bucket = self._bucket(offset)
        bucket.sent += 1
        self._note_last(offset, lag)
        if kind == "ok":
            self.ok += 1
            latency_ms = (lag + service) * 1000.0
            self.latency.add(latency_ms)
            self.service.add(service * 1000.0)
            bucket.ok += 1
            bucket.latency.add(latency_ms)
            if prediction is not None:
                self.quality.add(label, prediction, positive_label)
        else:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            bucket.errors += 1

    def _note_last(self, offset: float, lag: float) -> None:
        if offset >= self.last_offset:
            self.last_offset = offset
            self.last_lag = lag

    def merge(self, other: EndpointAccumulator) -> None:
        self.scheduled += other.scheduled
        self.sent += other.sent
        self.ok += other.ok
        self.dropped += other.dropped
        for kind, count in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count
        self.latency.merge(other.latency)
        self.service.merge(other.service)
        self.lag.merge(other.lag)
        for second, bucket in other.timeline.items():
            mine = self.timeline.get(second)
            if mine is None:
                mine = self.timeline[second] = TimelineBucket()
            mine.merge(bucket)
        self.quality.merge(other.quality)
        if other.last_offset >= self.last_offset:
            self.last_offset = other.last_offset
            self.last_lag = other.last_lag


class ComparisonAccumulator:
    """Agreement and score differences between target and baseline, pair by pair."""

    def __init__(self) -> None:
        self.pairs = 0
        self.agreed = 0
        self.target_only = 0
        self.baseline_only = 0
        self.neither = 0
        self.scored = 0
        self.diff_sum = 0.0
        self.abs_diff = LogHistogram(min_value=SCORE_DIFF_MIN)

    def add(
        self,
        target: Prediction | None,
        baseline: Prediction | None,
        reader: PredictionReader | None,
    ) -> None:
        if target is None or baseline is None:
            if target is not None:
                self.target_only += 1
            elif baseline is not None:
                self.baseline_only += 1
            else:
                self.neither += 1
            return
        self.pairs += 1
        if reader is not None:
            self.agreed += reader.agree(target, baseline)
        else:
            self.agreed += target.positive == baseline.positive
        if target.score is not None and baseline.score is not None:
            diff = target.score - baseline.score
            self.scored += 1
            self.diff_sum += diff
            self.abs_diff.add(abs(diff))

    def merge(self, other: ComparisonAccumulator) -> None:
        self.pairs += other.pairs
        self.agreed += other.agreed
        self.target_only += other.target_only
        self.baseline_only += other.baseline_only
        self.neither += other.neither
        self.scored += other.scored
        self.diff_sum += other.diff_sum
        self.abs_diff.merge(other.abs_diff)


_FAILED = None


class ReplayAccumulator:
    """Target, optional baseline and their comparison for one run."""

    def __init__(self, *, baseline: bool, reader: PredictionReader | None) -> None:
        self.reader = reader
        self.positive_label = reader.positive_label if reader is not None else "1"
        self.target = EndpointAccumulator()
        self.baseline: EndpointAccumulator | None = EndpointAccumulator() if baseline else None
        self.comparison: ComparisonAccumulator | None = (
            ComparisonAccumulator() if baseline else None
        )
        self._pending: dict[int, Prediction | None] = {}
        self.requests = schema.Sampler()
        self.responses = schema.Sampler()

    def endpoint(self, which: int) -> EndpointAccumulator:
        if which == 0:
            return self.target
        assert self.baseline is not None
        return self.baseline

    def dropped(self, which: int, index: int, offset: float, lag: float) -> None:
        self.endpoint(which).record_dropped(offset, lag)
        self._pair(which, index, _FAILED)

    def completed(
        self,
        which: int,
        index: int,
        offset: float,
        lag: float,
        service: float,
        kind: str,
        prediction: Prediction | None,
        label: str | None,
    ) -> None:
        """Record the outcome of send ``index`` to endpoint ``which`` (0 target, 1 baseline)."""
        self.endpoint(which).record_response(
            offset, lag, service, kind, prediction, label, self.positive_label
        )
        self._pair(which, index, prediction if kind == "ok" else _FAILED)

    def _pair(self, which: int, index: int, prediction: Prediction | None) -> None:
        if self.comparison is None or self.reader is None:
            return
        key = index * 2 + which
        other_key = index * 2 + (1 - which)
        if other_key in self._pending:
            other = self._pending.pop(other_key)
            if which == 0:
                self.comparison.add(prediction, other, self.reader)
            else:
                self.comparison.add(other, prediction, self.reader)
        else:
            self._pending[key] = prediction

    @property
    def unpaired(self) -> int:
        return len(self._pending)
