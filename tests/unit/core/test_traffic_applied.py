"""The TrafficApplied condition: the router's read-back folded into the status."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelrollout.core import reasons, rollout, traffic
from modelrollout.core.api.modeldeployment import ModelDeploymentStatus
from modelrollout.core.conditions import get_condition
from rollout_helpers import NOW

IN_EFFECT = traffic.Check(True, "WeightsInEffect", "R: stable 75%, candidate 25% in effect")
MISMATCH = traffic.Check(False, "TrafficMismatch", "R: expected 75/25, but 50/50")
OTHER_MISMATCH = traffic.Check(False, "TrafficMismatch", "R: expected 75/25, but 0/100")
ROUTER_ERROR = traffic.Check(False, "TrafficRouterError", "HTTPRoute live not found")


def fold(*checks: traffic.Check) -> tuple[ModelDeploymentStatus, list[list[str]]]:
    """Each check in its own reconcile, a second apart; the Event reasons of each."""
    status = ModelDeploymentStatus()
    reasons = []
    for i, check in enumerate(checks):
        events = rollout.record_traffic(status, check, generation=3, now=NOW + timedelta(seconds=i))
        assert all(event.type == "Warning" for event in events)
        reasons.append([event.reason for event in events])
    return status, reasons


@pytest.mark.parametrize(
    ("checks", "events"),
    [
        pytest.param([IN_EFFECT], [[]], id="in effect: no Event"),
        pytest.param([MISMATCH], [["TrafficMismatch"]], id="a mismatch is reported"),
        pytest.param(
            [MISMATCH, MISMATCH, MISMATCH],
            [["TrafficMismatch"], [], []],
            id="once, not every reconcile",
        ),
        pytest.param(
            [MISMATCH, OTHER_MISMATCH],
            [["TrafficMismatch"], ["TrafficMismatch"]],
            id="a different mismatch is new",
        ),
        pytest.param(
            [MISMATCH, IN_EFFECT, MISMATCH],
            [["TrafficMismatch"], [], ["TrafficMismatch"]],
            id="again after a recovery",
        ),
        pytest.param([ROUTER_ERROR], [[]], id="router errors have their own Event"),
    ],
)
def test_a_mismatch_is_one_warning_event(checks, events):
    assert fold(*checks)[1] == events


@pytest.mark.parametrize(
    ("check", "status"),
    [(IN_EFFECT, "True"), (MISMATCH, "False"), (ROUTER_ERROR, "False")],
)
def test_the_condition_carries_the_check(check, status):
    folded, _ = fold(check)
    condition = get_condition(folded.conditions, reasons.TRAFFIC_APPLIED)
    assert (condition.status, condition.reason, condition.message) == (
        status,
        check.reason,
        check.message,
    )
    assert condition.observed_generation == 3


def test_the_transition_time_moves_only_with_the_status():
    folded, _ = fold(MISMATCH, OTHER_MISMATCH, ROUTER_ERROR)
    condition = get_condition(folded.conditions, reasons.TRAFFIC_APPLIED)
    assert condition.last_transition_time == "2026-11-22T12:00:00Z"
    folded, _ = fold(MISMATCH, IN_EFFECT)
    condition = get_condition(folded.conditions, reasons.TRAFFIC_APPLIED)
    assert condition.last_transition_time == "2026-11-22T12:00:01Z"
