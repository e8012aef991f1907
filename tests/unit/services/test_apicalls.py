"""Counting API requests: by verb and resource for the process, per block for one thread,
per reconcile for the scheduler."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from modelrollout.services import apicalls, metrics, reconciling
from modelrollout.services.kube import Kube
from modelrollout.services.scheduler import Scheduler
from support.wait import async_poll_until


def requests(verb: str, resource: str) -> float:
    found = metrics.REGISTRY.get_sample_value(
        "modelrollout_api_requests_total", {"verb": verb, "resource": resource}
    )
    return found or 0.0


class Response:
    """What the client returns with ``_preload_content=False``: the body as bytes."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


@pytest.fixture
def kube() -> Iterator[Kube]:
    api = client.ApiClient()
    try:
        yield Kube(api)
    finally:
        api.close()


def test_a_tally_counts_the_requests_of_its_block(kube: Kube, monkeypatch) -> None:
    deployment = {"metadata": {"name": "d", "namespace": "ns", "resourceVersion": "1"}}
    monkeypatch.setattr(
        kube.apps, "read_namespaced_deployment", lambda *a, **k: Response(deployment)
    )
    monkeypatch.setattr(kube.core, "read_namespaced_config_map", lambda *a, **k: Response({}))
    before = requests("get", "deployments")
    with apicalls.tally() as counted:
        kube.get_deployment("ns", "d")
        kube.get_deployment("ns", "d")
        kube.get_config_map("ns", "c")
    kube.get_deployment("ns", "d")  # outside the block
    assert counted.total == 3
    assert counted.calls == {("get", "deployments"): 2, ("get", "configmaps"): 1}
    assert counted.describe() == "get configmaps: 1, get deployments: 2"
    assert requests("get", "deployments") == before + 3


def test_a_failed_request_is_counted_too(kube: Kube, monkeypatch) -> None:
    def missing(*_: Any, **__: Any) -> Any:
        raise client.exceptions.ApiException(status=404, reason="Not Found")

    monkeypatch.setattr(kube.batch, "read_namespaced_job", missing)
    with apicalls.tally() as counted:
        assert kube.get_job("ns", "j") is None
    assert counted.calls == {("get", "jobs"): 1}


def test_other_threads_do_not_count_in_a_tally() -> None:
    with apicalls.tally() as counted:
        worker = threading.Thread(target=apicalls.record, args=("get", "leases"))
        worker.start()
        worker.join()
        apicalls.record("patch", "modeldeployments/status")
    assert counted.calls == {("patch", "modeldeployments/status"): 1}
    assert apicalls.Tally().describe() == "none"


async def test_the_scheduler_observes_the_requests_of_each_reconcile() -> None:
    def reconcile(namespace: str, name: str) -> reconciling.Result:
        apicalls.record("get", "modeldeployments")
        apicalls.record("get", "configmaps")
        return reconciling.Done(resync=False)

    labels = {"kind": "counted"}
    scheduler = Scheduler("counted", reconcile)
    scheduler.trigger(("ns", "a"))
    scheduler.trigger(("ns", "b"))

    def observed() -> float:
        found = metrics.REGISTRY.get_sample_value(
            "modelrollout_api_requests_per_reconcile_count", labels
        )
        return found or 0.0

    await async_poll_until(lambda: observed() == 2, timeout=5, message="two reconciles counted")
    total = metrics.REGISTRY.get_sample_value("modelrollout_api_requests_per_reconcile_sum", labels)
    assert total == 4
