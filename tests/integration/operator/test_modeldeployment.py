"""The operator against the real control plane: workloads, status, Events, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cluster import REPO_ROOT, Cluster
from support.kube import condition, events, get
from support.operator import running_operator
from support.wait import poll_until

MD = REPO_ROOT / "examples" / "modeldeployment.yaml"
EVENTS = REPO_ROOT / "examples" / "events-configmap.yaml"


@pytest.fixture
def operator(cluster: Cluster, namespace: str, tmp_path: Path):
    with running_operator(cluster, namespace, tmp_path / "operator.log") as process:
        yield process
    assert process.returncode is not None


def test_missing_reference_is_reported_then_recovered(cluster, namespace, operator):
    cluster.kubectl("apply", "-n", namespace, "-f", str(MD))

    def missing_reported():
        cond = condition(get(cluster, namespace, "md", "fraud-scorer"), "ReferencesResolved")
        return cond if cond and cond["status"] == "False" else None

    cond = poll_until(missing_reported, timeout=60, message="ReferencesResolved=False")
    assert cond["reason"] == "MissingReference"
    assert "fraud-events" in cond["message"]
    assert "spec.stages.nonProduction.replay.events.configMapKeyRef" in cond["message"]
    warning = poll_until(
        lambda: events(cluster, namespace, "MissingReference"),
        timeout=30,
        message="MissingReference Event",
    )
    assert warning[0]["type"] == "Warning"
    assert warning[0]["involvedObject"]["name"] == "fraud-scorer"
    # nothing is created while the reference is missing
    assert get(cluster, namespace, "deployment", "fraud-scorer-candidate") is None
    assert operator.poll() is None, "the operator must keep running"

    cluster.kubectl("apply", "-n", namespace, "-f", str(EVENTS))

    def non_production():
        md = get(cluster, namespace, "md", "fraud-scorer")
        return md if md and md.get("status", {}).get("phase") == "NonProduction" else None

    md = poll_until(non_production, timeout=60, message="phase NonProduction")
    status = md["status"]
    assert status["observedGeneration"] == md["metadata"]["generation"]
    assert status["candidateVersion"] == "v1"
    assert condition(md, "ReferencesResolved")["status"] == "True"
    for cond in status["conditions"]:
        assert cond["lastTransitionTime"].endswith("Z")
        assert cond["reason"]
    # the spec is never written by the operator
    managers = {
        m["manager"]
        for m in md["metadata"].get("managedFields", [])
        if m.get("subresource") != "status"
    }
    assert "modelrollout" not in managers


def test_workloads_are_created_owned_and_reconciled(cluster, namespace, operator):
    cluster.kubectl("apply", "-n", namespace, "-f", str(EVENTS))
    cluster.kubectl("apply", "-n", namespace, "-f", str(MD))
    md = poll_until(
        lambda: get(cluster, namespace, "md", "fraud-scorer"), timeout=30, message="md exists"
    )
    uid = md["metadata"]["uid"]

    def children():
        deps = get(cluster, namespace, "deployments", "-l", "modelrollout.io/name=fraud-scorer")
        svcs = get(cluster, namespace, "services", "-l", "modelrollout.io/name=fraud-scorer")
        if deps and svcs and len(deps["items"]) == 2 and len(svcs["items"]) == 3:
            return deps["items"], svcs["items"]
        return None

    deployments, services = poll_until(children, timeout=60, message="owned workloads")
    for obj in deployments + services:
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner["uid"] == uid
        assert owner["controller"] is True
    by_name = {d["metadata"]["name"]: d for d in deployments}
    assert by_name["fraud-scorer-stable"]["spec"]["replicas"] == 0
    candidate = by_name["fraud-scorer-candidate"]
    assert candidate["spec"]["replicas"] == 2
    env = {
        e["name"]: e["value"] for e in candidate["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODEL_VERSION"] == "v1"
    assert {s["metadata"]["name"] for s in services} == {
        "fraud-scorer",
        "fraud-scorer-stable",
        "fraud-scorer-candidate",
    }

    # the real controller-manager turns the candidate Deployment into a ReplicaSet and Pods
    def pods():
        found = get(
            cluster,
            namespace,
            "pods",
            "-l",
            "modelrollout.io/name=fraud-scorer,modelrollout.io/track=candidate",
        )
        return found["items"] if found and len(found["items"]) == 2 else None

    poll_until(pods, timeout=60, message="candidate pods")

    # a deleted child is put back
    cluster.kubectl("delete", "service", "fraud-scorer-candidate", "-n", namespace)
    poll_until(
        lambda: get(cluster, namespace, "service", "fraud-scorer-candidate"),
        timeout=30,
        message="service recreated",
    )

    # deleting the ModelDeployment garbage-collects what it owns
    cluster.kubectl("delete", "md", "fraud-scorer", "-n", namespace, "--wait=false")
    poll_until(
        lambda: (
            children() is None
            and not (
                get(cluster, namespace, "deployments", "-l", "modelrollout.io/name=fraud-scorer")
                or {"items": [1]}
            )["items"]
        ),
        timeout=60,
        message="children garbage-collected",
    )
    events_seen = events(cluster, namespace, "NewCandidate")
    assert events_seen
    assert events_seen[0]["type"] == "Normal"
