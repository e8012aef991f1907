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
from modelrollout.services.routers.replica_ratio import ReplicaRatioRouter


@pytest.fixture
def kube() -> Iterator[Kube]:
    api = client.ApiClient()
    try:
        yield Kube(api)
    finally:
        api.close()


def test_the_known_kinds_are_the_ones_the_api_accepts() -> None:
    assert KINDS == ("ReplicaRatio", "GatewayAPI")


def test_replica_ratio_is_the_default(kube: Kube) -> None:
    router = make_router(TrafficSpec(), kube, port=80)
    assert isinstance(router, ReplicaRatioRouter)
    assert router.name == "ReplicaRatio"


def test_gateway_api_gets_its_settings(kube: Kube) -> None:
    spec = TrafficSpec.model_validate(
        {"router": "GatewayAPI", "gatewayAPI": {"httpRoute": "live", "ruleIndex": 2}}
    )
    router = make_router(spec, kube, port=8080)
    assert isinstance(router, GatewayApiTrafficRouter)
    assert (router.name, router.settings.http_route, router.settings.rule_index) == (
        "GatewayAPI",
        "live",
        2,
    )
    assert router.port == 8080


@pytest.mark.parametrize("kind", ["Istio", "SMI", "", "replicaratio"])
def test_unknown_router_kinds_are_rejected(kube: Kube, kind: str) -> None:
    spec = TrafficSpec.model_construct(router=kind, gateway_api=GatewayApiRouter(http_route="x"))
    with pytest.raises(InvalidSpec, match=f"unknown router kind {kind!r}; choose one of") as raised:
        make_router(spec, kube, port=80)
    assert raised.value.field == "spec.traffic.router"


def test_gateway_api_without_settings_is_rejected(kube: Kube) -> None:
    spec = TrafficSpec.model_construct(router="GatewayAPI", gateway_api=None)
    with pytest.raises(InvalidSpec, match="required when router is GatewayAPI") as raised:
        make_router(spec, kube, port=80)
    assert raised.value.field == "spec.traffic.gatewayAPI"
