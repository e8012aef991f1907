"""Real model servers on the node: Seldon MLServer 1.7.1 and the KServe 0.21.0 model server
(examples/servers, images built by hack/images.py) beside modelrollout's own.

* Every SLO preset of the three runtimes, expanded and rendered as the operator does, returns
  a number from the node's Prometheus once the pods have had traffic.
* A ReplayTest (a Job) replays the V2 dataset to MLServer and the V1 dataset to KServe, and
  reads the predictions out of their answers with predictionPath.
"""

from __future__ import annotations

import json
import math
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from modelrollout.core import analysis, presets
from support.cluster import REPO_ROOT, Cluster, load_hack
from support.kube import apply, get
from support.node import (
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    LiveTraffic,
    OperatorRelease,
    baked,
    model_template,
    ready_pods,
    wait_phase,
)
from support.wait import poll_until

EXAMPLES = REPO_ROOT / "examples" / "servers"
ACCURACY = 0.76
"""The example model's accuracy on the example datasets (both protocols carry the same
100 events); measured by replaying them to the servers outside the cluster."""


@dataclass(frozen=True)
class Server:
    metrics_port: int
    ready_path: str
    predict_path: str
    events: str
    prediction_path: str
    good: dict[str, Any]
    bad: dict[str, Any]


V1_GOOD = {"instances": [[0.1, 1.2, 0.3, 0.5]]}
V1_BAD = {"instances": [[0.1, 1.2, 0.3]]}  # three features for a four-feature model


def _v2(data: list[float]) -> dict[str, Any]:
    return {"inputs": [{"name": "features", "shape": [1, len(data)], "datatype": "FP64",
                        "data": data}]}  # fmt: skip


SERVERS = {
    "mlserver": Server(
        8082, "/v2/health/ready", "/v2/models/fraud-scorer/infer", "events-v2.jsonl",
        "outputs[0].data[0]", _v2([0.1, 1.2, 0.3, 0.5]), _v2([0.1, 1.2, 0.3]),
    ),
    "kserve": Server(
        8080, "/v1/models/fraud-scorer", "/v1/models/fraud-scorer:predict", "events-v1.jsonl",
        "predictions[0]", V1_GOOD, V1_BAD,
    ),
    "modelrollout": Server(
        8080, "/healthz", "/v1/models/fraud-scorer:predict", "events-v1.jsonl",
        "predictions[0]", V1_GOOD, {"instances": "not a list"},
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def server_images(cluster: Cluster, operator_image: str) -> dict[str, str]:
    """The MLServer and KServe images (built without Docker, cached) on the node."""
    images = load_hack("images")
    refs = {"modelrollout": operator_image}
    for name in ("mlserver", "kserve"):
        built = images.build_server_image(REPO_ROOT, images.default_cache_dir(), name)
        cluster.import_image(built.archive)
        refs[name] = built.ref
    return refs


def deployment(runtime: str, image: str) -> list[dict[str, Any]]:
    """The runtime's pods as the candidate track of a ModelDeployment would run them: a
    Deployment named <runtime>-candidate and its Service."""
    name = f"{runtime}-candidate"
    server = SERVERS[runtime]
    if runtime == "modelrollout":
        template = model_template(image, "v1", "--model-name", "fraud-scorer")
    else:
        template = {
            "metadata": {},
            "spec": {
                "securityContext": RESTRICTED_POD,
                "volumes": [{"name": "tmp", "emptyDir": {}}],
                "containers": [
                    {
                        "name": "model",
                        "image": image,
                        "env": [{"name": "MODEL_VERSION", "value": "v1"}],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {
                            "httpGet": {"path": server.ready_path, "port": 8080},
                            "periodSeconds": 1,
                        },
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        "securityContext": RESTRICTED_CONTAINER,
                        "resources": {
                            "requests": {"cpu": "20m", "memory": "128Mi"},
                            "limits": {"memory": "768Mi"},
                        },
                    }
                ],
            },
        }
    template["metadata"]["labels"] = {"app": name}
    template["metadata"]["annotations"] = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(server.metrics_port),
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": template},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]  # fmt: skip


def deploy(cluster: Cluster, namespace: str, images: dict[str, str]) -> dict[str, str]:
    """The runtimes' pods (``images`` by runtime), Ready; their pod IPs by runtime."""
    for runtime, image in images.items():
        apply(cluster, namespace, *deployment(runtime, image))
    ips = {}
    for runtime in images:
        name = f"{runtime}-candidate"
        cluster.kubectl("rollout", "status", f"deployment/{name}", "-n", namespace,
                        "--timeout=180s")  # fmt: skip
        (pod,) = poll_until(
            lambda name=name: ready_pods(cluster, namespace, f"app={name}") or None,
            timeout=60,
            message=f"{name} Ready",
        )
        ips[runtime] = pod["status"]["podIP"]
    return ips


@pytest.fixture
def servers(cluster: Cluster, namespace: str, server_images: dict[str, str]) -> dict[str, str]:
    """The three runtimes' pods, Ready; their pod IPs by runtime."""
    return deploy(cluster, namespace, server_images)


def post(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


@dataclass
class Traffic:
    """Prediction requests to every server, every 20th one malformed, until stopped."""

    ips: dict[str, str]
    statuses: dict[str, list[int]]
    stop: threading.Event

    def run(self) -> None:
        i = 0
        while not self.stop.wait(0.05):
            for runtime, ip in self.ips.items():
                server = SERVERS[runtime]
                body = server.bad if i % 20 == 19 else server.good
                self.statuses[runtime].append(post(f"http://{ip}:8080{server.predict_path}", body))
            i += 1


@pytest.fixture
def traffic(servers: dict[str, str]) -> Iterator[Traffic]:
    live = Traffic(servers, {runtime: [] for runtime in servers}, threading.Event())
    thread = threading.Thread(target=live.run, name="server-traffic", daemon=True)
    thread.start()
    try:
        yield live
    finally:
        live.stop.set()
        thread.join(timeout=10)


def test_every_preset_of_each_runtime_returns_a_number(
    namespace: str, cluster_prometheus: Any, traffic: Traffic
) -> None:
    queries = {
        (runtime, preset): analysis.render_query(
            presets.expand(preset, runtime, "fraud-scorer"),
            {
                "namespace": namespace,
                "interval": "30s",
                "candidate_service": f"{runtime}-candidate",
            },
            field=f"{runtime}/{preset}",
        )
        for runtime in SERVERS
        for preset in presets.PRESETS
    }

    def values() -> dict[tuple[str, str], float] | None:
        found = {}
        for key, promql in queries.items():
            vector = cluster_prometheus.query(promql)
            if len(vector) != 1 or not math.isfinite(float(vector[0]["value"][1])):
                return None
            found[key] = float(vector[0]["value"][1])
        # the malformed requests have been scraped too
        if any(found[(r, "error-rate")] == 0 for r in ("mlserver", "kserve")):
            return None
        return found

    found = poll_until(values, timeout=120, interval=2, message="every preset has a value")
    for runtime, statuses in traffic.statuses.items():
        assert statuses.count(200) > 0, runtime
    for runtime in SERVERS:
        p99, errors, rps = (found[(runtime, p)] for p in presets.PRESETS)
        assert 0 < p99 < 5, (runtime, p99)  # seconds
        # requests go out one at a time to the three servers, so their rate depends on how
        # busy the machine is: any positive rate is the preset reading the counter
        assert rps > 0, (runtime, rps)
        assert 0 <= errors < 0.5, (runtime, errors)
    # one request in 20 failed inside the model: MLServer counts it as a failed
    # inference, KServe never reaches postprocess; modelrollout answers 400 (not an error)
    assert 0.01 < found[("mlserver", "error-rate")] < 0.2
    assert 0.01 < found[("kserve", "error-rate")] < 0.2
    assert found[("modelrollout", "error-rate")] == 0
    assert {c for c in traffic.statuses["mlserver"] if c != 200} == {500}
    assert {c for c in traffic.statuses["kserve"] if c != 200} == {500}


@pytest.mark.parametrize("runtime", ["mlserver", "kserve"])
def test_a_replay_job_reads_the_predictions_of_the_real_server(
    cluster: Cluster,
    namespace: str,
    cluster_operator: OperatorRelease,
    server_images: dict[str, str],
    runtime: str,
) -> None:
    deploy(cluster, namespace, {runtime: server_images[runtime]})  # only the one replayed to
    server = SERVERS[runtime]
    events = (EXAMPLES / server.events).read_text()
    apply(cluster, namespace, {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "server-events"},
        "data": {"events.jsonl": events},
    })  # fmt: skip
    apply(cluster, namespace, {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ReplayTest",
        "metadata": {"name": f"{runtime}-replay"},
        "spec": {
            "events": {"configMapKeyRef": {"name": "server-events", "key": "events.jsonl"}},
            "target": {"service": {"name": f"{runtime}-candidate", "port": 80,
                                   "path": server.predict_path}},
            "rate": {"rate": 50, "count": 100},
            "parallelism": 1,
            "predictionPath": server.prediction_path,
            "labelField": "label",
            "successCriteria": {"maxErrorRate": 0, "minAccuracy": 0.7},
        },
    })  # fmt: skip

    def finished() -> dict[str, Any] | None:
        rt = get(cluster, namespace, "rt", f"{runtime}-replay")
        phase = (rt or {}).get("status", {}).get("phase")
        return rt if phase in ("Succeeded", "Failed") else None

    rt = poll_until(finished, timeout=180, interval=0.5, message="the replay Job finished")
    status = rt["status"]
    assert status["phase"] == "Succeeded", status
    assert status["verdict"] == "Passed", status.get("reasons")
    assert status["executor"] == "job"
    result = status["result"]
    assert result["counts"]["sent"] == 100
    assert result["counts"]["ok"] == 100
    assert result["errorRate"] == 0
    assert result["errors"] == {}
    latency = result["latencyMs"]
    assert latency["count"] == 100
    assert 0 < latency["p50"] <= latency["p99"]
    quality = result["quality"]
    assert quality["labeled"] == 100
    assert quality["accuracy"] == pytest.approx(ACCURACY)
    assert quality["auc"] > 0.7


def test_a_bake_judged_by_presets_shows_the_queries_they_ran(
    cluster: Cluster,
    namespace: str,
    cluster_operator: OperatorRelease,
    operator_image: str,
    prom: str,
) -> None:
    md = baked(operator_image, "v2", prom, step="10s")
    analysis_spec = md["spec"]["stages"]["baking"]["analysis"]
    analysis_spec["interval"] = "5s"  # rate() over 5 s of 1 s scrapes
    # the pods serve the ModelDeployment's model, named "model"
    limits = {"runtime": "modelrollout", "model": "model", "inconclusiveLimit": 20}
    analysis_spec["slos"] = [
        {"name": "p99", "preset": "latency-p99", "thresholdRange": {"max": 2.0}, **limits},
        {"name": "errors", "preset": "error-rate", "thresholdRange": {"max": 0.05}, **limits},
        {
            "name": "rps",
            "preset": "throughput",
            "thresholdRange": {"min": 0.5},
            "failureLimit": 1,
            **limits,
        },
    ]
    live = LiveTraffic(cluster.gateway_url, host=f"{namespace}.example", rate=25)
    with live.running():
        apply(cluster, namespace, md)
        status = wait_phase(cluster, namespace, "Production", stableVersion="v2", timeout=180)
    assert [h["outcome"] for h in status["history"]][:1] == ["Promoted"]
    tallies = {t["name"]: t for t in status["analysis"]}
    assert set(tallies) == {"p99", "errors", "rps"}
    for name, tally in tallies.items():
        # The first look can come before a live request reached the candidate: no data for
        # a latency or an error rate, but a throughput of 0, which failureLimit 1 tolerates.
        assert tally["failed"] <= (1 if name == "rps" else 0), tally
        assert tally["successful"] >= 1, tally
        # the query the preset ran, variables filled in
        query = tally["query"]
        assert f'namespace="{namespace}"' in query
        assert 'pod=~"md-candidate-[a-z0-9]+-[a-z0-9]+"' in query
        assert 'model="model"' in query
        assert "{{" not in query
        assert "[5s]" in query, name
    assert "modelserver_request_duration_seconds_bucket" in tallies["p99"]["query"]
    rps = [m["value"] for m in tallies["rps"]["measurements"] if m["phase"] == "Successful"]
    assert max(rps) > 1  # 30 % then 60 % of 25 requests per second reach the candidate
