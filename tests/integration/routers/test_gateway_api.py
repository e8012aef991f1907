"""The GatewayAPI router against a real apiserver with the Gateway API CRDs."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes import client

from modelrollout.core import errors
from modelrollout.core.api.modeldeployment import TrafficSpec
from modelrollout.services.gatewayapi_client import GROUP, HTTPROUTES, VERSION, GatewayApi
from modelrollout.services.kube import FIELD_MANAGER, Kube
from modelrollout.services.routers import TrafficRouter, make_router

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
    return make_router(spec, Kube(kube_api), port=80)


VOLATILE = ("resourceVersion", "generation", "managedFields")


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
