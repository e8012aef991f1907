"""What a reconcile ends in: a deleted object is forgotten, an unreadable one waits for an
edit. Both are checked through the operator's reconcile counter."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from factories import model_deployment
from support.cluster import REPO_ROOT, Cluster
from support.kube import apply, apply_examples, condition, events, get
from support.operator import running_operator
from support.wait import poll_until

CRD = REPO_ROOT / "crds" / "modelrollout.io_modeldeployments.yaml"
RESYNC = "0.5"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Counter:
    """Reconciles per kind, from the operator's /metrics."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"

    def __call__(self, kind: str) -> int:
        try:
            text = httpx.get(self.url, timeout=2).text
        except httpx.TransportError:
            return 0
        pattern = rf'^modelrollout_reconcile_total\{{[^}}]*kind="{kind}"[^}}]*\}} (\S+)$'
        return sum(int(float(v)) for v in re.findall(pattern, text, re.M))

    def wait_for_more(self, kind: str, than: int, by: int) -> int:
        def grown() -> int | None:
            count = self(kind)
            return count if count >= than + by else None

        found: int = poll_until(
            grown, timeout=60, interval=0.2, message=f"{by} more {kind} reconciles"
        )
        return found


@pytest.fixture
def counter(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Counter]:
    port = free_port()
    args = ["--metrics-port", str(port), "--resync", RESYNC]
    with running_operator(cluster, namespace, tmp_path / "operator.log", *args):
        yield Counter(port)


def test_a_deleted_object_is_no_longer_reconciled(cluster, namespace, counter):
    # Both wait for a ConfigMap that does not exist, so both are reconciled every resync.
    apply_examples(cluster, namespace, "replaytest")
    apply(cluster, namespace, model_deployment("v1"))
    counter.wait_for_more("ReplayTest", 0, by=3)
    cluster.kubectl("delete", "rt", "fraud-v2-replay", "-n", namespace, "--wait=true")
    deleted_at = counter("ReplayTest")
    # The ModelDeployment, still there, is what shows that time passed: a dozen resyncs.
    counter.wait_for_more("ModelDeployment", counter("ModelDeployment"), by=12)
    assert counter("ReplayTest") <= deleted_at + 1  # at most one that was under way


@pytest.fixture
def crd_without_rules(cluster: Cluster) -> Iterator[None]:
    """The ModelDeployment CRD without its CEL rules, as a cluster whose CRDs are older than
    the operator would have; the real one is put back afterwards."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "x-kubernetes-validations"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    loose = strip(yaml.safe_load(CRD.read_text()))
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(loose)
    )
    try:
        yield
    finally:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))


def test_an_unreadable_object_is_marked_invalid_once_and_not_retried(
    cluster, namespace, crd_without_rules, counter
):
    apply_examples(cluster, namespace, "replaytest")  # reconciled every resync: the witness
    md = model_deployment("v1")
    del md["spec"]["stages"]["nonProduction"]["replay"]  # what the CEL rule would refuse
    apply(cluster, namespace, md)

    def invalid() -> dict[str, Any] | None:
        obj = get(cluster, namespace, "md", "md")
        return obj if condition(obj, "Invalid") else None

    obj = poll_until(invalid, timeout=60, message="an Invalid condition")
    found = condition(obj, "Invalid")
    assert found["status"] == "True"
    assert found["reason"] == "InvalidSpec"
    assert found["message"].startswith("spec: ")
    assert "stages.nonProduction.replay is required" in found["message"]
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    (event,) = events(cluster, namespace, "InvalidSpec")
    assert event["type"] == "Warning"

    settled = counter("ModelDeployment")
    counter.wait_for_more("ReplayTest", counter("ReplayTest"), by=12)
    assert counter("ModelDeployment") <= settled + 1  # no retry loop, no resync
    assert len(events(cluster, namespace, "InvalidSpec")) == 1

    # Fixed in Git, it is read again and the condition goes.
    apply(cluster, namespace, model_deployment("v1"))
    poll_until(
        lambda: not condition(get(cluster, namespace, "md", "md"), "Invalid"),
        timeout=60,
        message="the Invalid condition removed once the object is fixed",
    )
