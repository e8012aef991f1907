"""The shadow step on the node: live requests that stable has answered are sent again by
its capture sidecar to the candidate, and to stable's own model for a noise floor; the
answers are paired and compared, and the candidate's are never served.

* v1.1 (the same weights as v1) agrees with stable as well as stable agrees with itself:
  the shadow passes and the bake begins;
* v3 (a retraining gone wrong: it answers almost every request differently) is caught in
  shadow and rolled back before any user sees one of its answers.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from factories import events_configmap
from support.cluster import Cluster
from support.kube import apply, condition, events
from support.node import (
    LiveTraffic,
    OperatorRelease,
    node_model_deployment,
    route,
    wait_phase,
)


def shadowed(image: str, version: str) -> dict[str, Any]:
    md = node_model_deployment(image, version, steps=[{"weight": 50, "duration": "2s"}])
    md["spec"]["traffic"] = {"router": "GatewayAPI", "gatewayAPI": {"httpRoute": "md-route"}}
    md["spec"]["monitoring"] = {"capture": {"enabled": True}}
    md["spec"]["stages"]["baking"]["shadow"] = {
        "duration": "20s",
        "sample": 1.0,
        "minPairs": 100,
        "maxExtraDisagreement": 0.02,
        "confidence": 0.99,
    }
    return md


def features() -> Callable[[int], bytes]:
    rng = random.Random(11)

    def body(_: int) -> bytes:
        return json.dumps({"instances": [[rng.gauss(0, 1) for _ in range(4)]]}).encode()

    return body


def test_the_shadow_step_reports_agreement_and_catches_a_candidate_that_answers_differently(
    cluster: Cluster,
    namespace: str,
    cluster_operator: OperatorRelease,
    operator_image: str,
) -> None:
    host = f"{namespace}.example"
    apply(cluster, namespace, events_configmap(), route(host), shadowed(operator_image, "v1"))
    wait_phase(cluster, namespace, "Production", stableVersion="v1")
    live = LiveTraffic(cluster.gateway_url, host=host, rate=20, body=features())
    with live.running():
        apply(cluster, namespace, shadowed(operator_image, "v1.1"))
        status = wait_phase(cluster, namespace, "Production", stableVersion="v1.1", timeout=240)
        shadow = status["shadow"]
        print(f"\nshadow of v1.1: {shadow['message']}")  # shown with -rP
        assert shadow["outcome"] == "Pass", shadow
        assert shadow["pairs"] >= 100
        assert shadow["agreement"] == 1.0
        assert shadow["floorAgreement"] == 1.0
        assert shadow["candidateP99Ms"] > 0
        assert events(cluster, namespace, "ShadowPassed")

        served_before = len(live.outcomes)
        apply(cluster, namespace, shadowed(operator_image, "v3"))
        status = wait_phase(cluster, namespace, "RolledBack", timeout=240)
        served = live.outcomes[served_before:]
    shadow = status["shadow"]
    print(f"shadow of v3: {shadow['message']}")
    assert shadow["outcome"] == "Fail", shadow
    assert shadow["agreement"] < 0.5
    assert shadow["floorAgreement"] == 1.0
    assert shadow["interval"][0] > 0.02  # surely beyond the tolerance
    rolled = condition({"status": status}, "RolledBack")
    assert rolled is not None
    assert rolled["reason"] == "ShadowFailed", rolled
    # v3 was only ever shadowed: no live request was answered by it
    assert served
    assert all(version != "v3" for _, _, version in served)
    assert len(events(cluster, namespace, "ShadowStarted")) >= 2
