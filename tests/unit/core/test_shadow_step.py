"""Table tests of the shadow step: no live traffic, the sidecars' counts judged, then the
first weighted step, a rollback, or a hold for more pairs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelrollout.core import reasons, rollout
from modelrollout.core.conditions import get_condition
from modelrollout.core.replay.quality import PredictionReader
from modelrollout.core.shadow import Answer, ShadowTally
from rollout_helpers import NOW, ready, replay, with_status
from unit.core.test_baking import baking, v2

READER = PredictionReader.create("response.payload.predictions[0]")
SHADOW = {"duration": "2m", "sample": 0.5, "minPairs": 100, "maxExtraDisagreement": 0.01}


def shadowed():
    return v2(
        {
            "spec": {
                "monitoring": {"capture": {"enabled": True}},
                "stages": {"baking": {"shadow": SHADOW}},
            }
        }
    )


def counts(run: str, n: int, flips: int) -> rollout.ShadowReading:
    tally = ShadowTally(run, READER)
    for i in range(n):
        served = READER.interpret(0.9)
        candidate = READER.interpret(0.1 if i < flips else 0.9)
        tally.add(served, Answer(candidate, 5.0), Answer(served, 4.0))
    return rollout.ShadowReading(tally.state())


def test_the_bake_starts_in_shadow_without_live_traffic():
    md = shadowed()
    d = baking(md)
    assert d.status.phase == "Baking"
    assert d.status.shadow is not None
    assert d.status.shadow.outcome == "Running"
    assert (d.status.traffic.stable_weight, d.status.traffic.candidate_weight) == (100, 0)
    assert reasons.SHADOW_STARTED in [e.reason for e in d.events]
    assert rollout.in_shadow(md.model_copy(update={"status": d.status}))
    # no SLO is measured while the candidate has no live traffic
    assert not rollout.analysis_due(md.model_copy(update={"status": d.status}), NOW)


@pytest.mark.parametrize(
    ("seconds", "n", "flips", "phase", "outcome", "weight", "event"),
    [
        (60, 500, 0, "Baking", "Running", 0, None),  # agreeing, but the time is not up
        (121, 500, 0, "Baking", "Pass", 10, reasons.SHADOW_PASSED),  # the first step begins
        (60, 500, 100, "RolledBack", "Fail", 0, reasons.ROLLED_BACK),  # fails at once
        (121, 20, 0, "Baking", "Inconclusive", 0, reasons.SHADOW_WAITING),  # held for pairs
    ],
)
def test_the_shadow_step_decides(seconds, n, flips, phase, outcome, weight, event):
    md = shadowed()
    d = baking(md)
    run = d.status.shadow.run
    after = rollout.decide(
        rollout.Observed(**{**_observed(md, d, seconds).__dict__, "shadow": counts(run, n, flips)})
    )
    assert after.status.phase == phase
    assert after.status.shadow.outcome == outcome
    assert after.status.shadow.pairs == n
    if phase == "Baking":
        assert after.status.traffic.candidate_weight == weight
    if event:
        assert event in [e.reason for e in after.events], [e.reason for e in after.events]
    if outcome == "Fail":
        assert "agreement 80.00%" in after.status.message
        rolled_back = get_condition(after.status.conditions, "RolledBack")
        assert rolled_back.reason == reasons.SHADOW_FAILED


def _observed(md, d, seconds):
    return rollout.Observed(
        md=with_status(md, d.status),
        missing=[],
        stable=ready(md, "old"),
        candidate=ready(md),
        replay=replay(d.status.replay_test, "Succeeded", "Passed"),
        now=NOW + timedelta(seconds=seconds),
    )


def test_unreadable_counts_hold_the_shadow_and_say_why():
    md = shadowed()
    d = baking(md)
    base = _observed(md, d, 200)
    after = rollout.decide(
        rollout.Observed(**{**base.__dict__, "shadow": rollout.ShadowReading(None, "pod x: down")})
    )
    assert after.status.phase == "Baking"
    assert after.status.shadow.outcome == "Running"
    assert "pod x: down" in after.status.message


def test_a_spec_without_capture_is_refused():
    with pytest.raises(ValueError, match=r"monitoring\.capture\.enabled"):
        v2({"spec": {"stages": {"baking": {"shadow": SHADOW}}}})
