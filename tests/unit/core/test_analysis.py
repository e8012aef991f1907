"""Table tests of the analysis rules: rendering, assessing, counting, limits and timing."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout.core import analysis
from modelrollout.core.api.modeldeployment import Measurement, MetricResult, ThresholdRange
from modelrollout.core.errors import InvalidSpec

AT = "2026-11-22T12:00:00Z"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FIELD = "spec.stages.baking.analysis.slos[0].query"
VARIABLES = {
    "name": "fraud",
    "namespace": "ml",
    "model": "fraud-scorer",
    "candidate_version": "v2",
    "stable_version": "v1",
    "candidate_service": "fraud-candidate",
    "stable_service": "fraud-stable",
    "interval": "1m",
}


# --- render_query -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("up", "up"),
        ("{{name}}", "fraud"),
        ("{{ name }}", "fraud"),
        ("{{   namespace\t}}", "ml"),
        (
            'sum(rate(errors{service="{{ candidate_service }}"}[{{ interval }}]))',
            'sum(rate(errors{service="fraud-candidate"}[1m]))',
        ),
        (
            '{version=~"{{candidate_version}}|{{ stable_version }}"}',
            '{version=~"v2|v1"}',
        ),
        ("{{ model }}/{{ model }}", "fraud-scorer/fraud-scorer"),
        ('x{a="b"} + on() y{c="{{ stable_service }}"}', 'x{a="b"} + on() y{c="fraud-stable"}'),
        ("{ {name} }", "{ {name} }"),
        ("", ""),
    ],
)
def test_render_query_replaces_variables(template: str, expected: str) -> None:
    assert analysis.render_query(template, VARIABLES, field=FIELD) == expected


def test_render_query_does_not_expand_values() -> None:
    rendered = analysis.render_query("{{ a }}-{{ b }}", {"a": "{{ b }}", "b": "x"}, field=FIELD)
    assert rendered == "{{ b }}-x"


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("rate(x{v='{{ version }}'}[1m])", "'{{ version }}'"),
        ("{{candidate-version}}", "'{{candidate-version}}'"),
        ("{{ Name }}", "'{{ Name }}'"),
        ("{{}}", "'{{}}'"),
        ("{{ name }} and {{ nope }}", "'{{ nope }}'"),
    ],
)
def test_render_query_rejects_unknown_variables(template: str, named: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        analysis.render_query(template, VARIABLES, field=FIELD)
    assert caught.value.field == FIELD
    message = str(caught.value)
    assert message.startswith(f"{FIELD}: unknown variable {named}")
    assert "{{ candidate_version }}" in message  # lists what is known


def test_render_query_with_no_variables_names_none() -> None:
    with pytest.raises(InvalidSpec, match=r"known variables are none"):
        analysis.render_query("{{ name }}", {}, field=FIELD)


def test_query_variables_are_the_documented_ones() -> None:
    assert set(analysis.QUERY_VARIABLES) == set(VARIABLES)


# --- assess -------------------------------------------------------------------------------

MAX = ThresholdRange(max=0.01)
MIN = ThresholdRange(min=0.9)
BOTH = ThresholdRange(min=0.5, max=2.0)
NONE = ThresholdRange()  # the schema forbids it; the rules still answer


@pytest.mark.parametrize(
    ("value", "error", "threshold", "no_data", "phase", "kept", "message"),
    [
        # within the range, bounds included
        (0.005, None, MAX, "Inconclusive", "Successful", 0.005, ""),
        (0.01, None, MAX, "Inconclusive", "Successful", 0.01, ""),
        (-3.0, None, MAX, "Inconclusive", "Successful", -3.0, ""),
        (0.9, None, MIN, "Inconclusive", "Successful", 0.9, ""),
        (1e9, None, MIN, "Inconclusive", "Successful", 1e9, ""),
        (0.5, None, BOTH, "Inconclusive", "Successful", 0.5, ""),
        (2.0, None, BOTH, "Inconclusive", "Successful", 2.0, ""),
        (1.0, None, BOTH, "Fail", "Successful", 1.0, ""),
        (0.0, None, ThresholdRange(min=0, max=0), "Inconclusive", "Successful", 0.0, ""),
        (42.0, None, NONE, "Inconclusive", "Successful", 42.0, ""),
        # outside the range
        (0.031, None, MAX, "Inconclusive", "Failed", 0.031, "0.031 > max 0.01"),
        (0.0100001, None, MAX, "Inconclusive", "Failed", 0.0100001, "0.0100001 > max 0.01"),
        (0.89, None, MIN, "Inconclusive", "Failed", 0.89, "0.89 < min 0.9"),
        (0.0, None, MIN, "Fail", "Failed", 0.0, "0 < min 0.9"),
        (0.4, None, BOTH, "Inconclusive", "Failed", 0.4, "0.4 < min 0.5"),
        (3.0, None, BOTH, "Inconclusive", "Failed", 3.0, "3 > max 2"),
        (1e-05, None, ThresholdRange(max=0), "Inconclusive", "Failed", 1e-05, "1e-05 > max 0"),
        # long values are shortened, but never so far that they meet the bound
        (
            0.24784782608695652,
            None,
            ThresholdRange(max=0.1),
            "Inconclusive",
            "Failed",
            0.24784782608695652,
            "0.2478 > max 0.1",
        ),
        (
            0.0100000001,
            None,
            MAX,
            "Inconclusive",
            "Failed",
            0.0100000001,
            "0.0100000001 > max 0.01",
        ),
        (0.899999, None, MIN, "Inconclusive", "Failed", 0.899999, "0.899999 < min 0.9"),
        # no data: never a pass
        (None, None, MAX, "Inconclusive", "Inconclusive", None, "no data"),
        (None, None, MAX, "Fail", "Failed", None, "no data"),
        (math.nan, None, MAX, "Inconclusive", "Inconclusive", None, "no data"),
        (math.nan, None, MIN, "Fail", "Failed", None, "no data"),
        (math.inf, None, MIN, "Inconclusive", "Inconclusive", None, "no data"),
        (-math.inf, None, MAX, "Inconclusive", "Inconclusive", None, "no data"),
        (math.inf, None, NONE, "Fail", "Failed", None, "no data"),
        (None, None, NONE, "Inconclusive", "Inconclusive", None, "no data"),
        # a query error wins over any value
        (None, "HTTP 503", MAX, "Inconclusive", "Error", None, "HTTP 503"),
        (None, "timed out", MAX, "Fail", "Error", None, "timed out"),
        (0.005, "3 series", MAX, "Inconclusive", "Error", None, "3 series"),
        (math.nan, "boom", MAX, "Fail", "Error", None, "boom"),
    ],
)
def test_assess(
    value: float | None,
    error: str | None,
    threshold: ThresholdRange,
    no_data: Any,
    phase: str,
    kept: float | None,
    message: str,
) -> None:
    m = analysis.assess(value, error, threshold, no_data, AT)
    assert m.phase == phase
    assert m.value == kept
    assert m.started_at == AT
    if phase == "Successful":
        assert m.message == ""
    else:
        assert m.message.startswith(message)


@pytest.mark.parametrize(
    ("value", "returned"),
    [(None, "no sample or NaN"), (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")],
)
def test_assess_no_data_says_what_came_back(value: float | None, returned: str) -> None:
    inconclusive = analysis.assess(value, None, MAX, "Inconclusive", AT)
    assert inconclusive.message == f"no data (the query returned {returned})"
    failed = analysis.assess(value, None, MAX, "Fail", AT)
    assert failed.message == f"no data (the query returned {returned}); noData is Fail"


def test_assessed_measurements_serialise_without_nan() -> None:
    m = analysis.assess(math.nan, None, MAX, "Inconclusive", AT)
    assert m.to_wire() == {
        "phase": "Inconclusive",
        "message": "no data (the query returned nan)",
        "startedAt": AT,
    }


# --- record -------------------------------------------------------------------------------


def measurement(phase: Any, n: int = 0) -> Measurement:
    return Measurement(phase=phase, value=float(n), started_at=f"2026-11-22T12:{n:02d}:00Z")


def tally(phases: str, keep: int = 10) -> MetricResult:
    """Record one measurement per letter: S(uccessful), F(ailed), I(nconclusive), E(rror)."""
    names = {"S": "Successful", "F": "Failed", "I": "Inconclusive", "E": "Error"}
    result = MetricResult(name="error-rate")
    for n, letter in enumerate(phases):
        result = analysis.record(result, measurement(names[letter], n), keep=keep)
    return result


@pytest.mark.parametrize(
    ("phases", "successful", "failed", "inconclusive", "error", "consecutive"),
    [
        ("", 0, 0, 0, 0, 0),
        ("S", 1, 0, 0, 0, 0),
        ("F", 0, 1, 0, 0, 0),
        ("I", 0, 0, 1, 0, 0),
        ("E", 0, 0, 0, 1, 1),
        ("EEE", 0, 0, 0, 3, 3),
        ("EES", 1, 0, 0, 2, 0),
        ("EEF", 0, 1, 0, 2, 0),
        ("EEI", 0, 0, 1, 2, 0),
        ("EESEE", 1, 0, 0, 4, 2),
        ("SFISFIE", 2, 2, 2, 1, 1),
        ("S" * 25, 25, 0, 0, 0, 0),
        ("E" * 12, 0, 0, 0, 12, 12),
    ],
)
def test_record_counts(
    phases: str, successful: int, failed: int, inconclusive: int, error: int, consecutive: int
) -> None:
    result = tally(phases)
    assert (
        result.successful,
        result.failed,
        result.inconclusive,
        result.error,
        result.consecutive_error,
    ) == (successful, failed, inconclusive, error, consecutive)
    assert result.name == "error-rate"


@pytest.mark.parametrize(
    ("count", "keep", "kept"),
    [
        (1, 10, [0]),
        (3, 10, [0, 1, 2]),
        (10, 10, list(range(10))),
        (11, 10, list(range(1, 11))),
        (25, 10, list(range(15, 25))),
        (5, 3, [2, 3, 4]),
        (5, 1, [4]),
        (5, 0, []),
    ],
)
def test_record_keeps_the_newest_measurements_last(count: int, keep: int, kept: list[int]) -> None:
    result = tally("S" * count, keep=keep)
    assert [m.value for m in result.measurements] == [float(n) for n in kept]
    assert result.successful == count


def test_record_returns_a_new_result() -> None:
    before = tally("SE")
    snapshot = before.model_dump()
    after = analysis.record(before, measurement("Failed", 7))
    assert before.model_dump() == snapshot
    assert after is not before
    assert after.measurements[-1].started_at == "2026-11-22T12:07:00Z"


@pytest.mark.parametrize("keep", [-1, 11])
def test_record_rejects_a_keep_the_status_cannot_hold(keep: int) -> None:
    with pytest.raises(ValueError, match="keep must be between 0 and 10"):
        analysis.record(MetricResult(name="x"), measurement("Successful"), keep=keep)


# --- status_of ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phases", "failure_limit", "inconclusive_limit", "error_limit", "expected"),
    [
        ("", 0, 0, 0, "Running"),
        ("SSS", 0, 0, 0, "Running"),
        # a limit is the number tolerated
        ("F", 1, 0, 4, "Running"),
        ("FF", 1, 0, 4, "Failed"),
        ("F", 0, 0, 4, "Failed"),
        ("FSFSF", 3, 0, 4, "Running"),
        ("FSFSFSF", 3, 0, 4, "Failed"),
        ("I", 0, 0, 4, "Inconclusive"),
        ("I", 0, 1, 4, "Running"),
        ("II", 0, 1, 4, "Inconclusive"),
        # errors count only in a row
        ("EEEE", 0, 0, 4, "Running"),
        ("EEEEE", 0, 0, 4, "Failed"),
        ("EEEESEEEE", 0, 0, 4, "Running"),
        ("E", 0, 0, 0, "Failed"),
        ("EEEEEEEES", 0, 0, 4, "Running"),
        ("EEEEEEEEE", 5, 5, 4, "Failed"),
        # errors are not failures
        ("EEE", 0, 0, 4, "Running"),
        # failed wins over inconclusive
        ("FFII", 1, 1, 4, "Failed"),
        ("IIEE", 0, 1, 1, "Failed"),
        ("IIF", 1, 1, 4, "Inconclusive"),
    ],
)
def test_status_of(
    phases: str, failure_limit: int, inconclusive_limit: int, error_limit: int, expected: str
) -> None:
    result = tally(phases)
    status = analysis.status_of(
        result,
        failure_limit=failure_limit,
        inconclusive_limit=inconclusive_limit,
        consecutive_error_limit=error_limit,
    )
    assert status == expected


def test_status_of_counts_beyond_the_kept_measurements() -> None:
    result = tally("FF" + "S" * 20)
    assert len(result.measurements) == 10
    status = analysis.status_of(
        result, failure_limit=1, inconclusive_limit=0, consecutive_error_limit=4
    )
    assert status == "Failed"


# --- analysis_due -------------------------------------------------------------------------


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("last", "interval", "due", "remaining"),
    [
        (None, 60, True, 0.0),
        (None, 0, True, 0.0),
        (ago(0), 60, False, 60.0),
        (ago(1), 60, False, 59.0),
        (ago(59), 60, False, 1.0),
        (ago(60), 60, True, 0.0),
        (ago(61), 60, True, 0.0),
        (ago(86400), 60, True, 0.0),
        (ago(10), 30, False, 20.0),
        (ago(0), 0, True, 0.0),
        (ago(0), 0.5, False, 0.5),
        # a time in the future (clock skew) postpones by one interval at most
        (ago(-30), 60, False, 60.0),
        (ago(-3600), 60, False, 60.0),
        ("2026-11-22T12:00:00+00:00", 60, False, 60.0),
        ("2026-11-22T13:00:00+01:00", 60, False, 60.0),
    ],
)
def test_analysis_due(last: str | None, interval: float, due: bool, remaining: float) -> None:
    assert analysis.analysis_due(last, interval, NOW) is due
    assert analysis.seconds_until_due(last, interval, NOW) == pytest.approx(remaining)
