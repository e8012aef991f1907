"""Monitoring inside the rollout, on real traffic: an anomaly band learned from Prometheus.

v1 serves live traffic in about 6 ms. v2 answers correctly but takes 20 ms more. The fixed
SLO (mean latency under 100 ms) lets that through, as fixed thresholds do; the Anomaly
trigger learns stable's normal band from the last minutes of its own history in Prometheus
and rolls v2 back.
"""

from __future__ import annotations

from typing import Any

from factories import events_configmap
from support.cluster import Cluster
from support.kube import apply, condition
from support.node import LiveTraffic, OperatorRelease, node_model_deployment, route, wait_phase

MEAN_MS = (
    'sum(rate(modelserver_request_duration_seconds_sum{{namespace="{{{{ namespace }}}}",'
    'track="{track}"}}[10s])) / sum(rate(modelserver_request_duration_seconds_count{{'
    'namespace="{{{{ namespace }}}}",track="{track}"}}[10s])) * 1000'
)


def monitored(image: str, version: str, prometheus_url: str, *extra: str) -> dict[str, Any]:
    md = node_model_deployment(image, version, *extra, steps=[{"weight": 30, "duration": "2m"}])
    md["spec"]["traffic"] = {"router": "GatewayAPI", "gatewayAPI": {"httpRoute": "md-route"}}
    md["spec"]["stages"]["baking"]["analysis"] = {
        "provider": {"address": prometheus_url},
        "interval": "2s",
        "slos": [
            {
                "name": "mean-latency",
                "query": MEAN_MS.format(track="candidate"),
                "thresholdRange": {"max": 100},
                "failureLimit": 1,
            }
        ],
    }
    md["spec"]["rollback"] = {
        "triggers": [
            {
                "name": "latency-band",
                "type": "Anomaly",
                "anomaly": {
                    "query": MEAN_MS.format(track="candidate"),
                    "historyQuery": MEAN_MS.format(track="stable"),
                    "history": "5m",
                    "step": "2s",
                    "seasonality": "None",
                    "minSamples": 10,
                    "minWidth": 0.2,
                },
            }
        ]
    }
    return md


def test_an_anomaly_band_catches_a_latency_shift_a_fixed_threshold_misses(
    cluster: Cluster,
    namespace: str,
    cluster_operator: OperatorRelease,
    cluster_prometheus: Any,
    operator_image: str,
) -> None:
    url = cluster_prometheus.url
    host = f"{namespace}.example"
    v1 = monitored(operator_image, "v1", url, "--latency-ms", "5")
    apply(cluster, namespace, events_configmap(), route(host), v1)
    wait_phase(cluster, namespace, "Production", stableVersion="v1")
    live = LiveTraffic(cluster.gateway_url, host=host, rate=25)
    with live.running():
        apply(cluster, namespace, monitored(operator_image, "v2", url, "--latency-ms", "25"))
        status = wait_phase(cluster, namespace, "RolledBack", timeout=240)
    rolled = condition({"status": status}, "RolledBack")
    assert rolled is not None
    assert rolled["reason"] == "TriggerAnomaly", rolled
    tallies = {t["name"]: t for t in status["analysis"]}
    # the fixed threshold saw the same latency and passed it
    assert tallies["mean-latency"]["failed"] == 0
    assert tallies["mean-latency"]["successful"] >= 1
    band = tallies["latency-band"]
    assert band["failed"] >= 1
    failed = [m for m in band["measurements"] if m["phase"] == "Failed"][-1]
    print(f"anomaly band: {failed['message']}")  # shown with -rP
    assert failed["value"] > 20  # the candidate's mean latency, in ms
    assert "band [" in failed["message"]  # with the band it was judged against
    assert status["traffic"] == {"stableWeight": 100, "candidateWeight": 0}
    assert live.outcomes  # live traffic flowed all along
