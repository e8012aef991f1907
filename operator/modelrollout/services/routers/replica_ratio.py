"""The ReplicaRatio router: weights as the share of pods behind one Service.

The live Service ``<md>`` selects the pods of both tracks, so each ready pod gets about the
same share of requests. The weights are therefore the replica counts of the Deployments
``<md>-stable`` and ``<md>-candidate``, which are part of the manifests the operator
applies on every reconcile (see :func:`modelrollout.core.traffic.replica_split`). Setting
weights here writes nothing: a second writer of ``spec.replicas`` would fight the apply.
Reading them gives the effective split of the replica counts the Deployments ask for
(:func:`modelrollout.core.traffic.effective_weight`); pods that are not ready yet are not
accounted for.
"""

from __future__ import annotations

from modelrollout.core import names, traffic
from modelrollout.services.kube import Kube


class ReplicaRatioRouter:
    """Traffic split by replica counts."""

    name = "ReplicaRatio"

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def set_weights(
        self, namespace: str, md_name: str, *, stable_weight: int, candidate_weight: int
    ) -> None:
        """Writes nothing: the replica counts are applied with the Deployments."""
        traffic.check_weight(stable_weight, "stable_weight")
        traffic.check_weight(candidate_weight, "candidate_weight")

    def get_weights(self, namespace: str, md_name: str) -> tuple[int, int] | None:
        """The effective weights of the two Deployments' replica counts; None when either
        Deployment is missing or neither asks for pods."""
        counts = []
        for name in (names.stable_name(md_name), names.candidate_name(md_name)):
            found = self.kube.get_deployment(namespace, name)
            if found is None:
                return None
            counts.append(int((found.get("spec") or {}).get("replicas", 1)))
        stable, candidate = counts
        if stable + candidate == 0:
            return None
        candidate_weight = traffic.effective_weight(stable, candidate)
        return 100 - candidate_weight, candidate_weight
