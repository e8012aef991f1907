"""ReplayTests with the job executor when the replay pods cannot run.

The replay image here does not exist on the node and may not be pulled
(``--replay-image-pull-policy Never``), so the real kubelet reports ErrImageNeverPull:
the shape of the Job, its ownership and the fast failure are tested without any pull.
The happy path, with the real image, is in tests/node/test_replay_job.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelrollout.core import names
from support.cluster import REPO_ROOT, Cluster
from support.kube import get
from support.operator import running_operator
from support.wait import poll_until

RT = REPO_ROOT / "examples" / "replaytest.yaml"
EVENTS = REPO_ROOT / "examples" / "events-configmap.yaml"


@pytest.fixture
def operator(cluster: Cluster, namespace: str, tmp_path: Path):
    with running_operator(
        cluster,
        namespace,
        tmp_path / "operator.log",
        "--replay-executor",
        "job",
        "--replay-image",
        "registry.example/modelrollout:test",
        "--replay-image-pull-policy",
        "Never",
    ) as process:
        yield process


def _job(cluster: Cluster, namespace: str) -> dict[str, Any]:
    def found():
        jobs = get(cluster, namespace, "jobs", "-l", "modelrollout.io/replaytest=fraud-v2-replay")
        return jobs["items"][0] if jobs and jobs["items"] else None

    return poll_until(found, timeout=60, message="replay Job created")


def test_job_is_rendered_owned_and_hardened(cluster, namespace, operator):
    cluster.kubectl("apply", "-n", namespace, "-f", str(EVENTS), "-f", str(RT))
    job = _job(cluster, namespace)
    rt = get(cluster, namespace, "rt", "fraud-v2-replay")
    assert job["metadata"]["ownerReferences"][0]["uid"] == rt["metadata"]["uid"]
    assert job["metadata"]["labels"]["modelrollout.io/replaytest-uid"] == rt["metadata"]["uid"]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 2
    assert spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/modelrollout:test"
    assert "command" not in container  # the image's entrypoint, arguments only, no shell
    args = container["args"]
    assert args[0] == "replay"
    assert "--result-line" in args
    # the whole run travels as one JSON document in the environment, not as flags
    (env,) = container["env"]
    assert env["name"] == "MODELROLLOUT_REPLAY_RUN"
    run = json.loads(env["value"])
    assert run["events"] == "/events/events.jsonl"
    assert run["target"] == (
        f"http://fraud-scorer-candidate.{namespace}.svc:80/v1/models/fraud-scorer:predict"
    )
    assert run["baseline"].startswith("http://fraud-scorer-stable.")
    assert run["rate"]["rate"] == 100
    assert run["shardCount"] == 2
    assert "shardIndex" not in run  # each pod takes its own from JOB_COMPLETION_INDEX
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["limits"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["configMap"]["name"] == "fraud-events"

    # the real Job controller creates one pod per index
    def pods():
        found = get(
            cluster,
            namespace,
            "pods",
            "-l",
            f"batch.kubernetes.io/job-name={job['metadata']['name']}",
        )
        return found["items"] if found and len(found["items"]) == 2 else None

    poll_until(pods, timeout=60, message="two shard pods")
    poll_until(
        lambda: (
            (get(cluster, namespace, "rt", "fraud-v2-replay") or {}).get("status", {}).get("phase")
            in ("Running", "Failed")
        ),
        timeout=60,
        message="ReplayTest Running (or already Failed: the image is not on the node)",
    )

    # deleting the ReplayTest removes its Job
    cluster.kubectl("delete", "rt", "fraud-v2-replay", "-n", namespace, "--wait=false")
    poll_until(
        lambda: not (get(cluster, namespace, "jobs") or {"items": [1]})["items"],
        timeout=60,
        message="Job garbage-collected",
    )


def test_missing_image_fails_fast_with_the_kubelets_reason(cluster, namespace, operator):
    cluster.kubectl("apply", "-n", namespace, "-f", str(EVENTS), "-f", str(RT))

    def failed():
        rt = get(cluster, namespace, "rt", "fraud-v2-replay")
        return rt if rt and rt.get("status", {}).get("phase") == "Failed" else None

    rt = poll_until(failed, timeout=60, message="ReplayTest Failed")
    assert rt["status"]["verdict"] == "Failed"
    complete = next(c for c in rt["status"]["conditions"] if c["type"] == "Complete")
    assert complete["reason"] == "ErrImageNeverPull"
    assert "registry.example/modelrollout:test" in complete["message"]


def test_deadline_ends_in_failed(cluster, namespace, operator_image, tmp_path: Path):
    """Real replay pods that would run for a minute are stopped by the Job's deadline."""
    args = ["--replay-executor", "job", "--replay-image", operator_image]
    log = tmp_path / "operator.log"
    with running_operator(cluster, namespace, log, *args):
        _deadline_ends_in_failed(cluster, namespace)


def _deadline_ends_in_failed(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EVENTS))
    manifest = yaml.safe_load(RT.read_text())
    manifest["spec"]["activeDeadline"] = "2s"
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))

    def failed():
        rt = get(cluster, namespace, "rt", "fraud-v2-replay")
        return rt if rt and rt.get("status", {}).get("phase") == "Failed" else None

    rt = poll_until(failed, timeout=90, message="deadline exceeded")
    complete = next(c for c in rt["status"]["conditions"] if c["type"] == "Complete")
    assert complete["reason"] == "DeadlineExceeded"


def test_a_stale_job_of_the_same_name_is_not_adopted(cluster, namespace, operator):
    """A Job named as the ReplayTest's would be, but not owned by it (left by an earlier
    ReplayTest of the same name, say), is deleted and replaced, never read."""
    name = names.job_name("fraud-v2-replay", 1)
    stale = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"modelrollout.io/replaytest": "fraud-v2-replay"}},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "stale",
                            "image": "modelrollout.local/busybox:1",
                            "imagePullPolicy": "Never",
                            "command": ["sleep", "3600"],
                        }
                    ],
                }
            }
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(stale))
    stale_uid = get(cluster, namespace, "job", name)["metadata"]["uid"]
    cluster.kubectl("apply", "-n", namespace, "-f", str(EVENTS), "-f", str(RT))

    def replaced() -> dict[str, Any] | None:
        job = get(cluster, namespace, "job", name)
        return job if job and job["metadata"]["uid"] != stale_uid else None

    job = poll_until(replaced, timeout=60, message="the stale Job replaced by the operator's")
    rt = get(cluster, namespace, "rt", "fraud-v2-replay")
    (owner,) = job["metadata"]["ownerReferences"]
    assert owner["uid"] == rt["metadata"]["uid"]
    assert owner["controller"] is True
    assert job["spec"]["template"]["spec"]["containers"][0]["name"] == "replay"
