"""The traffic router seam: how the weights of a bake reach live traffic.

One small Protocol, one module per implementation, and a factory that rejects unknown
kinds. Weights are percentages of live traffic to the stable and candidate tracks of a
ModelDeployment ``<md>``, whose Services are ``<md>-stable`` and ``<md>-candidate``.

* ``ReplicaRatio`` (:mod:`.replica_ratio`): the live Service ``<md>`` selects the pods of
  both tracks during a bake, and the router sets the replica counts of the two
  Deployments to the split, under a field manager of its own.
* ``GatewayAPI`` (:mod:`.gateway_api`): the weights of the backendRefs of one rule of an
  existing HTTPRoute.
* ``None`` (:mod:`.nop`): nothing is routed; the candidate gets no live traffic.

A reconcile calls :meth:`TrafficRouter.set_weights` *before* it applies the owned objects
(a router that takes over a field of theirs must hold it before they leave it out), and
reads the weights back with :meth:`TrafficRouter.get_weights` *after* (what is in effect
depends on the owned objects too, the live Service's selector for one). The read-back is
compared with :meth:`TrafficRouter.expected_weights`, not with the weights asked for: a
router may round them.
"""

from __future__ import annotations

from typing import Protocol, get_args

from modelrollout.core.api.modeldeployment import TrafficSpec
from modelrollout.core.errors import InvalidSpec
from modelrollout.core.traffic import Weights
from modelrollout.services.kube import Kube
from modelrollout.services.routers.gateway_api import GatewayApiTrafficRouter
from modelrollout.services.routers.nop import NopTrafficRouter
from modelrollout.services.routers.replica_ratio import ReplicaRatioRouter

KINDS: tuple[str, ...] = get_args(TrafficSpec.model_fields["router"].annotation)
"""The router kinds the API accepts: ReplicaRatio, GatewayAPI and None."""


class TrafficRouter(Protocol):
    """Sets and reads the split of live traffic between the stable and candidate tracks."""

    name: str

    def set_weights(
        self, namespace: str, md_name: str, *, stable_weight: int, candidate_weight: int
    ) -> None:
        """Send ``stable_weight`` and ``candidate_weight`` percent of live traffic to the
        stable and candidate tracks. Calling it again with the same weights writes nothing."""

    def expected_weights(self, *, stable_weight: int, candidate_weight: int) -> Weights | None:
        """The weights :meth:`get_weights` should find once these are set: the asked ones,
        or what the router can really give for them; None when there is no split."""

    def get_weights(self, namespace: str, md_name: str) -> Weights | None:
        """The weights ``(stable, candidate)`` in effect, in percent; None when there is no
        split to report."""


def make_router(spec: TrafficSpec, kube: Kube, *, port: int, replicas: int) -> TrafficRouter:
    """The router ``spec.router`` names; ``port`` is the port of the track Services and
    ``replicas`` the size of the serving pool (``spec.workload.replicas``).

    Unknown kinds, and GatewayAPI without its settings, raise
    :class:`~modelrollout.core.errors.InvalidSpec`.
    """
    if spec.router == "ReplicaRatio":
        return ReplicaRatioRouter(kube, pool=replicas)
    if spec.router == "GatewayAPI":
        if spec.gateway_api is None:
            raise InvalidSpec("spec.traffic.gatewayAPI", "required when router is GatewayAPI")
        return GatewayApiTrafficRouter(kube, spec.gateway_api, port=port)
    if spec.router == "None":
        return NopTrafficRouter()
    raise InvalidSpec(
        "spec.traffic.router",
        f"unknown router kind {spec.router!r}; choose one of {', '.join(KINDS)}",
    )


__all__ = ["KINDS", "TrafficRouter", "make_router"]
