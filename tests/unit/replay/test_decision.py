"""The ReplayTest decision, as a table: what was observed -> status, Events and actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from factories import replay_test_spec, shard_result
from modelrollout.core.api.replaytest import ReplayTest, ReplayTestStatus
from modelrollout.core.conditions import get_condition
from modelrollout.core.references import Reference
from modelrollout.core.replay.decision import Decision, Observed, Shards, decide, settled
from modelrollout.core.replay.shards import ShardOutcome

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STARTED = "2026-11-22T11:59:00Z"
MISSING = [Reference("ConfigMap", "ev", "e.jsonl", "spec.events.configMapKeyRef")]


def ok(index: int, latency_s: float = 0.02) -> ShardOutcome:
    return ShardOutcome(index, "succeeded", result=shard_result(index, 2, latency_s))


def observe(
    *,
    status: dict[str, Any] | None = None,
    generation: int = 3,
    now: datetime = NOW,
    spec: dict[str, Any] | None = None,
    **observed: Any,
) -> Decision:
    test = ReplayTest.model_validate(
        {
            "metadata": {"name": "rt", "namespace": "ml", "generation": generation},
            "spec": replay_test_spec(**(spec or {})).model_dump(by_alias=True, exclude_none=True),
            "status": status,
        }
    )
    return decide(Observed(test=test, generation=generation, executor="job", now=now, **observed))


def reasons_of(decision: Decision) -> list[str]:
    return [event.reason for event in decision.events]


def condition(decision: Decision, type_: str) -> tuple[str, str]:
    found = get_condition(decision.status.conditions, type_)
    assert found is not None, type_
    return found.status, found.reason


RUNNING = {"observedGeneration": 3, "phase": "Running", "startTime": STARTED, "jobName": "j"}


@pytest.mark.parametrize(
    ("name", "observed", "phase", "events", "start", "stop", "requeue"),
    [
        ("first look starts the shards", {"shards": Shards()}, "Running",
         ["ReplayStarted"], True, False, 2.0),
        ("started and running", {"status": RUNNING, "shards": Shards(
            outcomes=[ShardOutcome(0, "running")], started=True)},
         "Running", [], False, False, 2.0),
        ("a stale Job is replaced without a second start Event", {"status": RUNNING,
         "shards": Shards()}, "Running", [], True, False, 2.0),
        ("missing events ConfigMap", {"missing": MISSING}, "Pending",
         ["MissingReference"], False, False, 10.0),
        ("missing again, already reported", {"missing": MISSING, "status": {
            "observedGeneration": 3, "conditions": [{
                "type": "ReferencesResolved", "status": "False", "reason": "MissingReference",
                "message": "ConfigMap 'ev' key 'e.jsonl' (referenced by "
                "spec.events.configMapKeyRef) not found", "lastTransitionTime": STARTED}]}},
         "Pending", [], False, False, 10.0),
        ("a run that cannot be built", {"invalid": "spec.events.volume: not here"},
         "Failed", ["InvalidSpec"], False, False, None),
        ("a failed shard", {"status": RUNNING, "shards": Shards(outcomes=[
            ok(0), ShardOutcome(1, "failed", reason="ErrImagePull", message="no image")],
            started=True)}, "Failed", ["ErrImagePull"], False, True, None),
        ("the Job failed", {"status": RUNNING, "shards": Shards(
            failure=("DeadlineExceeded", "Job was active longer than allowed"), started=True)},
         "Failed", ["DeadlineExceeded"], False, True, None),
        ("past the active deadline", {"status": RUNNING, "spec": {"activeDeadline": "30s"},
         "shards": Shards(outcomes=[ShardOutcome(0, "running")], started=True)},
         "Failed", ["DeadlineExceeded"], False, True, None),
        ("a shard without a result line", {"status": RUNNING, "shards": Shards(
            outcomes=[ok(0), ShardOutcome(1, "succeeded")], started=True)},
         "Failed", ["InvalidResult"], False, True, None),
        ("all shards done, criteria met", {"status": RUNNING, "spec": {
            "successCriteria": {"maxP99Ms": 50}}, "shards": Shards(
                outcomes=[ok(0), ok(1)], started=True)},
         "Succeeded", ["CriteriaMet"], False, True, None),
        ("all shards done, criteria failed", {"status": RUNNING, "spec": {
            "successCriteria": {"maxP99Ms": 5}}, "shards": Shards(
                outcomes=[ok(0), ok(1)], started=True)},
         "Succeeded", ["CriteriaFailed"], False, True, None),
    ],
)  # fmt: skip
def test_decide(name, observed, phase, events, start, stop, requeue):
    decision = observe(**observed)
    assert decision.status.phase == phase, name
    assert reasons_of(decision) == events, name
    assert (decision.start, decision.stop, decision.requeue_after) == (start, stop, requeue), name
    assert decision.status.observed_generation == 3


def test_missing_references_are_reported_and_found_again():
    missing = observe(missing=MISSING)
    assert condition(missing, "ReferencesResolved") == ("False", "MissingReference")
    found = observe(
        status=missing.status.model_dump(by_alias=True, exclude_none=True), shards=Shards()
    )
    assert condition(found, "ReferencesResolved") == ("True", "ReferencesFound")
    assert reasons_of(found) == ["ReplayStarted"]


def test_merged_result_is_the_status_summary_and_the_verdict():
    decision = observe(
        status=RUNNING,
        spec={"successCriteria": {"maxP99Ms": 5}},
        shards=Shards(outcomes=[ok(0), ok(1)], started=True, name="rt-g3"),
    )
    status = decision.status
    assert (status.verdict, status.job_name) == ("Failed", "rt-g3")
    assert status.result is not None
    assert (status.result.counts.sent, status.result.counts.ok) == (40, 40)
    assert status.result.latency_ms.p99 == pytest.approx(20, rel=0.02)
    assert any("p99" in line for line in status.reasons)
    assert condition(decision, "Complete") == ("True", "Succeeded")
    assert condition(decision, "Passed") == ("False", "CriteriaFailed")
    assert status.progress is not None
    assert status.progress.succeeded == 2


def test_the_deadline_counts_from_the_first_start():
    running = Shards(outcomes=[ShardOutcome(0, "running")], started=True)
    first = observe(spec={"activeDeadline": "1m"}, shards=running)
    later = observe(
        spec={"activeDeadline": "1m"},
        status=first.status.model_dump(by_alias=True, exclude_none=True),
        shards=running,
        now=NOW + timedelta(seconds=59),
    )
    late = observe(
        spec={"activeDeadline": "1m"},
        status=first.status.model_dump(by_alias=True, exclude_none=True),
        shards=running,
        now=NOW + timedelta(minutes=2),
    )
    assert (first.status.phase, later.status.phase, late.status.phase) == (
        "Running",
        "Running",
        "Failed",
    )


def test_a_finished_test_is_settled_until_its_spec_changes():
    finished = {"observedGeneration": 3, "phase": "Succeeded", "verdict": "Passed"}
    decision = observe(status=finished, shards=Shards(started=True))
    assert (decision.start, decision.stop, decision.events) == (False, False, [])
    test = ReplayTest.model_validate(
        {
            "metadata": {"name": "rt"},
            "spec": replay_test_spec().model_dump(by_alias=True, exclude_none=True),
            "status": finished,
        }
    )
    assert settled(test, 3)
    assert not settled(test, 4)
    rerun = observe(status=finished, generation=4, shards=Shards())
    assert (rerun.status.phase, rerun.status.verdict, rerun.start) == ("Running", "Pending", True)
    assert rerun.status.result is None


def test_status_is_never_changed_in_place():
    status = ReplayTestStatus.model_validate(RUNNING)
    before = status.model_dump()
    observe(status=RUNNING, shards=Shards(outcomes=[ok(0), ok(1)], started=True))
    assert status.model_dump() == before
