"""Judging the candidate while it bakes: one query result in, a verdict out.

Every ``analysis.interval`` the operator runs each SLO (and each query trigger) against
the metric provider and folds the answer into the SLO's running tally, a
:class:`MetricResult` kept in the status. This module holds every rule of that process and
performs no I/O, so the rules can be read in one place and tested as tables:

* :func:`render_query` fills the ``{{ variable }}`` placeholders of a query. An unknown
  variable is an error in the spec, never an empty string: a query silently matching
  nothing would look like "no data" forever instead of pointing at the typo.
* :func:`assess` turns one value into a :class:`Measurement`. "No data" (no sample, NaN,
  an infinity) is its own outcome and never a pass: a candidate that serves no traffic, or
  a query with a wrong label, must not be promoted because nothing contradicted it.
* :func:`record` adds a measurement to a tally, returning a new tally.
* :func:`status_of` reads a tally against the SLO's limits.
* :func:`analysis_due` and :func:`seconds_until_due` say when the next evaluation is due,
  from the time of the last one, which the status keeps across operator restarts.

The counting follows Argo Rollouts' ``assessMetricStatus``; see :func:`status_of`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from modelrollout.core.api.modeldeployment import Measurement, MetricResult, ThresholdRange
from modelrollout.core.clock import parse_rfc3339
from modelrollout.core.errors import InvalidSpec

QUERY_VARIABLES: tuple[str, ...] = (
    "name",
    "namespace",
    "model",
    "candidate_version",
    "stable_version",
    "candidate_service",
    "stable_service",
    "interval",
)
"""The variables the operator passes to :func:`render_query`, in the order documented."""

MEASUREMENTS_KEPT = 10
"""How many measurements a :class:`MetricResult` keeps (the limit of its schema)."""

NoData = Literal["Inconclusive", "Fail"]
AnalysisStatus = Literal["Running", "Failed", "Inconclusive"]

# Anything between double braces is a placeholder, so that a malformed one such as
# ``{{ candidate-version }}`` is reported rather than sent to Prometheus as is.
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def render_query(template: str, variables: Mapping[str, str], *, field: str) -> str:
    """Replace every ``{{ name }}`` (spaces optional) in ``template`` with its value.

    Substitution is a single pass: a value that itself contains ``{{`` is inserted as is
    and never expanded. Values are inserted verbatim, without PromQL quoting; the operator's
    values (Kubernetes names and model versions) need none.

    Raises :class:`InvalidSpec` for ``field`` (the path of the query in the spec, for
    example ``spec.stages.baking.analysis.slos[0].query``) when a placeholder names a
    variable that is not in ``variables``.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in variables:
            return variables[name]
        known = ", ".join(f"{{{{ {known} }}}}" for known in sorted(variables)) or "none"
        raise InvalidSpec(
            field,
            f"unknown variable {match.group(0)!r}; the known variables are {known}",
        )

    return _PLACEHOLDER.sub(substitute, template)


def _number(value: float) -> str:
    """A float as short as it can be written without losing precision: 0.031, 5, 1e-05."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _beyond(value: float, bound: float, above: bool) -> str:
    """``value``, which lies beyond ``bound``, in as few significant digits (at least 4) as
    keep it visibly beyond: ``0.2478 > max 0.1``, not ``0.24784782608695652 > max 0.1``,
    and never ``0.01 > max 0.01``."""
    for digits in range(4, 18):
        shown = float(f"{value:.{digits}g}")
        if (shown > bound) if above else (shown < bound):
            return _number(shown)
    return _number(value)


def assess(
    value: float | None,
    error: str | None,
    threshold: ThresholdRange,
    no_data: NoData,
    started_at: str,
) -> Measurement:
    """One measurement of a query that ran at ``started_at``.

    * ``error`` set (the query failed): phase ``Error`` with that message, whatever
      ``value`` is.
    * ``value`` None, NaN or infinite: no data. Phase ``Inconclusive``, or ``Failed`` when
      ``no_data`` is ``"Fail"``; the value is not kept (the status is JSON, which has no
      NaN), and the message says what came back.
    * ``value`` within ``[threshold.min, threshold.max]``, both bounds included and either
      one optional: ``Successful``. A range with neither bound (which the schema forbids)
      cannot be left, so every value passes it.
    * otherwise ``Failed``, with a message such as ``0.031 > max 0.01``.
    """
    if error is not None:
        return Measurement(phase="Error", value=None, message=error, started_at=started_at)
    if value is None or not math.isfinite(value):
        returned = "no sample or NaN" if value is None else _number(value)
        if no_data == "Fail":
            message = f"no data (the query returned {returned}); noData is Fail"
            return Measurement(phase="Failed", value=None, message=message, started_at=started_at)
        message = f"no data (the query returned {returned})"
        return Measurement(phase="Inconclusive", value=None, message=message, started_at=started_at)
    if threshold.min is not None and value < threshold.min:
        message = f"{_beyond(value, threshold.min, False)} < min {_number(threshold.min)}"
        return Measurement(phase="Failed", value=value, message=message, started_at=started_at)
    if threshold.max is not None and value > threshold.max:
        message = f"{_beyond(value, threshold.max, True)} > max {_number(threshold.max)}"
        return Measurement(phase="Failed", value=value, message=message, started_at=started_at)
    return Measurement(phase="Successful", value=value, message="", started_at=started_at)


def record(result: MetricResult, m: Measurement, keep: int = MEASUREMENTS_KEPT) -> MetricResult:
    """A new tally: ``result`` with ``m`` counted and appended; ``result`` is unchanged.

    The counter of ``m``'s phase goes up by one. ``consecutive_error`` counts Error
    measurements in a row: any other phase resets it to zero. ``measurements`` are kept
    oldest first, newest last, and only the last ``keep`` of them (0 to
    :data:`MEASUREMENTS_KEPT`); the counters keep counting after old measurements drop out.
    """
    if not 0 <= keep <= MEASUREMENTS_KEPT:
        raise ValueError(f"keep must be between 0 and {MEASUREMENTS_KEPT}, not {keep}")
    measurements = [*result.measurements, m]
    measurements = measurements[max(len(measurements) - keep, 0) :] if keep else []
    return MetricResult(
        name=result.name,
        query=result.query,
        successful=result.successful + int(m.phase == "Successful"),
        failed=result.failed + int(m.phase == "Failed"),
        inconclusive=result.inconclusive + int(m.phase == "Inconclusive"),
        error=result.error + int(m.phase == "Error"),
        consecutive_error=result.consecutive_error + 1 if m.phase == "Error" else 0,
        measurements=measurements,
    )


def status_of(
    result: MetricResult,
    *,
    failure_limit: int,
    inconclusive_limit: int,
    consecutive_error_limit: int,
) -> AnalysisStatus:
    """What a tally means, given the SLO's limits.

    A limit is the number of such measurements *tolerated*, as in Argo Rollouts: with
    ``failure_limit=1`` one failed measurement keeps the analysis running and the second
    fails it; with ``failure_limit=0`` the first one fails it.

    * ``Failed`` when ``failed > failure_limit`` or ``consecutive_error >
      consecutive_error_limit``: the SLO fires and the candidate is rolled back. Errors
      count only in a row, so an occasional failed scrape or query does not fire an SLO,
      while a query that keeps failing does.
    * otherwise ``Inconclusive`` when ``inconclusive > inconclusive_limit``: the rollout
      should pause for a person to decide.
    * otherwise ``Running``.

    Failed is checked before Inconclusive, so a tally past both limits is Failed: rolling
    back is the safe side. (Argo Rollouts checks its consecutive-error limit last.)
    Errors do not count towards ``failed``; only ``consecutive_error`` does.
    """
    if result.failed > failure_limit or result.consecutive_error > consecutive_error_limit:
        return "Failed"
    if result.inconclusive > inconclusive_limit:
        return "Inconclusive"
    return "Running"


def seconds_until_due(last: str | None, interval_seconds: float, now: datetime) -> float:
    """Seconds from ``now`` until the next evaluation; 0 when it is due.

    ``last`` is the RFC 3339 time of the previous evaluation, None if there was none (then
    the first one is due at once). A ``last`` in the future, which a clock skew between
    operator replicas can produce, never postpones the next evaluation by more than one
    interval.
    """
    if last is None:
        return 0.0
    elapsed = (now - parse_rfc3339(last)).total_seconds()
    return min(max(interval_seconds - elapsed, 0.0), max(interval_seconds, 0.0))


def analysis_due(last: str | None, interval_seconds: float, now: datetime) -> bool:
    """Whether an evaluation is due at ``now``; see :func:`seconds_until_due`."""
    return seconds_until_due(last, interval_seconds, now) == 0.0
