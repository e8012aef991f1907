"""Traffic weights: how a share of live traffic becomes replica counts or HTTPRoute weights.

Weights are percentages (0 to 100) of live traffic sent to the stable and to the candidate
track of a ModelDeployment. The routers turn them into something the cluster acts on:

* **ReplicaRatio**: the live Service ``<md>`` selects the pods of both tracks while the
  candidate has a share, so each pod gets about the same share of requests and the split
  of traffic is the split of pods. :func:`replica_split` picks the replica counts, and
  :func:`effective_weight` says which weight a pair of counts really gives; with few pods
  it can be far from the one asked for (:func:`replica_ratio_weights`).
  :func:`replicas_follow_weights` says when the router, rather than the owned objects,
  sets the Deployments' replicas.
* **GatewayAPI**: an existing HTTPRoute carries exact weights on the backendRefs of one
  rule. :func:`httproute_weights` builds the patch that sets them.
* **None**: nothing is routed; the candidate never gets live traffic.

After setting the weights, each router reads back the ones in effect;
:func:`check_weights` compares them with the weights the router should give and words
the outcome.

Everything here is pure: plain numbers and dicts in, plain numbers and dicts out.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from modelrollout.core import reasons
from modelrollout.core.errors import InvalidSpec

FIELD_ROUTE = "spec.traffic.gatewayAPI.httpRoute"
FIELD_RULE_INDEX = "spec.traffic.gatewayAPI.ruleIndex"

REPLICA_RATIO = "ReplicaRatio"

# Reasons of the TrafficApplied condition (and of the Warning Event of a mismatch)

Weights = tuple[int, int]
"""``(stable, candidate)`` in percent."""


def check_weight(weight: int, what: str) -> None:
    """Raise :class:`ValueError` unless ``weight`` is a percentage (0 to 100)."""
    if not 0 <= weight <= 100:
        raise ValueError(f"{what} must be between 0 and 100, not {weight}")


def _ceil_percent(replicas: int, percent: int) -> int:
    """``ceil(replicas * percent / 100)`` in integers, so that no float rounding creeps in."""
    return -(-replicas * percent // 100)


def replica_split(
    stable_replicas: int, candidate_weight: int, *, candidate_min: int = 1
) -> tuple[int, int]:
    """The replica counts ``(stable, candidate)`` that give the candidate about its weight.

    ``stable_replicas`` is the size of the serving pool (``spec.workload.replicas``) and
    ``candidate_weight`` the candidate's percentage of live traffic. The rule:

    * weight 0: ``(stable_replicas, 0)``, the candidate gets no pod and no traffic;
    * weight 100: ``(0, max(stable_replicas, candidate_min))``, the candidate takes over
      the whole pool;
    * otherwise each track keeps the pods its share of the traffic needs, rounded up:
      ``stable = ceil(stable_replicas * (100 - weight) / 100)`` and
      ``candidate = max(candidate_min, ceil(stable_replicas * weight / 100))``.

    Rounding both up means the pool never has fewer pods than ``stable_replicas`` and
    neither track is ever short of capacity for its share; when the shares do not divide
    the pool evenly (small weights, small pools) there is one pod more than
    ``stable_replicas``, or more when ``candidate_min`` asks for it. The candidate always
    gets at least ``candidate_min`` pods, so a small weight on a small pool yields a larger
    share than asked for: ten percent of three replicas is ``(3, 1)``, an effective weight
    of 25. An empty pool (``stable_replicas`` 0) gives the candidate ``candidate_min``
    pods for any weight above 0. :func:`effective_weight` gives the share a split really
    achieves.
    """
    if stable_replicas < 0:
        raise ValueError(f"stable_replicas must not be negative, not {stable_replicas}")
    if candidate_min < 1:
        raise ValueError(f"candidate_min must be at least 1, not {candidate_min}")
    check_weight(candidate_weight, "candidate_weight")
    if candidate_weight == 0:
        return stable_replicas, 0
    if candidate_weight == 100:
        return 0, max(stable_replicas, candidate_min)
    stable = _ceil_percent(stable_replicas, 100 - candidate_weight)
    candidate = max(candidate_min, _ceil_percent(stable_replicas, candidate_weight))
    return stable, candidate


def effective_weight(stable: int, candidate: int) -> int:
    """The candidate's share of live traffic, in percent, when pods share it evenly.

    ``100 * candidate / (stable + candidate)`` rounded to the nearest integer (halves up),
    kept between 1 and 99 while both tracks have pods: one candidate pod among a thousand
    still gets traffic, and one stable pod keeps a share too. 0 when there are no pods.
    The stable share is ``100 - effective_weight(...)``.
    """
    if stable < 0 or candidate < 0:
        raise ValueError(f"replica counts must not be negative, not {stable} and {candidate}")
    total = stable + candidate
    if total == 0 or candidate == 0:
        return 0
    if stable == 0:
        return 100
    percent = (200 * candidate + total) // (2 * total)
    return min(99, max(1, percent))


def live_weights(stable: int, candidate: int) -> Weights | None:
    """The weights ``(stable, candidate)`` that ``stable`` and ``candidate`` pods behind one
    Service get (see :func:`effective_weight`); None when no pod is behind it."""
    candidate_weight = effective_weight(stable, candidate)
    if stable + candidate == 0:
        return None
    return 100 - candidate_weight, candidate_weight


def replicas_follow_weights(router: str, candidate_weight: int) -> bool:
    """Whether the router, not the owned objects, sets the replicas of both Deployments.

    True for ReplicaRatio while the candidate has a share of live traffic (a bake step;
    the API has no step of weight 0): the replicas then carry the split, and the live
    Service selects the pods of both tracks. Otherwise the owned Deployments carry their
    own sizes and the live Service selects the stable pods only, so a candidate never gets
    live traffic outside a bake.
    """
    check_weight(candidate_weight, "candidate_weight")
    return router == REPLICA_RATIO and candidate_weight > 0


def replica_ratio_weights(
    pool: int, *, stable_weight: int, candidate_weight: int
) -> Weights | None:
    """The weights ReplicaRatio gives when asked for ``stable_weight``/``candidate_weight``
    with a pool of ``pool`` replicas (``spec.workload.replicas``): what reading them back
    should find.

    With a candidate weight the live Service selects both tracks and the replicas are
    :func:`replica_split`, so the weight is the effective one of that split (10 % of 3
    replicas gives 3 + 1 pods, 25 %). Without one the live Service selects the stable pods
    only: all traffic goes to them when there is a stable version (``stable_weight`` above
    0) and a pool, and there is no split at all (None) otherwise.
    """
    check_weight(stable_weight, "stable_weight")
    if candidate_weight == 0:
        return live_weights(pool if stable_weight > 0 else 0, 0)
    return live_weights(*replica_split(pool, candidate_weight))


@dataclass(frozen=True)
class Check:
    """The outcome of reading the weights back: in effect or not, and why, in words."""

    applied: bool
    reason: str
    message: str


def describe(weights: Weights | None) -> str:
    """``stable 75%, candidate 25%``, or ``no split`` for None."""
    if weights is None:
        return "no split"
    stable, candidate = weights
    return f"stable {stable}%, candidate {candidate}%"


def check_weights(
    router: str, *, asked: Weights, expected: Weights | None, found: Weights | None
) -> Check:
    """Compare the weights read back (``found``) with those the router should give for the
    weights ``asked`` (``expected``, which differs from ``asked`` where the router rounds).

    Equal weights are in effect; anything else is a mismatch, whose message names both.
    """
    if found == expected:
        detail = "" if expected == asked else f" (asked {describe(asked)})"
        return Check(
            True, reasons.WEIGHTS_IN_EFFECT, f"{router}: {describe(found)} in effect{detail}"
        )
    wanted = describe(expected)
    if expected != asked:
        wanted += f" for the asked {describe(asked)}"
    return Check(
        False,
        reasons.TRAFFIC_MISMATCH,
        f"{router}: expected {wanted}, but {describe(found)} in effect",
    )


def backend_ref(service: str, *, port: int, weight: int) -> dict[str, Any]:
    """A backendRef to a Service, with the defaults the apiserver would fill in written out.

    Writing ``group`` and ``kind`` explicitly makes what is stored equal to what was sent,
    so comparing the two tells whether a write is needed.
    """
    return {"group": "", "kind": "Service", "name": service, "port": port, "weight": weight}


def refers_to(ref: dict[str, Any], service: str, namespace: str | None) -> bool:
    """Whether a backendRef points at the Service ``service`` in the route's namespace."""
    return (
        ref.get("name") == service
        and ref.get("group", "") == ""
        and ref.get("kind", "Service") == "Service"
        and ref.get("namespace", namespace) == namespace
    )


def route_rules(route: dict[str, Any], rule_index: int) -> list[dict[str, Any]]:
    """The rules of an HTTPRoute, checked to have a rule at ``rule_index``."""
    name = (route.get("metadata") or {}).get("name", "")
    rules = (route.get("spec") or {}).get("rules") or []
    if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
        raise InvalidSpec(FIELD_ROUTE, f"HTTPRoute {name} has malformed spec.rules")
    if not 0 <= rule_index < len(rules):
        count = f"{len(rules)} rule" + ("" if len(rules) == 1 else "s")
        raise InvalidSpec(
            FIELD_RULE_INDEX, f"HTTPRoute {name} has {count}; there is no rule {rule_index}"
        )
    return rules


def httproute_weights(
    route: dict[str, Any],
    *,
    rule_index: int,
    stable_service: str,
    candidate_service: str,
    port: int,
    stable_weight: int,
    candidate_weight: int,
) -> dict[str, Any]:
    """The JSON merge patch ``{"spec": {"rules": [...]}}`` that sets the weights.

    The rule at ``rule_index`` gets exactly two backendRefs, the stable Service then the
    candidate Service, on ``port`` with the given weights. A backendRef that already pointed
    at one of them keeps its other fields (its filters, for example). Every other field of
    that rule, and every other rule, is copied unchanged.

    A JSON merge patch replaces a list as a whole, so the patch carries the complete new
    ``spec.rules``; sending it changes nothing else in the route. Raises
    :class:`~modelrollout.core.errors.InvalidSpec` when the route has no rule at
    ``rule_index``.
    """
    check_weight(stable_weight, "stable_weight")
    check_weight(candidate_weight, "candidate_weight")
    if stable_service == candidate_service:
        raise ValueError("the stable and candidate Services must differ")
    rules = copy.deepcopy(route_rules(route, rule_index))
    namespace = (route.get("metadata") or {}).get("namespace")
    rule = rules[rule_index]
    existing = [ref for ref in rule.get("backendRefs") or [] if isinstance(ref, dict)]
    refs = []
    for service, weight in ((stable_service, stable_weight), (candidate_service, candidate_weight)):
        previous = next((ref for ref in existing if refers_to(ref, service, namespace)), {})
        refs.append({**previous, **backend_ref(service, port=port, weight=weight)})
    rule["backendRefs"] = refs
    return {"spec": {"rules": rules}}


def route_weights(
    route: dict[str, Any], *, rule_index: int, stable_service: str, candidate_service: str
) -> tuple[int, int] | None:
    """The weights ``(stable, candidate)`` in percent that a rule of an HTTPRoute carries.

    Gateway API weights are relative (a missing weight is 1), so they are turned into
    percentages the way :func:`effective_weight` does. None when the rule lacks a backendRef
    to either Service, which is the case until the weights are first set.
    """
    rule = route_rules(route, rule_index)[rule_index]
    namespace = (route.get("metadata") or {}).get("namespace")
    refs = [ref for ref in rule.get("backendRefs") or [] if isinstance(ref, dict)]
    found: list[int] = []
    for service in (stable_service, candidate_service):
        ref = next((ref for ref in refs if refers_to(ref, service, namespace)), None)
        if ref is None:
            return None
        found.append(int(ref.get("weight", 1)))
    stable, candidate = found
    if stable + candidate == 0:
        return 0, 0
    candidate_percent = effective_weight(stable, candidate)
    return 100 - candidate_percent, candidate_percent
