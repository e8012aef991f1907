"""Success criteria of a replay and the verdict they produce.

Criteria are plain thresholds, each optional, so that a ReplayTest states only what it
cares about. Two families:

* *absolute*: the candidate alone (``maxP99Ms``, ``maxErrorRate``, ``minAccuracy``...);
* *relative to the baseline*: the candidate against the production model measured in the
  same run, under the same load and network (``maxP99RatioToBaseline: 1.2`` means "p99 no
  more than 20 % above production"). These are the robust ones: absolute latency
  thresholds drift with the cluster, a ratio measured side by side does not.

:func:`modelrollout.core.replay.result.evaluate` (beside the result it reads) is pure and
total: a criterion whose metric cannot be computed (no labels for ``minAccuracy``, no
baseline for a relative criterion, no successful response for a latency bound) *fails*
with a reason that says why, because a gate that passes for lack of evidence is worse than
no gate. Latency criteria use latency measured from the intended send time (see
:mod:`.accumulator`).
"""

from __future__ import annotations

from pydantic import Field

from modelrollout.core.api.base import ApiModel


class SuccessCriteria(ApiModel):
    """Thresholds a replay must meet to pass. Every one is optional."""

    max_p50_ms: float | None = Field(
        default=None, gt=0, description="Largest median latency, ms (from the intended time)."
    )
    max_p95_ms: float | None = Field(default=None, gt=0, description="Largest p95 latency, ms.")
    max_p99_ms: float | None = Field(default=None, gt=0, description="Largest p99 latency, ms.")
    max_mean_ms: float | None = Field(default=None, gt=0, description="Largest mean latency, ms.")
    max_error_rate: float | None = Field(
        default=None, ge=0, le=1, description="Largest fraction of sent requests that failed."
    )
    min_availability: float | None = Field(
        default=None, ge=0, le=1, description="Smallest fraction of sent requests that succeeded."
    )
    max_drop_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "Largest fraction of scheduled sends dropped because the concurrency limit held "
            "them past maxLag."
        ),
    )
    min_throughput_ratio: float | None = Field(
        default=None,
        ge=0,
        description="Smallest achieved/target send rate (0.95 = within 5 % of the target rate).",
    )
    min_requests: int | None = Field(
        default=None, ge=1, description="Fewest requests that must have been sent."
    )
    min_accuracy: float | None = Field(
        default=None, ge=0, le=1, description="Smallest accuracy on labeled events."
    )
    min_precision: float | None = Field(
        default=None, ge=0, le=1, description="Smallest precision of the positive class."
    )
    min_recall: float | None = Field(
        default=None, ge=0, le=1, description="Smallest recall of the positive class."
    )
    min_auc: float | None = Field(
        default=None, ge=0, le=1, description="Smallest ROC AUC (score predictions)."
    )
    min_agreement: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Smallest fraction of events where target and baseline predict the same.",
    )
    max_mean_abs_score_diff: float | None = Field(
        default=None, ge=0, description="Largest mean |target score - baseline score|."
    )
    max_p95_abs_score_diff: float | None = Field(
        default=None, ge=0, description="Largest p95 of |target score - baseline score|."
    )
    max_p50_ratio_to_baseline: float | None = Field(
        default=None, gt=0, description="Largest target p50 / baseline p50 (1.2 = +20 %)."
    )
    max_p95_ratio_to_baseline: float | None = Field(
        default=None, gt=0, description="Largest target p95 / baseline p95."
    )
    max_p99_ratio_to_baseline: float | None = Field(
        default=None, gt=0, description="Largest target p99 / baseline p99 (1.2 = +20 %)."
    )
    max_error_rate_delta_to_baseline: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Largest target error rate minus baseline error rate (0.01 = 1 point).",
    )
    max_accuracy_drop_to_baseline: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Largest baseline accuracy minus target accuracy (0.02 = 2 points).",
    )
    max_auc_drop_to_baseline: float | None = Field(
        default=None, ge=0, le=1, description="Largest baseline AUC minus target AUC."
    )

    def is_empty(self) -> bool:
        return all(value is None for value in self.model_dump().values())


class CheckResult(ApiModel):
    """One criterion checked against the measurements."""

    criterion: str = Field(description="The criterion's name, e.g. maxP99Ms.")
    threshold: float = Field(description="The threshold it sets.")
    actual: float | None = Field(
        default=None, description="The measured value; absent when it could not be computed."
    )
    passed: bool = Field(description="Whether the measurement met the threshold.")
    message: str = Field(description="A sentence explaining the outcome.")


class Verdict(ApiModel):
    """Whether a replay met its success criteria."""

    passed: bool = Field(description="True when every criterion was met (or none was set).")
    reasons: list[str] = Field(
        default_factory=list, description="One sentence per failed criterion."
    )
    checks: list[CheckResult] = Field(
        default_factory=list, description="Every criterion with its measured value."
    )
