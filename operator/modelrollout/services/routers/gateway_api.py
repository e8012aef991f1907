"""The GatewayAPI router: exact weights on an existing HTTPRoute.

The HTTPRoute named in ``spec.traffic.gatewayAPI.httpRoute`` belongs to the user; the
operator only sets the backendRefs of the rule at ``ruleIndex`` to the stable and
candidate Services with the weights, and patches nothing but ``spec.rules`` (see
:func:`modelrollout.core.traffic.httproute_weights`). The patch carries the
``resourceVersion`` that was read, so an edit made in between is never overwritten: the
apiserver refuses the patch with a conflict, and the next reconcile starts from the new
route. When the rule already carries the weights, nothing is written.

Gateway API weights are exact, so reading them back must find the weights asked for; an
edit of the rule made after the write (by a person, or a GitOps tool that owns the route)
shows as a mismatch until the next reconcile writes the weights again. The router owns no
field of the Deployments: their replicas stay with the owned objects.
"""

from __future__ import annotations

from typing import Any

from modelrollout.core import names, traffic
from modelrollout.core.api.modeldeployment import GatewayApiRouter
from modelrollout.core.errors import InvalidSpec
from modelrollout.core.traffic import Weights
from modelrollout.services.gatewayapi_client import GatewayApi
from modelrollout.services.kube import Kube


class GatewayApiTrafficRouter:
    """Traffic split by the weights of an HTTPRoute rule."""

    name = "GatewayAPI"

    def __init__(self, kube: Kube, settings: GatewayApiRouter, *, port: int) -> None:
        self.gateway = GatewayApi(kube.api_client)
        self.settings = settings
        self.port = port

    def _route(self, namespace: str) -> dict[str, Any]:
        route = self.gateway.get_httproute(namespace, self.settings.http_route)
        if route is None:
            raise InvalidSpec(
                traffic.FIELD_ROUTE,
                f"HTTPRoute {self.settings.http_route} not found in namespace {namespace}",
            )
        return route

    def set_weights(
        self, namespace: str, md_name: str, *, stable_weight: int, candidate_weight: int
    ) -> None:
        route = self._route(namespace)
        patch = traffic.httproute_weights(
            route,
            rule_index=self.settings.rule_index,
            stable_service=names.stable_name(md_name),
            candidate_service=names.candidate_name(md_name),
            port=self.port,
            stable_weight=stable_weight,
            candidate_weight=candidate_weight,
        )
        if patch["spec"]["rules"] == route["spec"]["rules"]:
            return
        patch["metadata"] = {"resourceVersion": route["metadata"]["resourceVersion"]}
        self.gateway.patch_httproute(namespace, self.settings.http_route, patch)

    def expected_weights(self, *, stable_weight: int, candidate_weight: int) -> Weights | None:
        """Exactly the weights asked for."""
        traffic.check_weight(stable_weight, "stable_weight")
        traffic.check_weight(candidate_weight, "candidate_weight")
        return stable_weight, candidate_weight

    def get_weights(self, namespace: str, md_name: str) -> Weights | None:
        """The weights of the rule's backendRefs to the two Services, in percent; None until
        the rule has a backendRef to each."""
        return traffic.route_weights(
            self._route(namespace),
            rule_index=self.settings.rule_index,
            stable_service=names.stable_name(md_name),
            candidate_service=names.candidate_name(md_name),
        )
