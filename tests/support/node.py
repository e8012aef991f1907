"""Helpers of the tests on the real node: the operator's Helm release, model pods, traffic.

Traffic goes only to pods, Services and the Gateway of the local node.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from factories import model_deployment
from support.cluster import REPO_ROOT, Cluster
from support.kube import get
from support.wait import poll_until

CHART = REPO_ROOT / "charts" / "modelrollout"
PREDICT = "/v1/models/model:predict"
BODY = json.dumps({"instances": [[0.5, -0.2, 1.1, 0.3]]}).encode()
_RECONCILES = re.compile(r"^modelrollout_reconcile_total\{[^}]*\} (\S+)$", re.M)
_COUNTER = re.compile(r'^modelserver_requests_total\{[^}]*code="(\d+)"[^}]*\} (\S+)$', re.M)

SERVE = ["serve-model", "--host", "0.0.0.0", "--port", "8080"]
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


@dataclass
class OperatorRelease:
    """The operator installed with the chart (cluster scope), as users install it."""

    cluster: Cluster
    namespace: str
    image: str
    name: str = "modelrollout"

    def helm(self, *args: str) -> str:
        result = self.cluster.run(str(self.cluster.bin_dir / "helm"), *args, timeout=180)
        return result.stdout

    def install(self) -> None:
        repo, tag = self.image.rsplit(":", 1)
        self.helm(
            "upgrade", "--install", self.name, str(CHART),
            "--namespace", self.namespace, "--create-namespace",
            "--set", "crds.install=false",  # the session applied crds/ already
            "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
            "--set", "resyncSeconds=5", "--set", "logLevel=debug",
            "--wait", "--timeout", "120s",
        )  # fmt: skip

    def uninstall(self) -> None:
        self.helm("uninstall", self.name, "--namespace", self.namespace, "--wait")
        self.cluster.kubectl("delete", "namespace", self.namespace, "--wait=false")

    def pods(self) -> list[dict[str, Any]]:
        found = get(
            self.cluster, self.namespace, "pods", "-l", "app.kubernetes.io/name=modelrollout"
        )
        return list((found or {}).get("items", []))

    def leader(self) -> str | None:
        """The pod holding the leader-election Lease."""
        lease = get(self.cluster, self.namespace, "lease", "modelrollout") or {}
        holder = (lease.get("spec") or {}).get("holderIdentity")
        return str(holder) if holder else None

    def reconciles(self) -> dict[str, int]:
        """Reconciles run so far by each live operator pod, from its own /metrics."""
        counts = {}
        for pod in self.pods():
            if pod["metadata"].get("deletionTimestamp") or not pod["status"].get("podIP"):
                continue
            text = http_get(f"http://{pod['status']['podIP']}:8081/metrics")
            counts[pod["metadata"]["name"]] = sum(int(float(v)) for v in _RECONCILES.findall(text))
        return counts

    def kill(self, name: str) -> None:
        """Delete an operator pod at once (no grace period)."""
        self.cluster.kubectl(
            "delete", "pod", name, "-n", self.namespace, "--grace-period=0", "--force"
        )

    def logs(self) -> str:
        return self.cluster.kubectl(
            "logs", "-n", self.namespace, "-l", "app.kubernetes.io/name=modelrollout",
            "--tail=200", check=False,
        ).stdout  # fmt: skip


def node_model_deployment(
    image: str,
    version: str,
    *extra: str,
    replicas: int = 1,
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The tests' ModelDeployment (named md) with real model pods, a short replay and a bake."""
    md = model_deployment(version)
    spec = md["spec"]
    spec["workload"] = {"replicas": replicas, "template": model_template(image, version, *extra)}
    replay = spec["stages"]["nonProduction"]["replay"]
    replay["rate"] = {"rate": 100, "count": 100}
    replay["successCriteria"] = {"maxErrorRate": 0.01}
    spec["stages"]["baking"] = {"steps": steps or [{"weight": 50, "duration": "2s"}]}
    return md


def gated(image: str, version: str) -> dict[str, Any]:
    """The tests' ModelDeployment behind the Gateway API router, baked in two 1 s steps
    (20 %, 60 %) and held at a manual production gate."""
    steps = [{"weight": 20, "duration": "1s"}, {"weight": 60, "duration": "1s"}]
    md = node_model_deployment(image, version, steps=steps)
    md["spec"]["traffic"] = {"router": "GatewayAPI", "gatewayAPI": {"httpRoute": "md-route"}}
    md["spec"]["gates"] = {"beforeProduction": "Manual"}
    return md


def route(hostname: str, service_prefix: str = "md") -> dict[str, Any]:
    """An HTTPRoute on the node's Gateway for `hostname`, all weight on the stable track."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "md-route"},
        "spec": {
            "parentRefs": [{"name": "modelrollout", "namespace": "modelrollout-gateway"}],
            "hostnames": [hostname],
            "rules": [
                {
                    "backendRefs": [
                        {"name": f"{service_prefix}-stable", "port": 80, "weight": 100},
                        {"name": f"{service_prefix}-candidate", "port": 80, "weight": 0},
                    ]
                }
            ],
        },
    }


def md_status(cluster: Cluster, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = (get(cluster, namespace, "md", "md") or {}).get("status") or {}
    return found


def wait_phase(
    cluster: Cluster, namespace: str, phase: str, *, timeout: float = 120, **expect: Any
) -> dict[str, Any]:
    """The ModelDeployment's status once it is in `phase` with the `expect`ed fields."""

    def check() -> dict[str, Any] | None:
        status = md_status(cluster, namespace)
        if status.get("phase") != phase:
            return None
        return status if all(status.get(k) == v for k, v in expect.items()) else None

    found: dict[str, Any] = poll_until(
        check, timeout=timeout, interval=0.5, message=f"md in {phase} with {expect}"
    )
    return found


def model_template(image: str, version: str, *extra: str) -> dict[str, Any]:
    """A model-server pod template admitted under Pod Security "restricted"."""
    return {
        "metadata": {"annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}},
        "spec": {
            "securityContext": RESTRICTED_POD,
            "containers": [
                {
                    "name": "model",
                    "image": image,
                    "args": [*SERVE, "--model-version", version, *extra],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {
                        "httpGet": {"path": "/healthz", "port": 8080},
                        "periodSeconds": 1,
                    },
                    "securityContext": RESTRICTED_CONTAINER,
                    "resources": {
                        "requests": {"cpu": "20m", "memory": "64Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                }
            ],
        },
    }


def ready_pods(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    found = get(cluster, namespace, "pods", "-l", selector) or {"items": []}
    return [
        pod
        for pod in found["items"]
        if not pod["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod.get("status", {}).get("conditions", [])
        )
    ]


def served_by_pod(cluster: Cluster, namespace: str, selector: str) -> dict[str, int]:
    """Prediction requests each Ready pod has served, read from its own /metrics."""
    counts: dict[str, int] = {}
    for pod in ready_pods(cluster, namespace, selector):
        ip = pod["status"]["podIP"]
        text = http_get(f"http://{ip}:8080/metrics")
        counts[pod["metadata"]["name"]] = sum(int(float(v)) for _, v in _COUNTER.findall(text))
    return counts


def http_get(url: str, timeout: float = 5.0) -> str:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def predict_once(base_url: str, path: str = PREDICT, **request: Any) -> tuple[int, str]:
    """One prediction on a new connection: (HTTP status, the model version that answered);
    the keyword arguments are :func:`answer_once`'s."""
    status, answer = answer_once(base_url, path, **request)
    return status, str(answer.get("modelVersion", ""))


def answer_once(
    base_url: str,
    path: str = PREDICT,
    *,
    host: str | None = None,
    timeout: float = 5.0,
    body: bytes = BODY,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One prediction on a new connection: (HTTP status, the JSON answer, {} for none).

    `host` sets the Host header (the HTTPRoutes of the tests match on a hostname of their
    own, so that tests sharing the Gateway never see each other's routes)."""
    parts = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    sent = {"Content-Type": "application/json", **(headers or {})}
    if host:
        sent["Host"] = host
    try:
        conn.request("POST", path, body=body, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        answer: dict[str, Any] = json.loads(payload) if response.status == 200 else {}
        return response.status, answer
    finally:
        conn.close()


def split(base_url: str, n: int, *, host: str | None = None) -> Counter[str]:
    """Send `n` predictions, each on its own connection; count the answering versions."""
    seen: Counter[str] = Counter()
    for _ in range(n):
        status, version = predict_once(base_url, host=host)
        seen[version if status == 200 else f"HTTP {status}"] += 1
    return seen


@dataclass
class LiveTraffic:
    """A steady stream of live requests from a background thread, with what answered.

    `body(i)` makes the i-th request's body (the same features every time by default);
    each request carries the inference id `live-<i>`, and `answers` keeps, per id, the
    version that answered and its first prediction."""

    base_url: str
    host: str | None = None
    rate: float = 20.0
    body: Callable[[int], bytes] | None = None
    outcomes: list[tuple[float, int, str]] = field(default_factory=list)
    answers: dict[str, tuple[str, Any]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        i = 0
        while not self._stop.is_set():
            inference_id = f"live-{i}"
            body = self.body(i) if self.body is not None else BODY
            try:
                status, answer = answer_once(
                    self.base_url,
                    host=self.host,
                    timeout=2.0,
                    body=body,
                    headers={"X-Inference-Id": inference_id},
                )
            except OSError:
                status, answer = 0, {}
            version = str(answer.get("modelVersion", ""))
            self.outcomes.append((time.time(), status, version))
            if status == 200:
                self.answers[inference_id] = (version, (answer.get("predictions") or [None])[0])
            i += 1
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    @contextlib.contextmanager
    def running(self) -> Iterator[LiveTraffic]:
        thread = threading.Thread(target=self.run, name="live-traffic", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=10)


ERRORS = (
    '(sum(rate(modelserver_requests_total{namespace="{{ namespace }}",track="candidate",'
    'code=~"5.."}[10s])) or vector(0)) / clamp_min(sum(rate(modelserver_requests_total{'
    'namespace="{{ namespace }}",track="candidate"}[10s])) or vector(0), 0.001)'
)
"""The candidate's error rate over the last 10 s, in PromQL."""


def baked(
    image: str, version: str, prometheus_url: str, *extra: str, step: str = "6s"
) -> dict[str, Any]:
    """A two-step bake behind the test's HTTPRoute, with the candidate's error rate as SLO."""
    md = node_model_deployment(
        image, version, *extra,
        steps=[{"weight": 30, "duration": step}, {"weight": 60, "duration": step}],
    )  # fmt: skip
    md["spec"]["traffic"] = {"router": "GatewayAPI", "gatewayAPI": {"httpRoute": "md-route"}}
    md["spec"]["stages"]["baking"]["analysis"] = {
        "provider": {"address": prometheus_url},
        "interval": "2s",
        "slos": [
            {
                "name": "error-rate",
                "query": ERRORS,
                "thresholdRange": {"max": 0.05},
                "failureLimit": 1,
            }
        ],
    }
    return md


def live_answers(live: LiveTraffic, *, since: int) -> list[str]:
    """The versions that answered the live requests sent after the first `since`."""
    return [version for _, code, version in live.outcomes[since:] if code == 200]


def cli(cluster: Cluster, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``modelrollout ARGS md -n NAMESPACE`` against the cluster."""
    return subprocess.run(
        [sys.executable, "-m", "modelrollout", *args, "md", "-n", namespace,
         "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
