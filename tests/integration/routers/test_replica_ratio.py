"""The ReplicaRatio router against a real apiserver: it owns the Deployments' replicas while
it bakes, hands them back without a flap, and reads back the split in effect."""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes import client

from factories import build_md
from modelrollout.core.api.modeldeployment import (
    ModelDeploymentStatus,
    TrafficSpec,
    TrafficStatus,
)
from modelrollout.core.conditions import get_condition
from modelrollout.core.rollout import EventRecord
from modelrollout.services import baking
from modelrollout.services.kube import FIELD_MANAGER, Kube
from modelrollout.services.routers import make_router
from modelrollout.services.routers.replica_ratio import FIELD_MANAGER as ROUTER
from support.routing import (
    MD,
    Rollout,
    apply_owned,
    generations,
    managers,
    model_deployment,
    replica_owners,
    replicas,
    traffic_applied,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_the_router_owns_the_replicas_while_it_bakes(
    kube_api: client.ApiClient, namespace: str, replica_log
) -> None:
    kube = Kube(kube_api)
    router = make_router(TrafficSpec(), kube, port=80, replicas=4)  # a pool of 4
    assert router.get_weights(namespace, MD) is None

    # NonProduction: the owned objects size both tracks, the live Service selects stable.
    apply_owned(kube, namespace, stable=4, candidate=4, live="stable")
    router.set_weights(namespace, MD, stable_weight=100, candidate_weight=0)
    assert replica_owners(kube_api, namespace, "stable") == {FIELD_MANAGER}
    assert replica_owners(kube_api, namespace, "candidate") == {FIELD_MANAGER}
    assert router.get_weights(namespace, MD) == (100, 0)

    # Baking at 50 %: the router claims the replicas before the owned objects leave them out.
    router.set_weights(namespace, MD, stable_weight=50, candidate_weight=50)
    apply_owned(kube, namespace, stable=None, candidate=None, live=None)
    assert replicas(kube_api, namespace) == (2, 2)
    for track in ("stable", "candidate"):
        assert replica_owners(kube_api, namespace, track) == {ROUTER}
    assert router.get_weights(namespace, MD) == (50, 50)

    # The next reconcile writes nothing: no manager takes the field from the other.
    before = generations(kube_api, namespace)
    router.set_weights(namespace, MD, stable_weight=50, candidate_weight=50)
    apply_owned(kube, namespace, stable=None, candidate=None, live=None)
    assert generations(kube_api, namespace) == before

    # The next step: 60 % of 4 replicas is 2 + 3 pods.
    router.set_weights(namespace, MD, stable_weight=40, candidate_weight=60)
    apply_owned(kube, namespace, stable=None, candidate=None, live=None)
    assert replicas(kube_api, namespace) == (2, 3)
    assert router.get_weights(namespace, MD) == (40, 60)

    # Promotion: the router keeps its claim, the owned objects take the replicas back.
    router.set_weights(namespace, MD, stable_weight=100, candidate_weight=0)
    apply_owned(kube, namespace, stable=4, candidate=0, live="stable")
    assert replicas(kube_api, namespace) == (4, 0)
    for track in ("stable", "candidate"):
        assert replica_owners(kube_api, namespace, track) == {FIELD_MANAGER}
    assert router.get_weights(namespace, MD) == (100, 0)

    assert replica_log.replicas(f"{MD}-stable") == [4, 2, 4]
    assert replica_log.replicas(f"{MD}-candidate") == [4, 2, 3, 0]


def test_a_shared_claim_is_given_up_once_the_owned_objects_hold_it(
    kube_api: client.ApiClient, namespace: str, replica_log
) -> None:
    kube = Kube(kube_api)
    router = make_router(TrafficSpec(), kube, port=80, replicas=3)
    apply_owned(kube, namespace, stable=3, candidate=3, live="stable")
    # 10 % of 3 replicas is 3 + 1 pods: the stable count does not change.
    router.set_weights(namespace, MD, stable_weight=90, candidate_weight=10)
    apply_owned(kube, namespace, stable=None, candidate=None, live=None)
    assert replicas(kube_api, namespace) == (3, 1)
    assert router.get_weights(namespace, MD) == (75, 25)
    assert router.expected_weights(stable_weight=90, candidate_weight=10) == (75, 25)

    # A rollback. The router is the only owner of both counts: it keeps them.
    router.set_weights(namespace, MD, stable_weight=100, candidate_weight=0)
    assert replica_owners(kube_api, namespace, "stable") == {ROUTER}
    # The owned objects ask for the stable count the router holds: both own it now.
    apply_owned(kube, namespace, stable=3, candidate=0, live="stable")
    assert replica_owners(kube_api, namespace, "stable") == {FIELD_MANAGER, ROUTER}
    assert replica_owners(kube_api, namespace, "candidate") == {FIELD_MANAGER}
    # The next reconcile gives the shared claim up; the router owns nothing any more.
    router.set_weights(namespace, MD, stable_weight=100, candidate_weight=0)
    apply_owned(kube, namespace, stable=3, candidate=0, live="stable")
    assert replica_owners(kube_api, namespace, "stable") == {FIELD_MANAGER}
    assert ROUTER not in managers(kube_api, namespace, "stable")
    assert ROUTER not in managers(kube_api, namespace, "candidate")

    assert replica_log.replicas(f"{MD}-stable") == [3]
    assert replica_log.replicas(f"{MD}-candidate") == [3, 1, 0]


def test_a_replica_count_changed_by_someone_else_is_reported_then_put_back(
    kube_api: client.ApiClient, namespace: str
) -> None:
    kube = Kube(kube_api)
    apps = client.AppsV1Api(kube_api)
    md = build_md(
        {
            "metadata": {"name": MD, "namespace": namespace, "generation": 2},
            "spec": {"workload": {"replicas": 3}},
        }
    )
    status = ModelDeploymentStatus(
        phase="Baking", traffic=TrafficStatus(stable_weight=90, candidate_weight=10)
    )
    apply_owned(kube, namespace, stable=3, candidate=3, live="stable")

    def reconcile_traffic() -> list[tuple[str, str, str]]:
        """The traffic lines of a reconcile: weights, owned objects, read-back."""
        events = baking.apply_weights(kube, md, status)
        apply_owned(kube, namespace, stable=None, candidate=None, live=None)
        events += baking.verify_weights(kube, md, status, NOW)
        return [(e.type, e.reason, e.message) for e in events]

    assert reconcile_traffic() == []
    applied = get_condition(status.conditions, "TrafficApplied")
    assert (applied.status, applied.reason, applied.observed_generation) == (
        "True",
        "WeightsInEffect",
        2,
    )
    assert applied.message == (
        "ReplicaRatio: stable 75%, candidate 25% in effect (asked stable 90%, candidate 10%)"
    )

    # Someone scales the candidate up between the write and the read-back.
    apps.patch_namespaced_deployment_scale(f"{MD}-candidate", namespace, {"spec": {"replicas": 3}})
    mismatch = (
        "ReplicaRatio: expected stable 75%, candidate 25% for the asked stable 90%, "
        "candidate 10%, but stable 50%, candidate 50% in effect"
    )
    assert baking.verify_weights(kube, md, status, NOW) == [
        EventRecord("Warning", "TrafficMismatch", mismatch)
    ]
    applied = get_condition(status.conditions, "TrafficApplied")
    assert (applied.status, applied.reason, applied.message) == (
        "False",
        "TrafficMismatch",
        mismatch,
    )
    assert baking.verify_weights(kube, md, status, NOW) == []  # one Event, not one a reconcile

    # The next reconcile claims the count back.
    assert reconcile_traffic() == []
    assert replicas(kube_api, namespace) == (3, 1)
    assert get_condition(status.conditions, "TrafficApplied").status == "True"


def test_a_rollout_never_drops_the_replicas_to_the_default(
    kube_api: client.ApiClient, namespace: str, replica_log
) -> None:
    """NonProduction, Baking, Production, then a rollback, reconciled by the operator's
    service: the replica counts go from size to size, never through the default of 1, and
    a reconcile that changes nothing writes nothing."""
    rollout = Rollout(kube_api, namespace, model_deployment("v1", weight=50))
    first = rollout.reconcile()
    assert first["phase"] == "NonProduction"
    assert traffic_applied(first)["message"] == (
        "ReplicaRatio: no split in effect (asked stable 0%, candidate 0%)"
    )
    assert rollout.pass_replay()["phase"] == "Production"  # the first version does not bake

    assert rollout.new_version("v2")["phase"] == "NonProduction"
    assert replicas(kube_api, namespace) == (4, 4)
    baking_v2 = rollout.pass_replay()
    assert (baking_v2["phase"], baking_v2["traffic"]["candidateWeight"]) == ("Baking", 50)
    assert replicas(kube_api, namespace) == (2, 2)
    for track in ("stable", "candidate"):
        assert replica_owners(kube_api, namespace, track) == {ROUTER}
    applied = traffic_applied(baking_v2)
    assert (applied["status"], applied["message"]) == (
        "True",
        "ReplicaRatio: stable 50%, candidate 50% in effect",
    )
    before = generations(kube_api, namespace)
    held = rollout.reconcile()  # the step is over; the BeforeProduction gate holds the bake
    assert (held["phase"], held["message"].split(":")[0]) == (
        "Baking",
        "waiting for approval of BeforeProduction for version v2",
    )
    assert generations(kube_api, namespace) == before

    assert rollout.approve("v2")["phase"] == "Production"
    assert replicas(kube_api, namespace) == (4, 0)
    rollout.reconcile()
    for track in ("stable", "candidate"):
        assert replica_owners(kube_api, namespace, track) == {FIELD_MANAGER}

    rollout.new_version("v3")
    assert rollout.pass_replay()["phase"] == "Baking"
    rollout.patch_status({"aborted": True})
    rolled_back = rollout.reconcile()
    assert rolled_back["phase"] == "RolledBack"
    assert replicas(kube_api, namespace) == (4, 0)
    assert traffic_applied(rolled_back)["message"] == (
        "ReplicaRatio: stable 100%, candidate 0% in effect"
    )

    assert replica_log.replicas(f"{MD}-stable") == [0, 4, 2, 4, 2, 4]
    assert replica_log.replicas(f"{MD}-candidate") == [4, 0, 4, 2, 0, 4, 2, 0]
