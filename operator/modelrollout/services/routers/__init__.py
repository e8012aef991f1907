"""The traffic router seam: how the weights of a bake reach live traffic.

One small Protocol, one module per implementation, and a factory that rejects unknown
kinds. Weights are percentages of live traffic to the stable and candidate tracks of a
ModelDeployment ``<md>``, whose Services are ``<md>-stable`` and ``<md>-candidate``.

* ``ReplicaRatio`` (:mod:`.replica_ratio`): the live Service ``<md>`` selects the pods of
  both tracks, and the weights are the replica counts of the two Deployments.
* ``GatewayAPI`` (:mod:`.gateway_api`): the weights of the backendRefs of one rule of an
  existing HTTPRoute.
"""

from __future__ import annotations

from typing import Protocol, get_args

from modelrollout.core.api.modeldeployment import TrafficSpec
from modelrollout.core.errors import InvalidSpec
from modelrollout.services.kube import Kube
from modelrollout.services.routers.gateway_api import GatewayApiTrafficRouter
from modelrollout.services.routers.replica_ratio import ReplicaRatioRouter

KINDS: tuple[str, ...] = get_args(TrafficSpec.model_fields["router"].annotation)
"""The router kinds the API accepts: ReplicaRatio and GatewayAPI."""


class TrafficRouter(Protocol):
    """Sets and reads the split of live traffic between the stable and candidate tracks."""

    name: str

    def set_weights(
        self, namespace: str, md_name: str, *, stable_weight: int, candidate_weight: int
    ) -> None:
        """Send ``stable_weight`` and ``candidate_weight`` percent of live traffic to the
        stable and candidate tracks. Calling it again with the same weights writes nothing."""

    def get_weights(self, namespace: str, md_name: str) -> tuple[int, int] | None:
        """The weights ``(stable, candidate)`` in effect, in percent; None when there is no
        split to report yet."""


def make_router(spec: TrafficSpec, kube: Kube, *, port: int) -> TrafficRouter:
    """The router ``spec.router`` names; ``port`` is the port of the track Services.

    Unknown kinds, and GatewayAPI without its settings, raise
    :class:`~modelrollout.core.errors.InvalidSpec`.
    """
    if spec.router == "ReplicaRatio":
        return ReplicaRatioRouter(kube)
    if spec.router == "GatewayAPI":
        if spec.gateway_api is None:
            raise InvalidSpec("spec.traffic.gatewayAPI", "required when router is GatewayAPI")
        return GatewayApiTrafficRouter(kube, spec.gateway_api, port=port)
    raise InvalidSpec(
        "spec.traffic.router",
        f"unknown router kind {spec.router!r}; choose one of {', '.join(KINDS)}",
    )


__all__ = ["KINDS", "TrafficRouter", "make_router"]
