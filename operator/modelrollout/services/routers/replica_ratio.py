"""The ReplicaRatio router: weights as the share of pods behind one Service.

During a bake the live Service ``<md>`` selects the pods of both tracks, so each ready pod
gets about the same share of requests, and this router sets the replica counts of the
Deployments ``<md>-stable`` and ``<md>-candidate`` to the split of the pool
(``spec.workload.replicas``) that :func:`modelrollout.core.traffic.replica_split` gives.
Outside a bake the live Service selects the stable pods only, the owned Deployments carry
their own sizes, and the router writes nothing but the release of a claim it no longer
needs.

Who owns ``spec.replicas``
--------------------------
Both Deployments are written with server-side apply by two field managers:

* ``modelrollout``, the owned objects: whenever the candidate has no share of live traffic
  (NonProduction, Production, RolledBack, Failed), with the pool for stable (0 before a
  first version), ``candidateReplicas`` for a candidate under test and 0 otherwise;
* ``modelrollout-replicaratio``, this router: while it bakes (ReplicaRatio and a candidate
  weight above 0, :func:`modelrollout.core.traffic.replicas_follow_weights`), with the
  split. The owned Deployments then leave ``spec.replicas`` out.

Exactly one of them writes the field in a reconcile, so the two never take it from each
other on every reconcile. What needs care is the hand-over: a field that its only owner
stops applying is removed, and a Deployment without ``spec.replicas`` is defaulted to one
replica. So ownership only moves by the new owner writing first:

* *Into a bake* the reconcile calls :meth:`ReplicaRatioRouter.set_weights` before it
  applies the owned objects. The router applies the split with ``force``, which takes the
  field from ``modelrollout`` (or shares it, when the value is the same); the owned objects
  applied next leave it out, and the router is its only owner. The field goes from the
  NonProduction sizes to the split, never through 1.
* *Out of a bake* (promotion, rollback, abort, a switch to another router kind) the owned
  objects carry the replicas again and are applied with ``force``: a different value
  moves the field to ``modelrollout`` at once; an equal value is shared, and the router
  gives its claim up on a later call (see :meth:`ReplicaRatioRouter.set_weights`), never
  while it is the only owner. The field goes from the split to the pool.
* *During a bake* the router writes only when the count differs or is not its own, and
  nothing else writes it. A replica count changed by someone else (``kubectl scale``) is
  reported by the read-back and put back by the next reconcile.

Every step is derived from ``status.traffic`` and the spec, and each write is idempotent,
so the operator may stop at any instant: a reconcile that stopped after the router's write
but before the owned objects is done again from the same status, and whatever it then
decides, the rules above hold. Switching router kinds mid-bake is a way out of the bake for
the replicas: the owned objects take them back. This router is then no longer called, so a
claim it shared at an equal value stays; it is harmless, as the owned objects write the
field on every apply, and it goes the first time they change it. A Deployment deleted
mid-bake cannot be claimed (the router writes replicas, not whole Deployments): the owned
objects recreate it with the default replica, and the next reconcile claims it.

Reading the weights back gives the effective split of the replica counts the Deployments
ask for among the tracks the live Service selects
(:func:`modelrollout.core.traffic.live_weights`); pods that are not ready yet are not
accounted for. It is compared with :func:`modelrollout.core.traffic.replica_ratio_weights`,
the weight the split really gives, not the one asked for: 10 % of 3 replicas is 3 + 1 pods,
25 %.
"""

from __future__ import annotations

from typing import Any

from modelrollout.core import names, traffic, workloads
from modelrollout.core.traffic import Weights
from modelrollout.services import kube as kube_client
from modelrollout.services.kube import Kube

FIELD_MANAGER = "modelrollout-replicaratio"
REPLICAS = ("spec", "replicas")


class ReplicaRatioRouter:
    """Traffic split by replica counts."""

    name = "ReplicaRatio"

    def __init__(self, kube: Kube, *, pool: int) -> None:
        self.kube = kube
        self.pool = pool

    def set_weights(
        self, namespace: str, md_name: str, *, stable_weight: int, candidate_weight: int
    ) -> None:
        """With a candidate weight, claim both Deployments' replicas and set them to the
        split. Without one, give up a claim that another manager shares, so the owned
        objects are the only owner again; a claim held alone is kept, as dropping it would
        remove the field. Missing Deployments are left to the owned objects."""
        traffic.check_weight(stable_weight, "stable_weight")
        traffic.check_weight(candidate_weight, "candidate_weight")
        tracks = [names.stable_name(md_name), names.candidate_name(md_name)]
        if candidate_weight == 0:
            for name in tracks:
                found = self.kube.get_deployment(namespace, name)
                owners = workloads.field_managers(found, *REPLICAS) if found else frozenset()
                if FIELD_MANAGER in owners and owners - {FIELD_MANAGER}:
                    self._apply(namespace, name, {})
            return
        split = traffic.replica_split(self.pool, candidate_weight)
        for name, replicas in zip(tracks, split, strict=True):
            found = self.kube.get_deployment(namespace, name)
            if found is None:
                continue
            owned = FIELD_MANAGER in workloads.field_managers(found, *REPLICAS)
            if owned and (found.get("spec") or {}).get("replicas") == replicas:
                continue
            self._apply(namespace, name, {"replicas": replicas})

    def _apply(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        """Server-side apply of ``spec`` (``{}`` gives up every field) as this router."""
        body: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
        }
        if spec:
            body["spec"] = spec
        kube_client.call_api(
            lambda: self.kube.apps.patch_namespaced_deployment(
                name,
                namespace,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=kube_client.APPLY,
                _preload_content=False,
            ),
            f"deployment/{name}",
            verb="apply",
            resource="deployments",
        )

    def expected_weights(self, *, stable_weight: int, candidate_weight: int) -> Weights | None:
        """The effective weights of the split (or of the stable pool alone, without a
        candidate weight)."""
        return traffic.replica_ratio_weights(
            self.pool, stable_weight=stable_weight, candidate_weight=candidate_weight
        )

    def get_weights(self, namespace: str, md_name: str) -> Weights | None:
        """The effective weights of the replica counts of the tracks the live Service
        selects; None when it or a Deployment is missing, or it selects no replica."""
        live_name = names.live_service_name(md_name)
        live = self.kube.get_service(namespace, live_name)
        if live is None:
            return None
        selector = (live.get("spec") or {}).get("selector") or {}
        selected = selector.get(workloads.LABEL_TRACK)
        counts = []
        for track, name in (
            ("stable", names.stable_name(md_name)),
            ("candidate", names.candidate_name(md_name)),
        ):
            found = self.kube.get_deployment(namespace, name)
            if found is None:
                return None
            replicas = int((found.get("spec") or {}).get("replicas", 1))
            counts.append(replicas if selected in (None, track) else 0)
        stable, candidate = counts
        return traffic.live_weights(stable, candidate)
