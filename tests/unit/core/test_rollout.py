"""Table tests of the rollout decision: one observed state in, status and actions out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from factories import build_md
from modelrollout.core import rollout, workloads
from modelrollout.core.conditions import get_condition
from rollout_helpers import (
    MISSING,
    NOW,
    in_non_production,
    objects,
    observe,
    promoted,
    ready,
    replay,
    with_status,
)


def test_missing_reference_holds_and_warns_once():
    md = build_md()
    first = observe(md, missing=[MISSING])
    assert first.apply == []
    assert first.create_replay is None
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "MissingReference")]
    cond = get_condition(first.status.conditions, "ReferencesResolved")
    assert cond is not None
    assert cond.status == "False"
    assert "spec.stages.nonProduction.replay.events.configMapKeyRef" in cond.message
    assert first.status.phase == "Pending"
    assert first.status.observed_generation == 1
    assert first.requeue_after == rollout.MISSING_RETRY_SECONDS
    again = observe(with_status(md, first.status), missing=[MISSING])
    assert again.events == []


def test_first_version_becomes_candidatein_non_production():
    md = build_md()
    decision = observe(md)
    status = decision.status
    assert status.phase == "NonProduction"
    assert status.candidate_version == "v1"
    assert status.candidate_hash == workloads.template_hash(md.spec)
    assert status.stable_version is None
    assert [e.reason for e in decision.events] == ["NewCandidate"]
    objs = objects(decision)
    assert objs["Deployment/fraud-candidate"]["spec"]["replicas"] == 2
    assert objs["Deployment/fraud-stable"]["spec"]["replicas"] == 0
    assert get_condition(status.conditions, "Ready").reason == "NoStableVersion"
    assert get_condition(status.conditions, "Progressing").status == "True"
    assert get_condition(status.conditions, "ReferencesResolved").status == "True"


def test_replay_waits_for_ready_candidate():
    md = build_md()
    first = observe(md)
    decision = observe(
        with_status(md, first.status),
        candidate=rollout.DeploymentView(2, 1, {}, first.status.candidate_hash),
    )
    assert decision.create_replay is None
    assert get_condition(decision.status.conditions, "ReplayPassed").reason == (
        "WaitingForCandidate"
    )


@pytest.mark.parametrize("wait", [True, False])
def test_replay_test_created_against_candidate(wait):
    md = build_md()
    first = observe(md)
    decision = observe(
        with_status(md, first.status), candidate=ready(md) if wait else None, wait_for_ready=wait
    )
    manifest = decision.create_replay
    assert manifest is not None
    assert manifest["kind"] == "ReplayTest"
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    spec = manifest["spec"]
    assert spec["target"] == {
        "service": {
            "name": "fraud-candidate",
            "port": 80,
            "path": "/v1/models/model:predict",
            "scheme": "http",
        }
    }
    assert "baseline" not in spec  # the first version has nothing to compare with
    assert spec["events"] == {"configMapKeyRef": {"name": "events", "key": "e.jsonl"}}
    assert decision.status.replay_test == manifest["metadata"]["name"]
    # the next reconcile sees the ReplayTest and does not create it again
    name = manifest["metadata"]["name"]
    later = observe(
        with_status(md, decision.status),
        candidate=ready(md),
        replay=replay(name, "Running", "Pending"),
    )
    assert later.create_replay is None
    assert later.events == []


def test_passed_replay_promotes_first_version():
    md = build_md()
    status, name = in_non_production(md)
    decision = observe(
        with_status(md, status), candidate=ready(md), replay=replay(name, "Succeeded", "Passed")
    )
    st = decision.status
    assert st.phase == "Production"
    assert st.stable_version == "v1"
    assert st.candidate_version is None
    assert st.history[0].outcome == "Promoted"
    assert "Promoted" in [e.reason for e in decision.events]
    objs = objects(decision)
    assert objs["Deployment/fraud-stable"]["spec"]["replicas"] == 2
    assert objs["Deployment/fraud-candidate"]["spec"]["replicas"] == 0


@pytest.mark.parametrize(
    ("phase", "verdict", "reasons"),
    [
        ("Succeeded", "Failed", ("p99 310ms > 250ms",)),
        ("Failed", "Pending", ()),
        ("Succeeded", "Inconclusive", ("no labelled responses",)),
    ],
)
def test_failed_replay_rolls_back(phase, verdict, reasons):
    md = build_md()
    status, name = in_non_production(md)
    decision = observe(
        with_status(md, status), candidate=ready(md), replay=replay(name, phase, verdict, *reasons)
    )
    st = decision.status
    assert st.phase == "RolledBack"
    assert st.history[0].outcome == "RolledBack"
    assert get_condition(st.conditions, "ReplayPassed").status == "False"
    assert [e.type for e in decision.events] == ["Warning"]
    for reason in reasons:
        assert reason in decision.events[0].message
    assert objects(decision)["Deployment/fraud-candidate"]["spec"]["replicas"] == 0


def test_new_version_is_compared_with_stable_and_then_bakes():
    v1 = build_md({"spec": {"stages": {"baking": {"steps": [{"weight": 10, "duration": "1m"}]}}}})
    stable_status = promoted(v1)
    v2 = build_md(
        {
            "metadata": {"generation": 2},
            "spec": {
                "model": {"version": "v2"},
                "stages": {"baking": {"steps": [{"weight": 10, "duration": "1m"}]}},
            },
        }
    )
    started = observe(with_status(v2, stable_status), stable=ready(v1))
    assert started.status.phase == "NonProduction"
    assert started.status.candidate_version == "v2"
    assert started.status.stable_version == "v1"
    objs = objects(started)
    # the stable Deployment keeps its own template while the candidate is tested
    assert objs["Deployment/fraud-stable"]["spec"]["template"]["spec"] == {}
    created = observe(with_status(v2, started.status), stable=ready(v1), candidate=ready(v2))
    assert created.create_replay["spec"]["baseline"]["service"]["name"] == "fraud-stable"
    name = created.create_replay["metadata"]["name"]
    baking = observe(
        with_status(v2, created.status),
        stable=ready(v1),
        candidate=ready(v2),
        replay=replay(name, "Succeeded", "Passed"),
    )
    assert baking.status.phase == "Baking"
    assert baking.status.current_step == 0


def test_non_production_times_out():
    md = build_md({"spec": {"stages": {"nonProduction": {"timeout": "10m"}}}})
    first = observe(md)
    late = observe(with_status(md, first.status), now=NOW + timedelta(minutes=11))
    assert late.status.phase == "RolledBack"
    assert get_condition(late.status.conditions, "RolledBack").reason == "StageTimeout"


def test_reverting_the_spec_withdraws_the_candidate():
    v1 = build_md()
    stable_status = promoted(v1)
    v2 = build_md({"spec": {"model": {"version": "v2"}}})
    testing = observe(with_status(v2, stable_status), stable=ready(v1)).status
    back = observe(with_status(v1, testing), stable=ready(v1))
    assert back.status.phase == "Production"
    assert back.status.candidate_version is None
    assert back.status.history[0].outcome == "Superseded"


def test_disabled_non_production_promotes_first_version_at_once():
    md = build_md({"spec": {"stages": {"nonProduction": {"enabled": False}}}})
    decision = observe(md)
    assert decision.status.phase == "Production"
    assert decision.status.stable_version == "v1"


def test_unchanged_state_gives_identical_status():
    md = build_md()
    first = observe(md)
    second = observe(with_status(md, first.status))
    assert second.status == first.status.model_copy(update={"message": second.status.message})


def test_first_version_replay_drops_baseline_criteria():
    md = build_md(
        {
            "spec": {
                "stages": {
                    "nonProduction": {
                        "replay": {
                            "successCriteria": {
                                "maxErrorRate": 0.01,
                                "minAgreement": 0.9,
                                "maxP99RatioToBaseline": 1.2,
                                "maxMeanAbsScoreDiff": 0.1,
                            }
                        }
                    }
                }
            }
        }
    )
    first = observe(md)
    created = observe(with_status(md, first.status), candidate=ready(md)).create_replay
    assert created["spec"]["successCriteria"] == {"maxErrorRate": 0.01}
    # with a stable version to compare with, every criterion applies
    v1_status = promoted(build_md())
    v2 = build_md(
        {
            "spec": {
                "model": {"version": "v2"},
                "stages": {
                    "nonProduction": {
                        "replay": {"successCriteria": {"maxErrorRate": 0.01, "minAgreement": 0.9}}
                    }
                },
            }
        }
    )
    started = observe(with_status(v2, v1_status), stable=ready(build_md()))
    created = observe(
        with_status(v2, started.status), stable=ready(build_md()), candidate=ready(v2)
    ).create_replay
    assert created["spec"]["successCriteria"] == {"maxErrorRate": 0.01, "minAgreement": 0.9}


def test_candidate_not_ready_within_the_progress_deadline_fails_the_rollout():
    md = build_md({"spec": {"progressDeadline": "5m"}})
    first = observe(md)
    waiting = rollout.DeploymentView(2, 0, {}, first.status.candidate_hash)
    still = observe(
        with_status(md, first.status), candidate=waiting, now=NOW + timedelta(minutes=4)
    )
    assert still.status.phase == "NonProduction"
    late = observe(with_status(md, first.status), candidate=waiting, now=NOW + timedelta(minutes=6))
    assert late.status.phase == "Failed"
    assert get_condition(late.status.conditions, "RolledBack").reason == (
        "ProgressDeadlineExceeded"
    )
    assert late.status.history[0].outcome == "Failed"
    assert [e.reason for e in late.events] == ["Failed"]
    assert objects(late)["Deployment/fraud-candidate"]["spec"]["replicas"] == 0


def test_retry_rolls_the_same_candidate_out_again_with_a_new_replay():
    md = build_md()
    status, name = in_non_production(md)
    failed = observe(
        with_status(md, status),
        candidate=ready(md),
        replay=replay(name, "Succeeded", "Failed", "p99 too high"),
    )
    assert failed.status.phase == "RolledBack"
    too_early = failed.status.model_copy(update={"retry_requested_at": "2026-11-22T11:00:00Z"})
    ignored = observe(
        with_status(md, too_early),
        candidate=ready(md),
        replay=replay(name, "Succeeded", "Failed", "p99 too high"),
    )
    assert ignored.status.phase == "RolledBack", "a request older than the rollback is ignored"
    asked = failed.status.model_copy(update={"retry_requested_at": "2026-11-22T12:05:00Z"})
    retried = observe(
        with_status(md, asked),
        candidate=ready(md),
        replay=replay(name, "Succeeded", "Failed", "p99 too high"),
        now=NOW + timedelta(minutes=6),
    )
    assert retried.status.phase == "NonProduction"
    assert retried.status.attempt == 2
    assert "Retry" in [e.reason for e in retried.events]
    assert retried.create_replay is not None
    assert retried.create_replay["metadata"]["name"] == f"{name}-2"
    assert get_condition(retried.status.conditions, "RolledBack").status == "False"
