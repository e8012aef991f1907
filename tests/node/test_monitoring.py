"""Monitoring inside the rollout, on real traffic, each a reason to roll a candidate back:

* an anomaly band learned from Prometheus: v1 serves live traffic in about 6 ms, v2
  answers correctly but 20 ms slower; the fixed SLO (mean latency under 100 ms) lets that
  through, the band learned from stable's own history does not;
* feature drift seen through the capture sidecars: live features two standard deviations
  away from the baseline profile's;
* accuracy lost once delayed labels arrive: v2's answers turn out wrong when their ground
  truth is served to the sidecars, joined by the inference ids of the live requests.
"""

from __future__ import annotations

import http.server
import json
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from factories import events_configmap
from modelrollout.services.monitoring.datasets import ReadOptions, profile_dataset
from support.cluster import Cluster
from support.kube import apply, condition
from support.modelservers import events_jsonl
from support.node import (
    LiveTraffic,
    OperatorRelease,
    md_status,
    node_model_deployment,
    route,
    wait_phase,
)
from support.wait import poll_until

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


def captured(
    image: str, version: str, prometheus_url: str, trigger: dict[str, Any], *extra: str
) -> dict[str, Any]:
    """A ModelDeployment with the capture sidecar, judged by one live-window trigger."""
    md = node_model_deployment(image, version, *extra, steps=[{"weight": 50, "duration": "3m"}])
    md["spec"]["traffic"] = {"router": "GatewayAPI", "gatewayAPI": {"httpRoute": "md-route"}}
    md["spec"]["stages"]["baking"]["analysis"] = {
        "provider": {"address": prometheus_url},
        "interval": "2s",
        "slos": [],
    }
    md["spec"]["monitoring"] = {
        "capture": {"enabled": True},
        "baseline": {"profileConfigMapKeyRef": {"name": "baseline", "key": "profile.json"}},
        "labels": {"url": "http://10.254.0.1:1/unused"},
    }
    md["spec"]["rollback"] = {"triggers": [trigger]}
    return md


def baseline_configmap(tmp_path: Path) -> dict[str, Any]:
    """The profile of the events the model was tested on (4 features, N(0, 1) each)."""
    events = tmp_path / "events.jsonl"
    events.write_text(events_jsonl(2000))
    profile = profile_dataset(events, ReadOptions())
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "baseline"},
        "data": {"profile.json": profile.to_json()},
    }


def features(shift: float) -> Callable[[int], bytes]:
    rng = random.Random(7)

    def body(_: int) -> bytes:
        return json.dumps({"instances": [[rng.gauss(shift, 1) for _ in range(4)]]}).encode()

    return body


def test_drift_in_live_traffic_seen_through_capture_rolls_the_candidate_back(
    cluster: Cluster,
    namespace: str,
    cluster_operator: OperatorRelease,
    cluster_prometheus: Any,
    operator_image: str,
    tmp_path: Path,
) -> None:
    url = cluster_prometheus.url
    host = f"{namespace}.example"
    trigger = {
        "name": "features",
        "type": "FeatureDrift",
        "featureDrift": {"window": {"size": "1m", "minCount": 100}},
    }
    apply(
        cluster,
        namespace,
        events_configmap(),
        baseline_configmap(tmp_path),
        route(host),
        captured(operator_image, "v1", url, trigger),
    )
    wait_phase(cluster, namespace, "Production", stableVersion="v1")
    # Live traffic whose features have moved two standard deviations from the baseline's.
    live = LiveTraffic(cluster.gateway_url, host=host, rate=20, body=features(2.0))
    with live.running():
        apply(cluster, namespace, captured(operator_image, "v2", url, trigger))
        status = wait_phase(cluster, namespace, "RolledBack", timeout=240)
    rolled = condition({"status": status}, "RolledBack")
    assert rolled is not None
    assert rolled["reason"] == "TriggerFeatureDrift", rolled
    (tally,) = status["analysis"]
    failed = [m for m in tally["measurements"] if m["phase"] == "Failed"][-1]
    print(f"feature drift: {failed['message']}")  # shown with -rP
    assert failed["value"] >= 1
    assert "instances.0." in failed["message"]
    assert any(version == "v2" for version, _ in live.answers.values())


class Labels:
    """Delayed ground truth, served over HTTP from the node's address to the sidecars."""

    def __init__(self) -> None:
        self.text = ""
        labels = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = labels.text.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("10.254.0.1", 0), Handler)
        self.url = f"http://10.254.0.1:{self.server.server_address[1]}/labels.jsonl"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_accuracy_lost_once_delayed_labels_arrive_rolls_the_candidate_back(
    cluster: Cluster,
    namespace: str,
    cluster_operator: OperatorRelease,
    cluster_prometheus: Any,
    operator_image: str,
    tmp_path: Path,
) -> None:
    url = cluster_prometheus.url
    host = f"{namespace}.example"
    labels = Labels()
    trigger = {
        "name": "accuracy",
        "type": "QualityDrop",
        "qualityDrop": {
            "metric": "Accuracy",
            "min": 0.8,
            "window": {"size": "10m", "minCount": 30},
        },
    }

    def spec(version: str) -> dict[str, Any]:
        md = captured(operator_image, version, url, trigger)
        md["spec"]["monitoring"]["labels"] = {"url": labels.url}
        return md

    try:
        apply(
            cluster, namespace, events_configmap(), baseline_configmap(tmp_path), route(host),
            spec("v1"),
        )  # fmt: skip
        wait_phase(cluster, namespace, "Production", stableVersion="v1")
        live = LiveTraffic(cluster.gateway_url, host=host, rate=20, body=features(0.0))
        with live.running():
            apply(cluster, namespace, spec("v2"))
            wait_phase(cluster, namespace, "Baking", candidateVersion="v2", timeout=120)
            poll_until(
                lambda: sum(v == "v2" for v, _ in live.answers.values()) >= 60,
                timeout=60,
                message="v2 answered 60 live requests",
            )
            # No label yet: the trigger has nothing to judge, and the bake goes on.
            assert md_status(cluster, namespace)["phase"] == "Baking"
            # Then the ground truth arrives: v2's answers were wrong.
            labels.text = "".join(
                json.dumps({"inferenceId": i, "label": int(not (p or 0) >= 0.5)}) + "\n"
                for i, (version, p) in list(live.answers.items())
                if version == "v2"
            )
            status = wait_phase(cluster, namespace, "RolledBack", timeout=120)
    finally:
        labels.close()
    rolled = condition({"status": status}, "RolledBack")
    assert rolled is not None
    assert rolled["reason"] == "TriggerQualityDrop", rolled
    (tally,) = status["analysis"]
    failed = [m for m in tally["measurements"] if m["phase"] == "Failed"][-1]
    print(f"quality: {failed['message']}")  # shown with -rP
    assert failed["value"] < 0.8
