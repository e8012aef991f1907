"""The watch-fed cache: what it keeps, newer wins, deletions stay deleted, and when an
apply may be left out; then the narrow client reading through it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from modelrollout.core import applied, workloads
from modelrollout.services import apicalls
from modelrollout.services.cache import MANAGED, TOMBSTONE_SECONDS, ObjectCache
from modelrollout.services.kube import Kube


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def deployment(rv: str = "10", *, name: str = "md-stable", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": rv,
            "labels": {**MANAGED, **labels},
        },
        "spec": {"replicas": 1},
    }


def replicas(cache: ObjectCache, name: str = "md-stable") -> int | None:
    found = cache.get("deployments", "ns", name)
    return None if found is None else int(found["spec"]["replicas"])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> ObjectCache:
    return ObjectCache(namespaces=["ns"], clock=clock)


def test_nothing_is_kept_before_the_watch_delivers(cache: ObjectCache) -> None:
    assert not cache.keeps("deployments")
    cache.offer("deployments", deployment())
    assert cache.get("deployments", "ns", "md-stable") is None
    assert cache.observe("deployments", None, deployment(name="other"))
    assert cache.keeps("deployments")
    assert not cache.keeps("configmaps")  # not watched at all


def test_reads_are_copies(cache: ObjectCache) -> None:
    cache.observe("deployments", "ADDED", deployment())
    found = cache.get("deployments", "ns", "md-stable")
    assert found is not None
    found["spec"]["replicas"] = 9
    assert replicas(cache) == 1


def test_the_newer_resource_version_wins(cache: ObjectCache) -> None:
    def at(rv: str, count: int) -> dict[str, Any]:
        obj = deployment(rv)
        obj["spec"]["replicas"] = count
        return obj

    cache.observe("deployments", None, at("10", 1))
    cache.offer("deployments", at("9", 2))  # an answer older than the watch
    assert replicas(cache) == 1
    cache.offer("deployments", at("12", 3))  # our write's answer, before its event
    assert replicas(cache) == 3
    cache.observe("deployments", "MODIFIED", at("11", 4))  # a late event
    assert replicas(cache) == 3
    cache.observe("deployments", "MODIFIED", at("13", 5))
    assert replicas(cache) == 5


def test_a_deleted_object_is_not_brought_back_by_an_older_answer(
    cache: ObjectCache, clock: Clock
) -> None:
    cache.observe("deployments", None, deployment("10"))
    assert cache.observe("deployments", "DELETED", deployment("15"))
    assert cache.get("deployments", "ns", "md-stable") is None
    cache.offer("deployments", deployment("14"))  # a read that raced with the deletion
    assert cache.get("deployments", "ns", "md-stable") is None
    cache.offer("deployments", deployment("20"))  # created again
    assert replicas(cache) == 1
    cache.observe("deployments", "DELETED", deployment("21"))
    clock.now += TOMBSTONE_SECONDS + 1
    cache.observe("deployments", None, deployment("30", name="other"))  # prunes
    cache.offer("deployments", deployment("14"))
    assert replicas(cache) == 1  # the tombstone is gone after a while


def test_objects_out_of_scope_are_not_kept(cache: ObjectCache) -> None:
    foreign = deployment()
    del foreign["metadata"]["labels"][workloads.LABEL_MANAGED_BY]
    assert not cache.observe("deployments", "ADDED", foreign)
    assert cache.get("deployments", "ns", "md-stable") is None
    cache.observe("deployments", "ADDED", deployment())
    # the label removed by someone: dropped, and the event still concerns us
    assert cache.observe("deployments", "MODIFIED", foreign)
    assert cache.get("deployments", "ns", "md-stable") is None
    elsewhere = deployment("50")
    elsewhere["metadata"]["namespace"] = "other"
    cache.offer("deployments", elsewhere)
    assert cache.get("deployments", "other", "md-stable") is None


def test_an_event_concerns_the_cache_when_in_scope_or_kept(cache: ObjectCache) -> None:
    foreign = deployment()
    del foreign["metadata"]["labels"][workloads.LABEL_MANAGED_BY]
    assert cache.concerns("deployments", deployment())
    assert not cache.concerns("deployments", foreign)
    cache.observe("deployments", None, deployment())
    assert cache.concerns("deployments", foreign)  # it is kept: this event drops it
    cache.observe("deployments", "MODIFIED", foreign)
    assert not cache.concerns("deployments", foreign)


def test_answers_without_an_integer_resource_version_are_not_kept(cache: ObjectCache) -> None:
    cache.observe("deployments", None, deployment("opaque-1"))
    assert replicas(cache) == 1
    newer = deployment("opaque-2")
    newer["spec"]["replicas"] = 2
    cache.offer("deployments", newer)
    assert replicas(cache) == 1
    cache.observe("deployments", "MODIFIED", newer)  # events always are
    assert replicas(cache) == 2


def test_an_apply_is_left_out_only_while_the_object_carries_it(
    cache: ObjectCache, clock: Clock
) -> None:
    manifest = applied.with_hash(deployment())
    del manifest["metadata"]["resourceVersion"]
    answer = copy.deepcopy(manifest)
    answer["metadata"]["resourceVersion"] = "10"
    answer["status"] = {"replicas": 1}
    cache.observe("deployments", None, deployment("5", name="other"))
    assert not cache.still_applied("deployments", manifest, within=60)  # never applied
    cache.applied("deployments", answer)
    assert cache.still_applied("deployments", manifest, within=60)
    clock.now += 59
    assert cache.still_applied("deployments", manifest, within=60)
    clock.now += 1
    assert not cache.still_applied("deployments", manifest, within=60)  # the period is up
    cache.applied("deployments", answer)
    scaled = copy.deepcopy(answer)
    scaled["metadata"]["resourceVersion"] = "11"
    scaled["spec"]["replicas"] = 4
    cache.observe("deployments", "MODIFIED", scaled)
    assert not cache.still_applied("deployments", manifest, within=60)  # drift
    cache.applied(
        "deployments", {**answer, "metadata": {**answer["metadata"], "resourceVersion": "12"}}
    )
    assert cache.still_applied("deployments", manifest, within=60)
    cache.observe(
        "deployments",
        "DELETED",
        {**answer, "metadata": {**answer["metadata"], "resourceVersion": "13"}},
    )
    assert not cache.still_applied("deployments", manifest, within=60)


# --- the narrow client with a cache -------------------------------------------------------


class Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class FakeDeployments:
    """The apiserver's side of Deployments: what is stored, and the requests made."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.version = 100

    def read(self, name: str, namespace: str, **_: Any) -> Response:
        if name not in self.stored:
            raise client.exceptions.ApiException(status=404, reason="Not Found")
        return Response(self.stored[name])

    def apply(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> Response:
        self.version += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self.version)
        obj["status"] = {"replicas": obj["spec"]["replicas"]}
        self.stored[name] = obj
        return Response(obj)


@pytest.fixture
def api() -> FakeDeployments:
    return FakeDeployments()


@pytest.fixture
def kube(cache: ObjectCache, api: FakeDeployments, monkeypatch) -> Iterator[Kube]:
    api_client = client.ApiClient()
    kube = Kube(api_client, cache=cache, reapply_seconds=600)
    monkeypatch.setattr(kube.apps, "read_namespaced_deployment", api.read)
    monkeypatch.setattr(kube.apps, "patch_namespaced_deployment", api.apply)
    try:
        yield kube
    finally:
        api_client.close()


def manifest() -> dict[str, Any]:
    body = deployment()
    del body["metadata"]["resourceVersion"]
    return body


def test_reads_and_applies_go_through_the_cache(
    kube: Kube, cache: ObjectCache, api: FakeDeployments
) -> None:
    cache.observe("deployments", None, deployment("1", name="unrelated"))
    with apicalls.tally() as first:
        kube.apply(manifest())
        found = kube.get_deployment("ns", "md-stable")
    assert first.calls == {("apply", "deployments"): 1}  # the answer was kept
    assert found is not None
    assert found["metadata"]["annotations"][applied.ANNOTATION]
    with apicalls.tally() as idle:
        kube.apply(manifest())
        kube.get_deployment("ns", "md-stable")
    assert idle.total == 0
    # someone scales it: the event shows it, and the next apply puts it back
    scaled = copy.deepcopy(api.stored["md-stable"])
    scaled["spec"]["replicas"] = 7
    scaled["metadata"]["resourceVersion"] = "500"
    api.stored["md-stable"] = scaled
    cache.observe("deployments", "MODIFIED", scaled)
    with apicalls.tally() as drift:
        kube.apply(manifest())
    assert drift.calls == {("apply", "deployments"): 1}
    assert api.stored["md-stable"]["spec"]["replicas"] == 1
    # deleted: the event empties the cache, the read goes to the API, the apply creates it
    cache.observe("deployments", "DELETED", api.stored.pop("md-stable"))
    with apicalls.tally() as gone:
        assert kube.get_deployment("ns", "md-stable") is None
        kube.apply(manifest())
    assert gone.calls == {("get", "deployments"): 1, ("apply", "deployments"): 1}
    assert "md-stable" in api.stored


def test_without_a_running_watch_every_read_is_a_request(kube: Kube, api: FakeDeployments) -> None:
    api.apply("md-stable", "ns", manifest())
    with apicalls.tally() as counted:
        kube.get_deployment("ns", "md-stable")
        kube.get_deployment("ns", "md-stable")
        kube.apply(manifest())
        kube.apply(manifest())
    assert counted.calls == {("get", "deployments"): 2, ("apply", "deployments"): 2}
