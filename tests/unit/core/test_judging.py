"""Judges in the analysis: what they read from Prometheus, over which window, and how a
verdict becomes a measurement."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from modelrollout.core import judging, rollout
from modelrollout.core.api.judging import Judge
from modelrollout.core.errors import InvalidSpec
from rollout_helpers import NOW
from unit.core.test_baking import baking, v2

LATENCY = Judge.model_validate(
    {"name": "latency", "metric": "Latency", "latency": {"histogram": "x_seconds"}}
)
ERRORS = Judge.model_validate(
    {"name": "errors", "metric": "Errors", "errors": {"counter": "x_requests_total"}}
)
VARIABLES = {"namespace": "ns"}


@pytest.mark.parametrize(
    ("judge", "side", "expected"),
    [
        (
            LATENCY,
            judging.Side("v2", "fraud-candidate", 300),
            {"buckets": 'sum by (le) (increase(x_seconds_bucket{version="v2"}[300s]))'},
        ),
        (
            LATENCY,
            judging.Side("v1", "fraud-stable", 120, 120),
            {"buckets": 'sum by (le) (increase(x_seconds_bucket{version="v1"}[120s] offset 120s))'},
        ),
        (
            ERRORS,
            judging.Side("v2", "fraud-candidate", 60),
            {
                "total": 'sum(increase(x_requests_total{version="v2"}[60s]))',
                "errors": 'sum(increase(x_requests_total{version="v2", code=~"5.."}[60s]))',
            },
        ),
    ],
)
def test_each_side_is_read_over_the_same_window(judge, side, expected):
    queries = judging.queries(judge, VARIABLES, side, field="spec.judges[0]")
    assert {k: v for k, v in queries.__dict__.items() if v is not None} == expected


def test_an_unknown_variable_in_a_selector_names_the_field():
    judge = LATENCY.model_copy(
        update={"latency": LATENCY.latency.model_copy(update={"selector": 'x="{{ nope }}"'})}
    )
    with pytest.raises(InvalidSpec, match=r"judges\[3\]\.latency\.selector"):
        judging.queries(judge, VARIABLES, judging.Side("v", "s", 60), field="judges[3]")


@pytest.mark.parametrize(
    ("elapsed", "interval", "seconds"), [(0, 15, 60), (30.2, 15, 60), (250.5, 15, 251)]
)
def test_the_window_is_the_stage_so_far_and_at_least_a_minute(elapsed, interval, seconds):
    assert judging.window_seconds(elapsed, interval) == seconds


@pytest.mark.parametrize(
    ("done", "stage", "interval", "looks"),
    [
        (0, 300, 15, (1, 20)),
        (19, 300, 15, (20, 20)),
        (25, 300, 15, (26, 26)),
        (3, None, 15, (4, 4)),
    ],
)
def test_looks_are_counted_against_the_planned_number(done, stage, interval, looks):
    assert judging.looks(done, stage, interval) == looks


def test_bucket_series_become_sorted_cumulative_counts_in_ms():
    series = [({"le": "+Inf"}, 10.2), ({"le": "0.05"}, 9.0), ({"le": "0.025"}, 9.4)]
    bounds, counts = judging.bucket_counts(series, unit_ms=1000.0, field="f")
    assert bounds == [25.0, 50.0, math.inf]
    assert counts == [9.4, 9.4, 10.2]  # extrapolated increases kept monotone
    with pytest.raises(ValueError, match="f: a series has no le label"):
        judging.bucket_counts([({}, 1.0)], unit_ms=1.0, field="f")


def _cumulative(values: np.ndarray, bounds: list[float]) -> list[float]:
    return [float((values <= b).sum()) for b in bounds]


def test_a_latency_verdict_becomes_a_measurement_with_its_evidence():
    rng = np.random.default_rng(3)
    bounds = [*np.arange(5.0, 200.0, 5.0), math.inf]
    stable = 20 + rng.exponential(10, 3000)
    slower = 30 + rng.exponential(10, 3000)
    same = 20 + rng.exponential(10, 3000)
    base = (bounds, _cumulative(stable, bounds))
    value, basis = judging.evaluate_latency(
        LATENCY, base, (bounds, _cumulative(slower, bounds)), (5, 5)
    )
    assert value == 1.0
    assert basis.startswith("Fail")
    assert "n=3000 baseline, 3000 judged; look 5 of 5" in basis
    assert "p = " in basis
    value, basis = judging.evaluate_latency(
        LATENCY, base, (bounds, _cumulative(same, bounds)), (5, 5)
    )
    assert value == 0.0, basis
    value, basis = judging.evaluate_latency(LATENCY, base, ([], []), (1, 5))
    assert value is None
    assert "no latency histogram of the judged version" in basis


@pytest.mark.parametrize(
    ("baseline", "judged", "value"),
    [
        ((0.0, 5000.0), (0.0, 5000.0), 0.0),  # no errors anywhere: a pass, not a NaN
        ((5.0, 5000.0), (100.4, 5000.2), 1.0),  # 20x the errors; increases are rounded
        ((0.0, 50.0), (0.0, 50.0), None),  # too few requests
    ],
)
def test_an_error_verdict_becomes_a_measurement(baseline, judged, value):
    got, basis = judging.evaluate_errors(ERRORS, baseline, judged, (1, 1))
    assert got == value, basis


def test_the_sides_of_a_bake_are_candidate_and_stable_now():
    md = v2({"spec": {"stages": {"baking": {"analysis": {"judges": [LATENCY.to_wire()]}}}}})
    d = baking(md)
    md = md.model_copy(update={"status": d.status})
    judged, baseline = judging.sides(md, NOW + timedelta(seconds=90))
    assert (judged.version, judged.service, judged.window_seconds) == ("v2", "fraud-candidate", 90)
    assert (baseline.version, baseline.service, baseline.offset_seconds) == (
        "v1",
        "fraud-stable",
        0,
    )
    assert judging.stage_seconds(md) == 120
    assert rollout.analysis_due(md, NOW + timedelta(seconds=90))
