"""Live traffic really moves: the split a bake step asks for is the split the pods serve.

Each request goes on a new connection, so kube-proxy (ReplicaRatio) or Traefik (GatewayAPI)
chooses a backend for every one of them.
"""

from __future__ import annotations

from collections import Counter

from factories import events_configmap
from support.cluster import Cluster
from support.kube import apply, get
from support.node import (
    OperatorRelease,
    node_model_deployment,
    predict_once,
    ready_pods,
    route,
    served_by_pod,
    split,
    wait_phase,
)
from support.wait import poll_until

HOLD = [{"weight": 25, "duration": "10m"}]


def _both_answer(base_url: str, host: str | None = None) -> bool:
    """True once both versions have answered: routing has caught up with the weights."""
    seen = {predict_once(base_url, host=host, timeout=2.0)[1] for _ in range(40)}
    return {"v1", "v2"} <= seen


def test_replica_ratio_split_through_the_live_service(
    cluster: Cluster, namespace: str, cluster_operator: OperatorRelease, operator_image: str
) -> None:
    apply(cluster, namespace, events_configmap())
    apply(cluster, namespace, node_model_deployment(operator_image, "v1", replicas=3))
    wait_phase(cluster, namespace, "Production", stableVersion="v1")
    apply(cluster, namespace, node_model_deployment(operator_image, "v2", replicas=3, steps=HOLD))
    status = wait_phase(cluster, namespace, "Baking", candidateVersion="v2")
    # 25% of a pool of 3 is one candidate pod beside three stable ones (the replica split
    # rounds both tracks up): an effective weight of 25%.
    assert status["traffic"] == {"stableWeight": 75, "candidateWeight": 25}

    def four_ready() -> bool:
        pods = ready_pods(cluster, namespace, "modelrollout.io/name=md")
        tracks = Counter(p["metadata"]["labels"]["modelrollout.io/track"] for p in pods)
        return tracks == Counter(stable=3, candidate=1)

    poll_until(four_ready, timeout=90, interval=0.5, message="3 stable and 1 candidate pods")
    live = get(cluster, namespace, "service", "md")
    url = f"http://{live['spec']['clusterIP']}:80"
    # kube-proxy programs the Service's new endpoints within a second or so (longer on a busy
    # machine); until then a connection may be refused (the Service range is a local route on
    # the node) or time out (a rule still points at the address of a pod that is gone).
    poll_until(
        lambda: _both_answer(url),
        timeout=60,
        interval=0.5,
        message="the live Service reaches both",
        ignore=(ConnectionRefusedError, TimeoutError),
    )

    before = served_by_pod(cluster, namespace, "modelrollout.io/name=md")
    seen = split(url, 400)
    after = served_by_pod(cluster, namespace, "modelrollout.io/name=md")
    print(f"ReplicaRatio 3+1 pods at weight 25: {dict(seen)} of 400")  # shown with -rP
    assert set(seen) == {"v1", "v2"}, seen
    assert sum(seen.values()) == 400
    share = seen["v2"] / 400
    # kube-proxy picks an endpoint at random: 1 pod of 4 gets 25% give or take ~2.2% (one
    # standard deviation at n = 400); 15%..35% is beyond 4 of them.
    assert 0.15 <= share <= 0.35, seen
    # What the client saw is what the pods counted.
    served = {pod: after[pod] - before.get(pod, 0) for pod in after}
    assert sum(served.values()) == 400
    candidate = ready_pods(cluster, namespace, "modelrollout.io/track=candidate")
    assert sum(served[p["metadata"]["name"]] for p in candidate) == seen["v2"]


def test_gateway_api_split_through_traefik(
    cluster: Cluster, namespace: str, cluster_operator: OperatorRelease, operator_image: str
) -> None:
    host = f"{namespace}.example"
    hold = [{"weight": 30, "duration": "10m"}]
    v1 = node_model_deployment(operator_image, "v1")
    v1["spec"]["traffic"] = {"router": "GatewayAPI", "gatewayAPI": {"httpRoute": "md-route"}}
    apply(cluster, namespace, events_configmap(), route(host), v1)
    wait_phase(cluster, namespace, "Production", stableVersion="v1")
    # Traefik programs a new route within a second or two.
    poll_until(
        lambda: split(cluster.gateway_url, 20, host=host) == Counter(v1=20),
        timeout=30,
        interval=0.5,
        message="v1 answers through the Gateway",
    )

    v2 = node_model_deployment(operator_image, "v2", steps=hold)
    v2["spec"]["traffic"] = v1["spec"]["traffic"]
    apply(cluster, namespace, v2)
    status = wait_phase(cluster, namespace, "Baking", candidateVersion="v2")
    assert status["traffic"] == {"stableWeight": 70, "candidateWeight": 30}
    weights = {
        ref["name"]: ref["weight"]
        for ref in get(cluster, namespace, "httproute", "md-route")["spec"]["rules"][0][
            "backendRefs"
        ]
    }
    assert weights == {"md-stable": 70, "md-candidate": 30}
    poll_until(
        lambda: _both_answer(cluster.gateway_url, host),
        timeout=30,
        message="Traefik sends traffic to both tracks",
    )

    before = served_by_pod(cluster, namespace, "modelrollout.io/name=md")
    seen = split(cluster.gateway_url, 1000, host=host)
    after = served_by_pod(cluster, namespace, "modelrollout.io/name=md")
    print(f"GatewayAPI at weight 30: {dict(seen)} of 1000")  # shown with -rP
    assert sum(seen.values()) == 1000
    # Traefik's weighted round robin is exact over whole cycles.
    assert abs(seen["v2"] - 300) <= 20, seen
    candidate = ready_pods(cluster, namespace, "modelrollout.io/track=candidate")
    served = sum(
        after[p["metadata"]["name"]] - before.get(p["metadata"]["name"], 0) for p in candidate
    )
    assert served == seen["v2"]
