"""The None router: no routing at all.

With ``spec.traffic.router: None`` the operator splits no live traffic. The live Service
``<md>`` selects the stable pods only, the candidate is judged by its replay alone, and a
passed replay goes straight to Production. A bake would ask for weights this router cannot
give, so the API refuses ``stages.baking`` together with router None (a CEL rule, mirrored
by the model); should a candidate weight reach this router anyway, setting it is an
:class:`~modelrollout.core.errors.InvalidSpec`, reported like any router error.

There is nothing to write and nothing to read back: the weights in effect and the expected
ones are both "no split".
"""

from __future__ import annotations

from modelrollout.core import traffic
from modelrollout.core.errors import InvalidSpec
from modelrollout.core.traffic import Weights

FIELD_ROUTER = "spec.traffic.router"


def _refuse_a_candidate_weight(stable_weight: int, candidate_weight: int) -> None:
    traffic.check_weight(stable_weight, "stable_weight")
    traffic.check_weight(candidate_weight, "candidate_weight")
    if candidate_weight > 0:
        raise InvalidSpec(
            FIELD_ROUTER,
            f"router None sends no live traffic to the candidate, not {candidate_weight}%; "
            "choose ReplicaRatio or GatewayAPI to bake",
        )


class NopTrafficRouter:
    """Routes nothing; the candidate gets no live traffic."""

    name = "None"

    def set_weights(
        self, namespace: str, md_name: str, *, stable_weight: int, candidate_weight: int
    ) -> None:
        """Writes nothing; a candidate weight cannot be given and is refused."""
        _refuse_a_candidate_weight(stable_weight, candidate_weight)

    def expected_weights(self, *, stable_weight: int, candidate_weight: int) -> Weights | None:
        """No split; a candidate weight cannot be given and is refused."""
        _refuse_a_candidate_weight(stable_weight, candidate_weight)
        return None

    def get_weights(self, namespace: str, md_name: str) -> Weights | None:
        """No split: nothing is routed."""
        return None
