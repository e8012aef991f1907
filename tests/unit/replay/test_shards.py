"""A ReplayTest's shards: the run each receives, the Job that runs them, how a pod ended."""

from __future__ import annotations

from typing import Any

import pytest

from factories import replay_test_spec as spec
from factories import shard_result
from modelrollout.core.api.replaytest import ReplayTestSpec
from modelrollout.core.replay import shards
from modelrollout.core.replay.run import RUN_ENV, ReplayRun

RT = {
    "apiVersion": "modelrollout.io/v1alpha1",
    "kind": "ReplayTest",
    "metadata": {"name": "r" * 60, "namespace": "ml", "uid": "u-1", "generation": 3},
}


def run_of(test_spec: ReplayTestSpec) -> ReplayRun:
    return shards.shard_run(
        test_spec, events="/events/e.jsonl", target="http://t/p", baseline="http://b/p"
    )


def test_every_shard_gets_the_spec_as_one_run_without_the_criteria():
    test_spec = spec(
        selection={"sample": 0.5, "seed": 7},
        concurrency=7,
        predictionPath="score",
        successCriteria={"maxP99Ms": 5},
    )
    run = run_of(test_spec)
    assert (run.shard_index, run.shard_count) == (None, 2)  # each pod takes its own index
    assert run.rate == test_spec.rate
    assert run.selection == test_spec.selection
    assert (run.options.concurrency, run.options.prediction_path) == (7, "score")
    assert run.criteria is None  # judged on the merged result, never per shard
    assert ReplayRun.model_validate_json(run.to_json()) == run


def test_job_name_fits_and_manifest_is_hardened():
    job = shards.job_manifest(RT, spec(), image="img:1", run=run_of(spec()))
    assert len(job["metadata"]["name"]) <= 52
    assert job["metadata"]["name"].endswith("-g3")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == shards.SHARD_ARGS
    assert container["args"][-2:] == ["--output", shards.RESULT_PATH]
    (env,) = container["env"]
    assert env["name"] == RUN_ENV
    assert ReplayRun.model_validate_json(env["value"]) == run_of(spec())
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp", "/events"}
    assert job["spec"]["activeDeadlineSeconds"] == 1800
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_pull_policy_is_passed_through():
    job = shards.job_manifest(RT, spec(), image="img:1", run=run_of(spec()), pull_policy="Never")
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
    assert shards.events_location(spec(events=source)) == expected


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
    outcome = shards.pod_outcome(pod(1, phase, waiting), lambda _: None)
    assert (outcome.index, outcome.state, outcome.reason) == (1, state, reason)


def test_succeeded_pod_is_read_for_its_result():
    result = shard_result(0, 1, 0.01)
    outcome = shards.pod_outcome(pod(0, "Succeeded"), lambda _: result)
    assert outcome.state == "succeeded"
    assert outcome.result is result
