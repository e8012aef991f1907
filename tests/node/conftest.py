"""Fixtures of the tests that run everything on the real node.

* `cluster_operator` (package): the operator installed with the Helm chart, running as a pod
  under the chart's ServiceAccount and RBAC, watching every namespace. It is uninstalled when
  the package's tests are done, so the host-process operators of other tests never meet it.
* `cluster_prometheus` (package): a real Prometheus on the host that finds the pods through
  the API server (kubernetes_sd_configs, a ServiceAccount token and the cluster CA).
* `namespace` (function): as everywhere, but with Pod Security "restricted" enforced, so
  every model, replay and traffic pod of these tests is admitted under it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from factories import events_configmap
from support.cluster import Cluster, load_hack
from support.kube import apply
from support.node import OperatorRelease, baked, route, wait_phase
from support.wait import poll_until

RELEASE_NAMESPACE = "modelrollout-e2e"


@pytest.fixture(scope="package")
def cluster_operator(cluster: Cluster, operator_image: str) -> Iterator[OperatorRelease]:
    release = OperatorRelease(cluster, RELEASE_NAMESPACE, operator_image)
    release.install()
    try:
        yield release
    finally:
        release.uninstall()


@pytest.fixture(scope="package")
def cluster_prometheus(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    prom = load_hack("prometheus").ClusterPrometheus(
        tmp_path_factory.mktemp("cluster-prometheus"), cluster.kubeconfig, cluster.bin_dir
    )
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


@pytest.fixture
def namespace(namespace: str, kube_api: client.ApiClient) -> str:
    """The test's namespace, with Pod Security "restricted" enforced."""
    core = client.CoreV1Api(kube_api)
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core.patch_namespace(namespace, {"metadata": {"labels": labels}})
    poll_until(
        lambda: (
            core.read_namespace(namespace).metadata.labels.get("pod-security.kubernetes.io/enforce")
            == "restricted"
        ),
        timeout=10,
        message="the restricted label on the namespace",
    )
    return namespace


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    """When a node test fails, its report carries what the cluster looked like: the
    ModelDeployments, the namespace's events and pods, and the operator's log."""
    report: pytest.TestReport = yield
    if report.failed and call.when in ("setup", "call"):
        funcargs = getattr(item, "funcargs", {})
        cluster, namespace = funcargs.get("cluster"), funcargs.get("namespace")
        release = funcargs.get("cluster_operator")
        if isinstance(cluster, Cluster) and isinstance(namespace, str):
            for what in (("md", "-o", "yaml"), ("events", "--sort-by=.lastTimestamp"), ("pods",)):
                shown = cluster.kubectl("get", "-n", namespace, *what, check=False)
                report.sections.append((f"kubectl get {what[0]}", shown.stdout + shown.stderr))
        if isinstance(release, OperatorRelease):
            report.sections.append(("operator log", release.logs()))
    return report


@pytest.fixture
def prom(
    cluster: Cluster,
    namespace: str,
    cluster_operator: OperatorRelease,
    cluster_prometheus: Any,
    operator_image: str,
) -> str:
    """v1 in production behind the test's HTTPRoute; the URL of the Prometheus of its SLOs."""
    url: str = cluster_prometheus.url
    host = f"{namespace}.example"
    apply(cluster, namespace, events_configmap(), route(host), baked(operator_image, "v1", url))
    wait_phase(cluster, namespace, "Production", stableVersion="v1")
    return url
