"""The router factory; no cluster is needed to build a router."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from modelrollout.core.api.modeldeployment import GatewayApiRouter, TrafficSpec
from modelrollout.core.errors import InvalidSpec
from modelrollout.services.kube import Kube
from modelrollout.services.routers import KINDS, make_router
from modelrollout.services.routers.gateway_api import GatewayApiTrafficRouter
from modelrollout.services.routers.nop import NopTrafficRouter
from modelrollout.services.routers.replica_ratio import ReplicaRatioRouter


@pytest.fixture
def kube() -> Iterator[Kube]:
    api = client.ApiClient()
    try:
        yield Kube(api)
    finally:
        api.close()


def test_the_known_kinds_are_the_ones_the_api_accepts() -> None:
    assert KINDS == ("ReplicaRatio", "GatewayAPI", "None")


def test_replica_ratio_is_the_default_and_splits_the_pool(kube: Kube) -> None:
    router = make_router(TrafficSpec(), kube, port=80, replicas=3)
    assert isinstance(router, ReplicaRatioRouter)
    assert (router.name, router.pool) == ("ReplicaRatio", 3)
    # 10 % of 3 replicas is 3 + 1 pods: what reading back should find is 25 %
    assert router.expected_weights(stable_weight=90, candidate_weight=10) == (75, 25)


def test_none_routes_nothing(kube: Kube) -> None:
    router = make_router(TrafficSpec(router="None"), kube, port=80, replicas=3)
    assert isinstance(router, NopTrafficRouter)
    assert router.name == "None"
    router.set_weights("ns", "md", stable_weight=100, candidate_weight=0)
    assert router.expected_weights(stable_weight=100, candidate_weight=0) is None
    assert router.get_weights("ns", "md") is None


@pytest.mark.parametrize("call", ["set_weights", "expected_weights"])
def test_none_refuses_a_candidate_weight(kube: Kube, call: str) -> None:
    router = make_router(TrafficSpec(router="None"), kube, port=80, replicas=3)
    weights = {"stable_weight": 90, "candidate_weight": 10}
    args = ("ns", "md") if call == "set_weights" else ()
    with pytest.raises(InvalidSpec, match="router None sends no live traffic") as raised:
        getattr(router, call)(*args, **weights)
    assert raised.value.field == "spec.traffic.router"


def test_gateway_api_gets_its_settings(kube: Kube) -> None:
    spec = TrafficSpec.model_validate(
        {"router": "GatewayAPI", "gatewayAPI": {"httpRoute": "live", "ruleIndex": 2}}
    )
    router = make_router(spec, kube, port=8080, replicas=3)
    assert isinstance(router, GatewayApiTrafficRouter)
    assert (router.name, router.settings.http_route, router.settings.rule_index) == (
        "GatewayAPI",
        "live",
        2,
    )
    assert router.port == 8080
    assert router.expected_weights(stable_weight=90, candidate_weight=10) == (90, 10)


@pytest.mark.parametrize("kind", ["Istio", "SMI", "", "replicaratio"])
def test_unknown_router_kinds_are_rejected(kube: Kube, kind: str) -> None:
    spec = TrafficSpec.model_construct(router=kind, gateway_api=GatewayApiRouter(http_route="x"))
    with pytest.raises(InvalidSpec, match=f"unknown router kind {kind!r}; choose one of") as raised:
        make_router(spec, kube, port=80, replicas=3)
    assert raised.value.field == "spec.traffic.router"


def test_gateway_api_without_settings_is_rejected(kube: Kube) -> None:
    spec = TrafficSpec.model_construct(router="GatewayAPI", gateway_api=None)
    with pytest.raises(InvalidSpec, match="required when router is GatewayAPI") as raised:
        make_router(spec, kube, port=80, replicas=3)
    assert raised.value.field == "spec.traffic.gatewayAPI"
