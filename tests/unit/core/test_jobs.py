"""The Indexed Job both the replay and the profile shards run in, and how its pods read."""

from __future__ import annotations

from typing import Any

import pytest

from modelrollout.core import jobs
from modelrollout.core.jobs import DataMount, PodState


def job(**overrides: Any) -> dict[str, Any]:
    data = overrides.pop("data", None)
    container = jobs.container(
        "shard",
        image="img:1",
        args=["profile"],
        pull_policy="IfNotPresent",
        resources={"limits": {"memory": "1Gi"}},
        data=data,
    )
    arguments: dict[str, Any] = {
        "name": "j",
        "namespace": "ml",
        "labels": {"a": "b"},
        "container": container,
        "count": 3,
        "deadline_seconds": 600,
        "tmp_size": "1Gi",
        "data": data,
    }
    arguments.update(overrides)
    return jobs.indexed_job(**arguments)


def test_an_indexed_job_of_hardened_pods_none_retried():
    manifest = job()
    spec = manifest["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 3)
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 600
    assert "ttlSecondsAfterFinished" not in spec
    assert "ownerReferences" not in manifest["metadata"]
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"] == {"a": "b"}
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "env" not in container
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]


def test_owner_references_and_a_ttl_when_asked():
    owner = {"kind": "ReplayTest", "uid": "u"}
    manifest = job(owner_references=[owner], ttl_seconds=60, deadline_seconds=0)
    assert manifest["metadata"]["ownerReferences"] == [owner]
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 60
    assert manifest["spec"]["activeDeadlineSeconds"] == 1


@pytest.mark.parametrize(
    ("mount", "volume", "location"),
    [
        (
            DataMount("/data", config_map="events", key="e.jsonl"),
            {"configMap": {"name": "events", "items": [{"key": "e.jsonl", "path": "e.jsonl"}]}},
            "/data/e.jsonl",
        ),
        (
            DataMount("/data", config_map="events", key="e.csv", optional=True),
            {
                "configMap": {
                    "name": "events",
                    "items": [{"key": "e.csv", "path": "e.csv"}],
                    "optional": True,
                }
            },
            "/data/e.csv",
        ),
        (
            DataMount("/data", config_map="events"),
            {"configMap": {"name": "events"}},
            "/data",
        ),
        (
            DataMount("/events", claim="pvc", path="/sets/big.jsonl.gz"),
            {"persistentVolumeClaim": {"claimName": "pvc", "readOnly": True}},
            "/events/sets/big.jsonl.gz",
        ),
    ],
)
def test_data_mounts(mount: DataMount, volume: dict[str, Any], location: str):
    manifest = job(data=mount)
    pod = manifest["spec"]["template"]["spec"]
    assert pod["volumes"][1] == {"name": "data", **volume}
    assert pod["containers"][0]["volumeMounts"][1] == {
        "name": "data",
        "mountPath": mount.mount_path,
        "readOnly": True,
    }
    assert mount.location() == location


def pod(index: int, phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"p-{index}", "labels": {jobs.COMPLETION_INDEX_LABEL: str(index)}},
        "status": {"phase": phase, **status},
    }


def waiting(reason: str) -> dict[str, Any]:
    return {"containerStatuses": [{"state": {"waiting": {"reason": reason, "message": "m"}}}]}


def terminated(code: int) -> dict[str, Any]:
    return {"containerStatuses": [{"state": {"terminated": {"exitCode": code, "message": "x"}}}]}


@pytest.mark.parametrize(
    ("phase", "status", "expected"),
    [
        ("Pending", {}, PodState(2, "pending", "p-2")),
        ("Running", {}, PodState(2, "running", "p-2")),
        ("Succeeded", {}, PodState(2, "succeeded", "p-2")),
        ("Pending", waiting("ContainerCreating"), PodState(2, "pending", "p-2")),
        ("Pending", waiting("ErrImagePull"), PodState(2, "failed", "p-2", "ErrImagePull", "m")),
        (
            "Pending",
            waiting("ImagePullBackOff"),
            PodState(2, "failed", "p-2", "ImagePullBackOff", "m"),
        ),
        (
            "Pending",
            waiting("CreateContainerConfigError"),
            PodState(2, "failed", "p-2", "CreateContainerConfigError", "m"),
        ),
        ("Failed", terminated(2), PodState(2, "failed", "p-2", "PodFailed", "exit code 2: x")),
        (
            "Failed",
            {"containerStatuses": [{"state": {"terminated": {"exitCode": 137}}}]},
            PodState(2, "failed", "p-2", "PodFailed", "exit code 137"),
        ),
        (
            "Failed",
            {"reason": "Evicted", "message": "disk"},
            PodState(2, "failed", "p-2", "Evicted", "disk"),
        ),
    ],
)
def test_pod_state(phase: str, status: dict[str, Any], expected: PodState):
    assert jobs.pod_state(pod(2, phase, **status)) == expected


def test_the_furthest_state_of_each_index_counts():
    replaced = [
        PodState(1, "pending"),
        PodState(0, "failed", reason="Evicted"),
        PodState(0, "running"),
        PodState(1, "succeeded"),
    ]
    assert [(s.index, s.state) for s in jobs.latest_per_index(replaced)] == [
        (0, "failed"),
        (1, "succeeded"),
    ]


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([], None),
        ([{"type": "Complete", "status": "True"}], None),
        ([{"type": "Failed", "status": "False", "reason": "X"}], None),
        (
            [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "m"}],
            ("DeadlineExceeded", "m"),
        ),
        ([{"type": "Failed", "status": "True"}], ("JobFailed", "JobFailed")),
    ],
)
def test_job_failure(conditions: list[dict[str, str]], expected: tuple[str, str] | None):
    assert jobs.job_failure({"status": {"conditions": conditions}}) == expected


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ("", None),
        ("a\nb\n", None),
        ("M {1}\n", "{1}"),
        ("M {1}\nsummary\nM {2}\ntail\n", "{2}"),
        ("2024-01-01T00:00:00Z M {3}  \n", "{3}"),
    ],
)
def test_marked_line(log: str, expected: str | None):
    assert jobs.marked_line(log, "M ") == expected


def test_last_lines_skip_blank_ones():
    assert jobs.last_lines("a\n\nb\nc\n\n", 2) == ["b", "c"]
    assert jobs.last_lines("a\n", 5) == ["a"]
    assert jobs.last_lines("a\n", 0) == []
