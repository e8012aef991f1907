"""The None router against a real apiserver: nothing is routed, the replay alone judges the
candidate, and the Deployments keep the sizes the owned objects give them."""

from __future__ import annotations

from kubernetes import client

from modelrollout.services.kube import FIELD_MANAGER
from support.routing import (
    MD,
    Rollout,
    model_deployment,
    replica_owners,
    replicas,
    traffic_applied,
)


def live_selector(kube_api: client.ApiClient, namespace: str) -> dict[str, str]:
    service = client.CoreV1Api(kube_api).read_namespaced_service(MD, namespace)
    selector: dict[str, str] = service.spec.selector
    return selector


def test_a_passed_replay_goes_straight_to_production(
    kube_api: client.ApiClient, namespace: str, replica_log
) -> None:
    rollout = Rollout(kube_api, namespace, model_deployment("v1", router="None"))
    rollout.reconcile()
    assert rollout.pass_replay()["phase"] == "Production"

    candidate = rollout.new_version("v2")
    assert candidate["phase"] == "NonProduction"
    assert replicas(kube_api, namespace) == (4, 4)
    assert live_selector(kube_api, namespace)["modelrollout.io/track"] == "stable"
    applied = traffic_applied(candidate)
    assert (applied["status"], applied["reason"], applied["message"]) == (
        "True",
        "WeightsInEffect",
        "None: no split in effect (asked stable 100%, candidate 0%)",
    )

    promoted = rollout.pass_replay()
    assert (promoted["phase"], promoted["stableVersion"]) == ("Production", "v2")
    assert replicas(kube_api, namespace) == (4, 0)
    for track in ("stable", "candidate"):
        assert replica_owners(kube_api, namespace, track) == {FIELD_MANAGER}
    assert replica_log.replicas(f"{MD}-stable") == [0, 4]
    assert replica_log.replicas(f"{MD}-candidate") == [4, 0, 4, 0]
