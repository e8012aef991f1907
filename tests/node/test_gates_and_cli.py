"""Manual gates, the status/approve/abort/retry commands and the Gateway API router, end to
end on the node: the operator is the chart's pod, the versions run as pods, and the weights
the commands lead to are the ones Traefik applies (checked with live requests)."""

from __future__ import annotations

from collections import Counter

from factories import events_configmap
from support.cluster import Cluster
from support.kube import apply, condition, get
from support.node import OperatorRelease, cli, gated, route, split
from support.wait import poll_until


def near(url: str, host: str, share: int) -> Counter[str] | None:
    """Which versions answered 100 live requests, once v2 gets about `share` of them
    (Traefik applies a route's new weights within a second or two)."""
    seen = split(url, 100, host=host)
    return seen if abs(seen["v2"] - share) <= 5 else None


def weights(cluster: Cluster, namespace: str) -> dict[str, int]:
    route = get(cluster, namespace, "httproute", "md-route")
    refs = route["spec"]["rules"][0]["backendRefs"]
    return {ref["name"]: ref.get("weight", 1) for ref in refs}


def phase_is(cluster: Cluster, namespace: str, phase: str, reason: str | None = None):
    def check():
        md = get(cluster, namespace, "md", "md")
        if not md or md.get("status", {}).get("phase") != phase:
            return None
        if reason is not None:
            paused = condition(md, "Paused")
            if not paused or paused["reason"] != reason:
                return None
        return md

    return check


def test_gate_approval_abort_and_route_weights(
    cluster: Cluster, namespace: str, cluster_operator: OperatorRelease, operator_image: str
) -> None:
    host = f"{namespace}.example"
    apply(cluster, namespace, events_configmap(), route(host), gated(operator_image, "v1"))
    # the first version has no stable version to bake against: it waits at the
    # production gate right after its replay
    poll_until(
        phase_is(cluster, namespace, "NonProduction", "GateWaiting"),
        timeout=90,
        message="v1 held at the gate",
    )
    shown = cli(cluster, namespace, "status")
    assert shown.returncode == 0, shown.stderr
    assert "GateWaiting" in shown.stdout
    approved = cli(cluster, namespace, "approve", "--gate", "BeforeProduction")
    assert approved.returncode == 0, approved.stderr
    poll_until(
        phase_is(cluster, namespace, "Production"),
        timeout=60,
        message="v1 promoted after approval",
    )
    poll_until(
        lambda: weights(cluster, namespace) == {"md-stable": 100, "md-candidate": 0} or None,
        timeout=30,
        message="route at 100/0",
    )

    apply(cluster, namespace, gated(operator_image, "v2"))
    md = poll_until(
        phase_is(cluster, namespace, "Baking", "GateWaiting"),
        timeout=90,
        message="v2 baked to the last step, held at the gate",
    )
    assert md["status"]["traffic"] == {"stableWeight": 40, "candidateWeight": 60}
    assert weights(cluster, namespace) == {"md-stable": 40, "md-candidate": 60}
    # Traefik sends live requests by those weights; the rest of the route is the user's.
    seen = poll_until(
        lambda: near(cluster.gateway_url, host, 60),
        timeout=30,
        message="Traefik sends 60% of live requests to v2",
    )
    assert seen["v1"] + seen["v2"] == 100, seen
    assert get(cluster, namespace, "httproute", "md-route")["spec"]["hostnames"] == [host]
    # the approval is in the status, not the spec: Git stays in sync
    assert md["spec"].get("approvals") is None

    aborted = cli(cluster, namespace, "abort")
    assert aborted.returncode == 0, aborted.stderr
    md = poll_until(
        phase_is(cluster, namespace, "RolledBack"), timeout=60, message="v2 rolled back"
    )
    assert condition(md, "RolledBack")["reason"] == "Aborted"
    assert md["status"]["stableVersion"] == "v1"
    poll_until(
        lambda: weights(cluster, namespace) == {"md-stable": 100, "md-candidate": 0} or None,
        timeout=30,
        message="route back at 100/0",
    )
    again = cli(cluster, namespace, "abort")
    assert again.returncode == 1
    assert "no rollout to abort" in again.stderr

    retried = cli(cluster, namespace, "retry")
    assert retried.returncode == 0, retried.stderr
    md = poll_until(
        phase_is(cluster, namespace, "Baking", "GateWaiting"),
        timeout=90,
        message="v2 retried: replayed and baked again",
    )
    assert md["status"]["attempt"] == 2
    assert md["status"]["replayTest"].endswith("-2")
    cli(cluster, namespace, "approve", "--gate", "BeforeProduction")
    md = poll_until(
        phase_is(cluster, namespace, "Production"),
        timeout=60,
        message="v2 promoted on its second attempt",
    )
    assert md["status"]["stableVersion"] == "v2"
    outcomes = [(h["version"], h["outcome"]) for h in md["status"]["history"]]
    assert outcomes == [("v2", "Promoted"), ("v2", "RolledBack"), ("v1", "Promoted")]
