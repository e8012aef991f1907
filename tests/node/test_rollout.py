"""Promotion and rollback on real traffic, and an operator pod killed mid-bake.

Everything is real: the operator runs as a pod installed by the chart, the model versions
run as pods, live requests go through Traefik by the HTTPRoute weights the operator sets,
and the SLO is a PromQL query over what a real Prometheus scraped from the pods.
"""

from __future__ import annotations

import time

from support.cluster import Cluster
from support.kube import apply, condition, events, get
from support.node import LiveTraffic, OperatorRelease, baked, live_answers, wait_phase
from support.wait import poll_until


def test_bake_on_live_traffic_promotes_v2_and_rolls_back_v3(
    cluster: Cluster,
    namespace: str,
    cluster_operator: OperatorRelease,
    operator_image: str,
    prom: str,
) -> None:
    host = f"{namespace}.example"
    live = LiveTraffic(cluster.gateway_url, host=host, rate=25)
    with live.running():
        apply(cluster, namespace, baked(operator_image, "v2", prom))
        status = wait_phase(cluster, namespace, "Production", stableVersion="v2", timeout=180)
        assert [h["outcome"] for h in status["history"]][:1] == ["Promoted"]
        (tally,) = status["analysis"]
        assert tally["failed"] == 0
        assert tally["successful"] >= 2
        assert events(cluster, namespace, "StepAdvanced")
        v2_done = len(live.outcomes)

        # v3 answers its replay (100 requests) and 20 live ones well, then half its
        # answers are errors.
        apply(
            cluster,
            namespace,
            baked(operator_image, "v3", prom, "--faults-after-requests", "120",
                  "--error-rate", "0.5"),
        )  # fmt: skip
        status = wait_phase(cluster, namespace, "RolledBack", timeout=180)
        rolled_back_at = len(live.outcomes)
        # Traefik applies the route's new weights within a second or two: from then on
        # every live answer comes from v2.
        poll_until(
            lambda: live_answers(live, since=rolled_back_at)[-20:] == ["v2"] * 20,
            timeout=30,
            interval=0.2,
            message="the last 20 live answers all from v2",
        )
    assert status["stableVersion"] == "v2"
    assert status["traffic"] == {"stableWeight": 100, "candidateWeight": 0}
    rolled = condition({"status": status}, "RolledBack")
    assert rolled is not None
    assert rolled["reason"] == "SLOBreach", rolled
    assert "error-rate" in rolled["message"]
    md_route = get(cluster, namespace, "httproute", "md-route")
    weights = {r["name"]: r["weight"] for r in md_route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {"md-stable": 100, "md-candidate": 0}

    # What the live clients saw: v2 served some of them during its bake and then all of
    # them; v3 served some, with errors among them, before the rollback.
    answered = [version for _, code, version in live.outcomes if code == 200]
    assert "v2" in answered[:v2_done]
    assert "v3" in answered[v2_done:]
    assert any(code == 500 for _, code, _ in live.outcomes[v2_done:])


def test_two_replicas_one_actor_and_failover_mid_bake(
    cluster: Cluster,
    namespace: str,
    cluster_operator: OperatorRelease,
    operator_image: str,
    prom: str,
) -> None:
    """The chart runs two replicas; only the Lease holder reconciles. Its pod killed at once
    mid-bake, the other takes the Lease over and finishes the rollout from the status."""
    host = f"{namespace}.example"
    with LiveTraffic(cluster.gateway_url, host=host, rate=20).running():
        apply(cluster, namespace, baked(operator_image, "v2", prom, step="15s"))
        wait_phase(cluster, namespace, "Baking", candidateVersion="v2", currentStep=0)
        replays = get(cluster, namespace, "rt")["items"]
        leader = cluster_operator.leader()
        assert leader is not None
        counts = cluster_operator.reconciles()
        assert len(counts) == 2, counts
        assert counts[leader] > 0
        assert [n for pod, n in counts.items() if pod != leader] == [0]  # the follower: none

        cluster_operator.kill(leader)
        killed_at = time.monotonic()

        def new_holder() -> str | None:
            holder = cluster_operator.leader()
            return holder if holder not in (None, leader) else None

        successor = poll_until(
            new_holder, timeout=60, interval=0.2, message="another replica holds the Lease"
        )
        failover = time.monotonic() - killed_at
        print(f"failover: {successor} leads {failover:.1f}s after {leader} was killed")
        assert failover < 30  # the lease duration (15 s) plus the follower's retry period
        status = wait_phase(cluster, namespace, "Production", stableVersion="v2", timeout=180)
    # The new leader picked up where the old one stood: no second replay, one promotion.
    assert [rt["metadata"]["name"] for rt in get(cluster, namespace, "rt")["items"]] == [
        rt["metadata"]["name"] for rt in replays
    ]
    assert [h["outcome"] for h in status["history"]].count("Promoted") == 2  # v1 and v2
    assert status["traffic"] == {"stableWeight": 100, "candidateWeight": 0}
    assert cluster_operator.reconciles()[successor] > 0
    poll_until(
        lambda: (
            not get(cluster, namespace, "pods", "-l", "modelrollout.io/track=candidate")["items"]
        ),
        timeout=90,
        message="the candidate's pods are gone after promotion",
    )
