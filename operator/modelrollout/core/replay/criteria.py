"""Success criteria of a replay and the verdict they produce.

Criteria are plain thresholds, each optional, so that a ReplayTest states only what it
cares about. Two families:

* *absolute*: the candidate alone (``maxP99Ms``, ``maxErrorRate``, ``minAccuracy``...);
* *relative to the baseline*: the candidate against the production model measured in the
  same run, under the same load and network (``maxP99RatioToBaseline: 1.2`` means "p99 no
  more than 20 % above production"). These are the robust ones: absolute latency
  thresholds drift with the cluster, a ratio measured side by side does not.

:func:`evaluate` is pure and total: a criterion whose metric cannot be computed (no
labels for ``minAccuracy``, no baseline for a relative criterion, no successful response
for a latency bound) *fails* with a reason that says why, because a gate that passes for
lack of evidence is worse than no gate. Latency criteria use latency measured from the
intended send time (see :mod:`.accumulator`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from modelrollout.core.api.base import ApiModel

if TYPE_CHECKING:
    from modelrollout.core.replay.result import ReplayResult


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


Getter = Callable[["ReplayResult"], "float | str | None"]


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
