"""A ReplayTest on the node: an Indexed Job whose pods replay to model pods by their cluster
DNS names, and whose results the operator reads from the pods' logs."""

from __future__ import annotations

from typing import Any

import yaml

from support.cluster import REPO_ROOT, Cluster
from support.kube import apply, apply_examples, get
from support.node import OperatorRelease, model_template, served_by_pod
from support.wait import poll_until


def model_service(name: str, version: str, image: str) -> list[dict[str, Any]]:
    """A Deployment of the model server and a Service named `name` in front of it."""
    labels = {"app": name}
    template = model_template(image, version, "--model-name", "fraud-scorer")
    template["metadata"]["labels"] = labels
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]


def test_replay_job_runs_in_pods_and_reports_from_their_logs(
    cluster: Cluster, namespace: str, cluster_operator: OperatorRelease, operator_image: str
) -> None:
    apply(
        cluster,
        namespace,
        *model_service("fraud-scorer-stable", "v1", operator_image),
        *model_service("fraud-scorer-candidate", "v2", operator_image),
    )
    for name in ("fraud-scorer-stable", "fraud-scorer-candidate"):
        cluster.kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=90s")
    apply_examples(cluster, namespace, "events-configmap")
    replay = yaml.safe_load((REPO_ROOT / "examples" / "replaytest.yaml").read_text())
    replay["spec"]["rate"] = {"rate": 100, "duration": "4s"}
    # What is tested is the path through the Job; the latency of two pods on a busy
    # 2-core machine is not (the example also bounds p99 against the baseline's).
    replay["spec"]["successCriteria"] = {"maxErrorRate": 0.01, "maxP99Ms": 1000}
    apply(cluster, namespace, replay)

    def finished() -> dict[str, Any] | None:
        rt = get(cluster, namespace, "rt", "fraud-v2-replay")
        phase = (rt or {}).get("status", {}).get("phase")
        return rt if phase in ("Succeeded", "Failed") else None

    rt = poll_until(finished, timeout=120, interval=0.5, message="the replay Job finished")
    status = rt["status"]
    assert status["phase"] == "Succeeded", status
    assert status["verdict"] == "Passed", status["reasons"]
    assert status["executor"] == "job"
    result = status["result"]
    # 100/s for 4 s over two shards: every request reached the candidate pod and succeeded
    assert result["counts"]["sent"] == 400
    assert result["counts"]["ok"] == 400
    assert result["errorRate"] == 0
    assert result["rate"]["achieved"] > 90
    assert result["comparison"]["agreement"] is not None  # the stable pod answered too
    assert result["quality"]["labeled"] > 0

    # The operator reads the pods; the Job controller counts them in the Job's status a
    # moment later.
    job = poll_until(
        lambda: (
            found
            if (found := get(cluster, namespace, "job", status["jobName"]))
            and found.get("status", {}).get("succeeded") == 2
            else None
        ),
        timeout=30,
        interval=0.5,
        message="the Job counts two succeeded pods",
    )
    assert job["spec"]["completionMode"] == "Indexed"
    pods = get(
        cluster, namespace, "pods", "-l", f"batch.kubernetes.io/job-name={job['metadata']['name']}"
    )
    assert {p["status"]["phase"] for p in pods["items"]} == {"Succeeded"}
    log = cluster.kubectl("logs", "-n", namespace, pods["items"][0]["metadata"]["name"]).stdout
    assert log.splitlines()[-1].startswith("MODELROLLOUT_RESULT ")

    # The model pods saw the traffic themselves, through their Services' DNS names.
    candidate = served_by_pod(cluster, namespace, "app=fraud-scorer-candidate")
    stable = served_by_pod(cluster, namespace, "app=fraud-scorer-stable")
    assert sum(candidate.values()) == 400
    assert sum(stable.values()) == 400
