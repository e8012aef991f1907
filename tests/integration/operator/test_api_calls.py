"""The operator's API requests per reconcile, read from its own metrics: idle reconciles
read the watch-fed cache and leave unchanged objects alone, and a change made by someone
else is still seen and put right."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from factories import events_configmap, model_deployment
from support.cluster import Cluster
from support.kube import apply, get
from support.modelservers import model_servers
from support.operator import running_operator
from support.wait import poll_until

RESYNC = "0.5"
MANAGED = "app.kubernetes.io/managed-by"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Requests:
    """``modelrollout_api_requests_per_reconcile`` of one kind at one moment."""

    reconciles: float
    requests: float
    at_most_one: float  # reconciles that made no more than one request

    def since(self, earlier: Requests) -> Requests:
        return Requests(
            self.reconciles - earlier.reconciles,
            self.requests - earlier.requests,
            self.at_most_one - earlier.at_most_one,
        )


class Metrics:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"

    def samples(self) -> list[Any]:
        text = httpx.get(self.url, timeout=5).text
        return [s for family in text_string_to_metric_families(text) for s in family.samples]

    def per_reconcile(self, kind: str) -> Requests:
        found = {"count": 0.0, "sum": 0.0, "le1": 0.0}
        for sample in self.samples():
            if sample.labels.get("kind") != kind:
                continue
            if sample.name == "modelrollout_api_requests_per_reconcile_count":
                found["count"] = sample.value
            elif sample.name == "modelrollout_api_requests_per_reconcile_sum":
                found["sum"] = sample.value
            elif (
                sample.name == "modelrollout_api_requests_per_reconcile_bucket"
                and float(sample.labels["le"]) == 1.0
            ):
                found["le1"] = sample.value
        return Requests(found["count"], found["sum"], found["le1"])

    def wait_for_reconciles(self, kind: str, after: Requests, count: int) -> Requests:
        def grown() -> Requests | None:
            now = self.per_reconcile(kind)
            return now if now.reconciles >= after.reconciles + count else None

        found: Requests = poll_until(
            grown, timeout=60, interval=0.2, message=f"{count} more {kind} reconciles"
        )
        return found


@pytest.fixture
def metrics(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Metrics]:
    with model_servers(tmp_path, v1=["--model-version", "v1"]) as servers:
        url = servers["v1"].url
        port = free_port()
        extra = [
            "--no-wait-for-ready", "--metrics-port", str(port), "--resync", RESYNC,
            "--endpoint", f"{namespace}/md-candidate={url}",
            "--endpoint", f"{namespace}/md-stable={url}",
        ]  # fmt: skip
        with running_operator(cluster, namespace, tmp_path / "operator.log", *extra):
            poll_until(
                lambda: Metrics(port).samples(),
                timeout=30,
                message="the operator's metrics",
                ignore=(httpx.TransportError,),
            )
            yield Metrics(port)


def in_production(cluster: Cluster, namespace: str) -> dict[str, Any]:
    apply(cluster, namespace, events_configmap(), model_deployment("v1"))

    def production() -> dict[str, Any] | None:
        md = get(cluster, namespace, "md", "md")
        phase = ((md or {}).get("status") or {}).get("phase")
        assert phase not in ("RolledBack", "Failed"), md
        return md if phase == "Production" else None

    md: dict[str, Any] = poll_until(
        production, timeout=120, message="the ModelDeployment in Production"
    )
    return md


def test_idle_reconciles_make_at_most_one_request(cluster, namespace, metrics):
    md = in_production(cluster, namespace)
    # Once in Production, every reconcile (one per resync) is idle: the object, both
    # Deployments and the ReplayTest come from the cache, nothing is applied, and only the
    # events ConfigMap the spec references is read from the API.
    start = metrics.per_reconcile("ModelDeployment")
    idle = metrics.wait_for_reconciles("ModelDeployment", start, 10).since(start)
    assert idle.requests <= idle.reconciles, idle
    assert idle.at_most_one == idle.reconciles, idle

    # A finished ReplayTest is reconciled on its events only; an edit of its metadata is
    # one, and that reconcile needs no request at all.
    replay = md["status"]["replayTest"]
    start = metrics.per_reconcile("ReplayTest")
    cluster.kubectl("annotate", "rt", replay, "-n", namespace, "example.com/touched=1")
    touched = metrics.wait_for_reconciles("ReplayTest", start, 1).since(start)
    assert touched.requests == 0, touched


def test_changes_by_someone_else_are_seen_and_put_right(cluster, namespace, metrics):
    in_production(cluster, namespace)
    before = get(cluster, namespace, "deployment", "md-stable")
    assert before is not None
    uid = before["metadata"]["uid"]

    # Deleted: the DELETED event empties the cache and triggers the owner, which recreates it.
    cluster.kubectl("delete", "deployment", "md-stable", "-n", namespace, "--wait=true")

    def recreated() -> dict[str, Any] | None:
        found = get(cluster, namespace, "deployment", "md-stable")
        return found if found and found["metadata"]["uid"] != uid else None

    poll_until(recreated, timeout=30, message="the stable Deployment recreated")

    # Scaled by hand: the watched object no longer carries the manifest, so it is applied.
    cluster.kubectl("scale", "deployment", "md-stable", "-n", namespace, "--replicas=3")
    poll_until(
        lambda: (get(cluster, namespace, "deployment", "md-stable") or {})["spec"]["replicas"] == 1,
        timeout=30,
        message="the stable Deployment scaled back to 1",
    )

    # A Service's selector widened: an atomic map, compared key for key.
    cluster.kubectl(
        "patch", "service", "md-stable", "-n", namespace, "--type=merge",
        "-p", '{"spec": {"selector": {"example.com/extra": "x"}}}',
    )  # fmt: skip

    def selector_restored() -> bool:
        found = get(cluster, namespace, "service", "md-stable") or {}
        return "example.com/extra" not in (found.get("spec") or {}).get("selector", {})

    poll_until(selector_restored, timeout=30, message="the Service's selector put back")

    # The managed-by label removed: the object leaves the cache, and the owner puts it back.
    cluster.kubectl("label", "service", "md-candidate", "-n", namespace, f"{MANAGED}-")
    poll_until(
        lambda: (
            (
                (get(cluster, namespace, "service", "md-candidate") or {})["metadata"]
                .get("labels", {})
                .get(MANAGED)
            )
            == "modelrollout"
        ),
        timeout=30,
        message="the managed-by label put back",
    )
    md = get(cluster, namespace, "md", "md")
    assert md is not None
    assert md["status"]["phase"] == "Production"
