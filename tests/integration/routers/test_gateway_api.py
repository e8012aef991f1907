"""The GatewayAPI router against a real apiserver with the Gateway API CRDs."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from factories import build_md
from modelrollout.core import errors
from modelrollout.core.api.modeldeployment import (
    ModelDeploymentStatus,
    TrafficSpec,
    TrafficStatus,
)
from modelrollout.core.conditions import get_condition
from modelrollout.services import baking
from modelrollout.services.gatewayapi_client import GROUP, HTTPROUTES, VERSION, GatewayApi
from modelrollout.services.kube import FIELD_MANAGER, Kube
from modelrollout.services.routers import TrafficRouter, make_router
from modelrollout.services.routers.replica_ratio import FIELD_MANAGER as REPLICA_RATIO
from support.routing import Rollout, managers, model_deployment, replicas, traffic_applied

MD = "fraud"
ROUTE = "fraud-live"
STABLE_FILTERS = [
    {
        "type": "RequestHeaderModifier",
        "requestHeaderModifier": {"set": [{"name": "x-track", "value": "stable"}]},
    }
]


def http_route() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": ROUTE,
            "labels": {"team": "risk"},
            "annotations": {"owner": "risk-platform"},
        },
        "spec": {
            "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
            "hostnames": ["fraud.example.com"],
            "rules": [
                {
                    "name": "admin",
                    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"remove": ["x-debug"]},
                        }
                    ],
                    "backendRefs": [{"name": f"{MD}-stable", "port": 80}],
                },
                {
                    "name": "predict",
                    "matches": [
                        {
                            "path": {"type": "PathPrefix", "value": "/v1/models"},
                            "headers": [{"name": "x-tenant", "value": "eu"}],
                        }
                    ],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"add": [{"name": "x-via", "value": "gw"}]},
                        }
                    ],
                    "timeouts": {"request": "10s"},
                    "backendRefs": [
                        {"name": f"{MD}-stable", "port": 80, "filters": STABLE_FILTERS},
                        {"name": "legacy-scorer", "port": 8080, "weight": 5},
                    ],
                },
            ],
        },
    }


def routes(kube_api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


def create_route(kube_api: client.ApiClient, namespace: str) -> dict[str, Any]:
    created: dict[str, Any] = routes(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, HTTPROUTES, http_route()
    )
    return created


def read_route(kube_api: client.ApiClient, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = routes(kube_api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, HTTPROUTES, ROUTE
    )
    return found


def router(kube_api: client.ApiClient, rule_index: int = 1, name: str = ROUTE) -> TrafficRouter:
    spec = TrafficSpec.model_validate(
        {"router": "GatewayAPI", "gatewayAPI": {"httpRoute": name, "ruleIndex": rule_index}}
    )
    return make_router(spec, Kube(kube_api), port=80, replicas=3)


VOLATILE = ("resourceVersion", "generation", "managedFields")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def without_weights(route: dict[str, Any], rule_index: int) -> str:
    """The route as JSON, minus the chosen rule's backendRefs and what every write changes."""
    rest = copy.deepcopy(route)
    for key in VOLATILE:
        rest["metadata"].pop(key, None)
    del rest["spec"]["rules"][rule_index]["backendRefs"]
    return json.dumps(rest)


def backend(name: str, weight: int, **extra: Any) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": name, "port": 80, "weight": weight, **extra}


def test_set_weights_changes_only_the_chosen_rule(
    kube_api: client.ApiClient, namespace: str
) -> None:
    before = create_route(kube_api, namespace)
    gateway = router(kube_api)
    assert gateway.name == "GatewayAPI"
    assert gateway.get_weights(namespace, MD) is None

    gateway.set_weights(namespace, MD, stable_weight=90, candidate_weight=10)
    first = read_route(kube_api, namespace)
    assert first["spec"]["rules"][1]["backendRefs"] == [
        backend(f"{MD}-stable", 90, filters=STABLE_FILTERS),
        backend(f"{MD}-candidate", 10),
    ]
    assert without_weights(first, 1) == without_weights(before, 1)
    assert json.dumps(first["spec"]["rules"][0]) == json.dumps(before["spec"]["rules"][0])
    assert gateway.get_weights(namespace, MD) == (90, 10)
    managers = {entry["manager"] for entry in first["metadata"]["managedFields"]}
    assert FIELD_MANAGER in managers

    gateway.set_weights(namespace, MD, stable_weight=90, candidate_weight=10)
    again = read_route(kube_api, namespace)
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    gateway.set_weights(namespace, MD, stable_weight=0, candidate_weight=100)
    last = read_route(kube_api, namespace)
    assert last["spec"]["rules"][1]["backendRefs"] == [
        backend(f"{MD}-stable", 0, filters=STABLE_FILTERS),
        backend(f"{MD}-candidate", 100),
    ]
    assert without_weights(last, 1) == without_weights(before, 1)
    assert gateway.get_weights(namespace, MD) == (0, 100)


def test_a_missing_route_is_an_invalid_spec(kube_api: client.ApiClient, namespace: str) -> None:
    gateway = router(kube_api, name="no-such-route")
    with pytest.raises(errors.InvalidSpec, match="HTTPRoute no-such-route not found") as raised:
        gateway.set_weights(namespace, MD, stable_weight=90, candidate_weight=10)
    assert raised.value.field == "spec.traffic.gatewayAPI.httpRoute"
    with pytest.raises(errors.InvalidSpec, match="not found"):
        gateway.get_weights(namespace, MD)


def test_a_missing_rule_is_an_invalid_spec(kube_api: client.ApiClient, namespace: str) -> None:
    before = create_route(kube_api, namespace)
    with pytest.raises(errors.InvalidSpec, match="has 2 rules; there is no rule 2") as raised:
        router(kube_api, rule_index=2).set_weights(
            namespace, MD, stable_weight=90, candidate_weight=10
        )
    assert raised.value.field == "spec.traffic.gatewayAPI.ruleIndex"
    after = read_route(kube_api, namespace)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_a_patch_of_a_route_changed_since_it_was_read_conflicts(
    kube_api: client.ApiClient, namespace: str
) -> None:
    stale = create_route(kube_api, namespace)
    router(kube_api).set_weights(namespace, MD, stable_weight=50, candidate_weight=50)
    patch = {
        "metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]},
        "spec": {"hostnames": ["other.example.com"]},
    }
    with pytest.raises(errors.Conflict):
        GatewayApi(kube_api).patch_httproute(namespace, ROUTE, patch)
    assert read_route(kube_api, namespace)["spec"]["hostnames"] == ["fraud.example.com"]


def test_weights_are_read_back_and_an_edited_route_is_reported(
    kube_api: client.ApiClient, namespace: str
) -> None:
    create_route(kube_api, namespace)
    kube = Kube(kube_api)
    md = build_md(
        {
            "metadata": {"name": MD, "namespace": namespace},
            "spec": {
                "traffic": {
                    "router": "GatewayAPI",
                    "gatewayAPI": {"httpRoute": ROUTE, "ruleIndex": 1},
                }
            },
        }
    )
    status = ModelDeploymentStatus(
        phase="Baking", traffic=TrafficStatus(stable_weight=90, candidate_weight=10)
    )
    assert baking.apply_weights(kube, md, status) == []
    assert baking.verify_weights(kube, md, status, NOW) == []
    applied = get_condition(status.conditions, "TrafficApplied")
    assert (applied.status, applied.reason, applied.message) == (
        "True",
        "WeightsInEffect",
        "GatewayAPI: stable 90%, candidate 10% in effect",
    )

    # Someone edits the rule after the write.
    edited = read_route(kube_api, namespace)
    for ref in edited["spec"]["rules"][1]["backendRefs"]:
        ref["weight"] = 50
    routes(kube_api).replace_namespaced_custom_object(
        GROUP, VERSION, namespace, HTTPROUTES, ROUTE, edited
    )
    mismatch = (
        "GatewayAPI: expected stable 90%, candidate 10%, but stable 50%, candidate 50% in effect"
    )
    events = baking.verify_weights(kube, md, status, NOW)
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Warning", "TrafficMismatch", mismatch)
    ]
    applied = get_condition(status.conditions, "TrafficApplied")
    assert (applied.status, applied.reason, applied.message) == (
        "False",
        "TrafficMismatch",
        mismatch,
    )

    # The next reconcile writes the weights again.
    assert baking.apply_weights(kube, md, status) == []
    assert baking.verify_weights(kube, md, status, NOW) == []
    assert get_condition(status.conditions, "TrafficApplied").status == "True"


def test_a_missing_route_makes_the_condition_false(
    kube_api: client.ApiClient, namespace: str
) -> None:
    kube = Kube(kube_api)
    md = build_md(
        {
            "metadata": {"name": MD, "namespace": namespace},
            "spec": {"traffic": {"router": "GatewayAPI", "gatewayAPI": {"httpRoute": ROUTE}}},
        }
    )
    status = ModelDeploymentStatus(traffic=TrafficStatus(stable_weight=100, candidate_weight=0))
    message = f"spec.traffic.gatewayAPI.httpRoute: HTTPRoute {ROUTE} not found in namespace"
    events = baking.apply_weights(kube, md, status)
    assert [(e.type, e.reason) for e in events] == [("Warning", "TrafficRouterError")]
    assert events[0].message.startswith(message)
    assert baking.verify_weights(kube, md, status, NOW) == []  # reported once, by the write
    applied = get_condition(status.conditions, "TrafficApplied")
    assert (applied.status, applied.reason) == ("False", "TrafficRouterError")
    assert applied.message.startswith(message)


def test_a_bake_leaves_the_replicas_to_the_owned_objects(
    kube_api: client.ApiClient, namespace: str, replica_log
) -> None:
    """With GatewayAPI the Deployments keep their sizes through the bake, under the
    operator's field manager only, while the route carries the weights."""
    create_route(kube_api, namespace)
    md = model_deployment("v1", router="GatewayAPI", weight=50)
    md["spec"]["traffic"]["gatewayAPI"] = {"httpRoute": ROUTE, "ruleIndex": 1}
    rollout = Rollout(kube_api, namespace, md)
    rollout.reconcile()
    rollout.pass_replay()
    rollout.new_version("v2")
    baked = rollout.pass_replay()
    assert (baked["phase"], baked["traffic"]["candidateWeight"]) == ("Baking", 50)
    assert replicas(kube_api, namespace) == (4, 4)
    assert traffic_applied(baked)["message"] == "GatewayAPI: stable 50%, candidate 50% in effect"
    assert read_route(kube_api, namespace)["spec"]["rules"][1]["backendRefs"] == [
        backend(f"{MD}-stable", 50, filters=STABLE_FILTERS),
        backend(f"{MD}-candidate", 50),
    ]
    assert rollout.approve("v2")["phase"] == "Production"
    assert replicas(kube_api, namespace) == (4, 0)
    for track in ("stable", "candidate"):
        assert REPLICA_RATIO not in managers(kube_api, namespace, track)
    assert replica_log.replicas(f"{MD}-stable") == [0, 4]
    assert replica_log.replicas(f"{MD}-candidate") == [4, 0, 4, 0]
