"""The ReplayTest decisions: the Job, the classification of pods, and the conclusion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout.core import replayjob
from modelrollout.core.api.replaytest import ReplayTestSpec, ReplayTestStatus
from modelrollout.core.replay.accumulator import ReplayAccumulator
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.quality import PredictionReader
from modelrollout.core.replay.result import ReplayResult, RunInfo, result_from_run
from modelrollout.core.replayjob import ShardOutcome

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RT = {
    "apiVersion": "modelrollout.io/v1alpha1",
    "kind": "ReplayTest",
    "metadata": {"name": "r" * 60, "namespace": "ml", "uid": "u-1", "generation": 3},
}


def spec(**changes: Any) -> ReplayTestSpec:
    base: dict[str, Any] = {
        "events": {"configMapKeyRef": {"name": "ev", "key": "e.jsonl"}},
        "target": {"url": "http://t/p"},
        "rate": {"rate": 100, "count": 40},
        "parallelism": 2,
    }
    base.update(changes)
    return ReplayTestSpec.model_validate(base)


def shard_result(index: int, count: int, latency_s: float) -> ReplayResult:
    acc = ReplayAccumulator(baseline=False, reader=PredictionReader(ReplayOptions()))
    mine = [k for k in range(40) if k % count == index]
    for k in mine:
        acc.completed(0, k, k / 100, 0.0001, latency_s, "ok", None, None)
    info = RunInfo(
        target="http://t/p",
        duration_seconds=0.4,
        planned_seconds=0.4,
        shard_index=index,
        shard_count=count,
        lines=len(mine),
        selected=len(mine),
    )
    return result_from_run(acc, info)


def test_job_name_fits_and_manifest_is_hardened():
    job = replayjob.job_manifest(RT, spec(), image="img:1", args=["replay", "--x"])
    assert len(job["metadata"]["name"]) <= 52
    assert job["metadata"]["name"].endswith("-g3")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["replay", "--x", "--output", replayjob.RESULT_PATH]
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp", "/events"}
    assert job["spec"]["activeDeadlineSeconds"] == 1800
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_pull_policy_is_passed_through():
    job = replayjob.job_manifest(RT, spec(), image="img:1", args=["replay"], pull_policy="Never")
    assert job["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"url": "http://e/x.jsonl"}, "http://e/x.jsonl"),
        ({"configMapKeyRef": {"name": "c", "key": "k.jsonl"}}, "/events/k.jsonl"),
        ({"volume": {"claimName": "pvc", "path": "/data/e.gz"}}, "/events/data/e.gz"),
    ],
)
def test_events_location(source, expected):
    assert replayjob.events_location(spec(events=source)) == expected


def pod(index: int, phase: str, waiting: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if waiting:
        status["containerStatuses"] = [{"state": {"waiting": {"reason": waiting, "message": "m"}}}]
    return {
        "metadata": {"labels": {"batch.kubernetes.io/job-completion-index": str(index)}},
        "status": status,
    }


@pytest.mark.parametrize(
    ("phase", "waiting", "state", "reason"),
    [
        ("Pending", None, "pending", ""),
        ("Running", None, "running", ""),
        ("Pending", "ErrImagePull", "failed", "ErrImagePull"),
        ("Pending", "ErrImageNeverPull", "failed", "ErrImageNeverPull"),
        ("Pending", "CreateContainerConfigError", "failed", "CreateContainerConfigError"),
        ("Pending", "ContainerCreating", "pending", ""),
        ("Failed", None, "failed", "PodFailed"),
    ],
)
def test_pod_outcome(phase, waiting, state, reason):
    outcome = replayjob.pod_outcome(pod(1, phase, waiting), lambda _: None)
    assert (outcome.index, outcome.state, outcome.reason) == (1, state, reason)


def test_succeeded_pod_is_read_for_its_result():
    result = shard_result(0, 1, 0.01)
    outcome = replayjob.pod_outcome(pod(0, "Succeeded"), lambda _: result)
    assert outcome.state == "succeeded"
    assert outcome.result is result


def conclude(shards: list[ShardOutcome], *, now: datetime = NOW, **kw: Any):
    return replayjob.conclude(ReplayTestStatus(), spec(**kw), shards, generation=3, now=now)


def test_running_until_every_shard_is_done():
    out = conclude(
        [ShardOutcome(0, "succeeded", result=shard_result(0, 2, 0.01)), ShardOutcome(1, "running")]
    )
    assert not out.done
    assert out.status.phase == "Running"
    assert out.status.progress.succeeded == 1
    assert out.status.progress.active == 1


def test_a_failed_shard_fails_the_test_with_its_reason():
    out = conclude(
        [
            ShardOutcome(0, "succeeded", result=shard_result(0, 2, 0.01)),
            ShardOutcome(1, "failed", reason="ImagePullBackOff", message="no image"),
        ]
    )
    assert out.done
    assert (out.status.phase, out.status.verdict) == ("Failed", "Failed")
    complete = next(c for c in out.status.conditions if c.type == "Complete")
    assert complete.reason == "ImagePullBackOff"
    assert "no image" in complete.message
    assert out.events[0][0] == "Warning"


def test_deadline_and_missing_results():
    running = [ShardOutcome(0, "running"), ShardOutcome(1, "running")]
    first = replayjob.conclude(
        ReplayTestStatus(), spec(activeDeadline="1m"), running, generation=3, now=NOW
    )
    late = replayjob.conclude(
        first.status,
        spec(activeDeadline="1m"),
        running,
        generation=3,
        now=NOW + timedelta(minutes=2),
    )
    assert late.status.phase == "Failed"
    assert late.events[0][1] == "DeadlineExceeded"
    unreadable = conclude([ShardOutcome(0, "succeeded"), ShardOutcome(1, "succeeded")])
    assert unreadable.events[0][1] == "InvalidResult"


@pytest.mark.parametrize(
    ("criteria", "verdict"),
    [({"maxP99Ms": 50}, "Passed"), ({"maxP99Ms": 5}, "Failed"), (None, "Passed")],
)
def test_shards_are_merged_and_judged(criteria, verdict):
    shards = [ShardOutcome(i, "succeeded", result=shard_result(i, 2, 0.02)) for i in (0, 1)]
    out = conclude(shards, successCriteria=criteria)
    assert out.done
    assert out.status.phase == "Succeeded"
    assert out.status.verdict == verdict
    result = out.status.result
    assert result.counts.sent == 40
    assert result.counts.ok == 40
    assert result.latency_ms.p99 == pytest.approx(20, rel=0.02)
    passed = next(c for c in out.status.conditions if c.type == "Passed")
    assert passed.status == ("True" if verdict == "Passed" else "False")
