"""The production watch, the revert it makes, and kubectl modelrollout undo."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args

import pytest

from factories import build_md
from modelrollout.core import reasons, rollout
from modelrollout.core.api.modeldeployment import (
    ModelDeployment,
    ModelDeploymentStatus,
    Trigger,
    UndoRequest,
)
from modelrollout.core.clock import rfc3339
from modelrollout.core.conditions import get_condition
from rollout_helpers import NOW, in_non_production, objects, observe, ready, replay, with_status

V1_TEMPLATE = {"metadata": {"labels": {"v": "1"}}, "spec": {"containers": [{"name": "v1"}]}}
SLO = {"name": "errors", "query": "sum(x)", "thresholdRange": {"max": 0.01}, "failureLimit": 0}
WATCH = {
    "duration": "10m",
    "analysis": {"provider": {"address": "http://prom:9090"}, "interval": "30s", "slos": [SLO]},
}


def version(v: str, **production: Any) -> ModelDeployment:
    return build_md(
        {
            "spec": {
                "model": {"version": v},
                "stages": {"production": production},
            }
        }
    )


def promote(md: ModelDeployment, status: ModelDeploymentStatus | None, at: float = 0):
    """Take ``md``'s version through its replay to production, stable running ``V1_TEMPLATE``."""
    now = NOW + timedelta(seconds=at)
    stable = None
    if status is not None:
        stable = rollout.DeploymentView(2, 2, V1_TEMPLATE, status.stable_hash)
    first = observe(with_status(md, status) if status else md, stable=stable, now=now)
    second = observe(with_status(md, first.status), stable=stable, candidate=ready(md), now=now)
    name = second.create_replay["metadata"]["name"]
    return observe(
        with_status(md, second.status),
        stable=stable,
        candidate=ready(md),
        replay=replay(name, "Succeeded", "Passed"),
        now=now,
    )


@pytest.fixture
def watched() -> tuple[ModelDeployment, rollout.Decision]:
    """v1 in production, then v2 promoted with a ten-minute watch."""
    v1 = version("v1")
    first = promote(v1, None)
    assert first.status.phase == "Production"
    v2 = version("v2", watch=WATCH)
    d = promote(v2, first.status, at=60)
    assert d.status.phase == "Production"
    assert d.status.stable_version == "v2"
    return v2, d


def runs_v1(deployment: dict[str, Any]) -> bool:
    template = deployment["spec"]["template"]
    return template["spec"] == V1_TEMPLATE["spec"] and template["metadata"]["labels"]["v"] == "1"


def at(md, d, seconds, probes=None, **extra) -> rollout.Decision:
    status = d.status if not extra else d.status.model_copy(update=extra)
    return observe(
        with_status(md, status),
        stable=ready(md),
        now=NOW + timedelta(seconds=60 + seconds),
        measurements=probes,
    )


def test_promotion_keeps_the_previous_version_and_starts_the_watch(watched):
    v2, d = watched
    (kept,) = d.status.revisions
    assert (kept.version, kept.template) == ("v1", V1_TEMPLATE)
    assert d.status.analysis == []
    out = at(v2, d, 1)
    watching = get_condition(out.status.conditions, reasons.WATCHING)
    assert (watching.status, watching.reason) == ("True", reasons.WATCH_STARTED)
    assert "reverts to v1" in watching.message
    assert rollout.analysis_due(with_status(v2, out.status), NOW + timedelta(seconds=62))
    assert any(e.reason == reasons.WATCH_STARTED for e in out.events)


@pytest.mark.parametrize(
    ("value", "phase", "stable"),
    [
        (0.0, "Production", "v2"),  # within the SLO: still watched
        (0.5, "RolledBack", "v1"),  # breach: reverted in one step
    ],
)
def test_a_breach_in_production_reverts_to_the_previous_version(watched, value, phase, stable):
    v2, d = watched
    d = at(v2, d, 1)
    out = at(v2, d, 31, {"errors": rollout.Probe(value)})
    assert out.status.phase == phase
    assert out.status.stable_version == stable
    deployment = objects(out)["Deployment/fraud-stable"]
    if stable == "v1":
        assert runs_v1(deployment)
        assert out.status.reverted.version == "v2"
        assert out.status.revisions == []
        assert out.status.traffic.stable_weight == 100
        assert [h.outcome for h in out.status.history][:1] == ["Reverted"]
        assert any(e.reason == reasons.REVERTED for e in out.events)
        in_sync = get_condition(out.status.conditions, reasons.IN_SYNC)
        assert (in_sync.status, in_sync.reason) == ("False", reasons.SPEC_DIFFERS)
    else:
        assert not runs_v1(deployment)


def test_a_reverted_version_is_not_rolled_out_again_until_the_spec_changes(watched):
    v2, d = watched
    reverted = at(v2, at(v2, d, 1), 31, {"errors": rollout.Probe(0.5)})
    again = at(v2, reverted, 120)
    assert again.status.phase == "RolledBack"
    assert again.status.candidate_version is None
    assert again.create_replay is None
    assert runs_v1(objects(again)["Deployment/fraud-stable"])
    # the spec goes back to v1 in Git: in sync, and v1's template comes from the spec again
    v1 = version("v1")
    synced = observe(with_status(v1, again.status), stable=ready(v1), now=NOW + timedelta(hours=1))
    assert synced.status.reverted is None
    assert synced.status.stable_template is None
    in_sync = get_condition(synced.status.conditions, reasons.IN_SYNC)
    assert (in_sync.status, in_sync.reason) == ("True", reasons.SPEC_IN_SYNC)
    assert synced.status.candidate_version is None


def test_retry_rolls_a_reverted_version_out_again(watched):
    v2, d = watched
    reverted = at(v2, at(v2, d, 1), 31, {"errors": rollout.Probe(0.5)})
    retried = at(v2, reverted, 200, retry_requested_at=rfc3339(NOW + timedelta(seconds=250)))
    assert retried.status.phase == "NonProduction"
    assert retried.status.candidate_version == "v2"
    assert retried.status.reverted is None


def test_the_watch_ends_after_its_duration(watched):
    v2, d = watched
    d = at(v2, d, 1)
    out = at(v2, d, 601)
    watching = get_condition(out.status.conditions, reasons.WATCHING)
    assert (watching.status, watching.reason) == ("False", reasons.WATCH_ENDED)
    assert not rollout.analysis_due(with_status(v2, out.status), NOW + timedelta(seconds=700))
    # a breach after the watch changes nothing
    late = at(v2, out, 700, {"errors": rollout.Probe(0.5)})
    assert late.status.phase == "Production"


@pytest.mark.parametrize(
    ("request_", "phase", "stable", "event"),
    [
        (UndoRequest(requested_at="2026-11-22T12:05:00Z"), "RolledBack", "v1", reasons.REVERTED),
        (UndoRequest(requested_at="2026-11-22T12:05:00Z", to_version="v1"), "RolledBack", "v1",
         reasons.REVERTED),
        (UndoRequest(requested_at="2026-11-22T12:05:00Z", to_version="v0"), "Production", "v2",
         reasons.UNDO_REFUSED),
    ],
)  # fmt: skip
def test_undo_restores_a_kept_version(watched, request_, phase, stable, event):
    v2, d = watched
    out = at(v2, d, 240, undo=request_)
    assert out.status.phase == phase
    assert out.status.stable_version == stable
    assert out.status.undo is None  # handled once
    assert [e.reason for e in out.events if e.type == "Warning"] == [event]


def test_undo_during_a_rollout_is_refused_and_says_to_abort():
    md = version("v1")
    status, _ = in_non_production(md)
    out = observe(
        with_status(md, status.model_copy(update={"undo": UndoRequest(requested_at="x")})),
        candidate=ready(md),
    )
    assert out.status.phase == "NonProduction"
    (event,) = [e for e in out.events if e.reason == reasons.UNDO_REFUSED]
    assert "abort" in event.message


def test_without_a_previous_version_there_is_no_watch():
    md = version("v1", watch=WATCH)
    d = promote(md, None)
    assert d.status.revisions == []
    out = observe(with_status(md, d.status), stable=ready(md), now=NOW + timedelta(seconds=5))
    assert get_condition(out.status.conditions, reasons.WATCHING) is None
    assert not rollout.analysis_due(with_status(md, out.status), NOW + timedelta(seconds=40))


def test_every_trigger_type_has_its_reason():
    (types,) = [get_args(f.annotation) for n, f in Trigger.model_fields.items() if n == "type"]
    assert {f"Trigger{t}" for t in types} - {"TriggerSLOBreach"} <= set(reasons.TRIGGERS)


def test_a_judge_in_the_watch_compares_with_the_previous_version_before_promotion(watched):
    from modelrollout.core import judging

    v2, d = watched
    md = with_status(v2, d.status)
    judged, baseline = judging.sides(md, NOW + timedelta(seconds=60 + 150))
    assert (judged.version, judged.offset_seconds) == ("v2", 0)
    assert judged.window_seconds == 150
    # v1's figures over as long a time, ending when v2 was promoted
    assert (baseline.version, baseline.window_seconds, baseline.offset_seconds) == ("v1", 150, 150)
    assert judging.stage_seconds(md) == 600
