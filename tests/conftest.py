"""Fixtures shared by every test.

* `cluster` (session): a real one-node cluster (control plane, kubelet, containerd, CNI,
  kube-proxy, CoreDNS, Traefik) with the Gateway API CRDs and crds/*.yaml installed; or the
  cluster whose kubeconfig is in MODELROLLOUT_TEST_KUBECONFIG.
* `kube_api` (session): a kubernetes.client.ApiClient for that cluster (admin).
* `operator_image` (session): the project's image, built without Docker, on the node.
* `namespace` (function): a fresh namespace, deleted afterwards.
* `prometheus` (function): starts real Prometheus servers, stopped afterwards.

Tests using `cluster` or `prometheus` are marked `cluster` / `prometheus` automatically.
Missing binaries fail these fixtures: run `make tools`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from support.cluster import (
    BIN_DIR,
    CONTROL_PLANE_BINARIES,
    EXTERNAL_KUBECONFIG_ENV,
    REPO_ROOT,
    Cluster,
    load_hack,
    missing_tools,
    running_cluster,
)
from support.prometheus import PrometheusFactory
from support.wait import poll_until

CLUSTER_FIXTURES = {"cluster", "kube_api", "namespace"}
IMAGE_CACHE = Path(os.environ.get("MODELROLLOUT_CACHE", Path.home() / ".cache" / "modelrollout"))
START_SECONDS = pytest.StashKey[float]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & CLUSTER_FIXTURES and not item.get_closest_marker("cluster"):
            item.add_marker(pytest.mark.cluster)
        if "prometheus" in fixtures and not item.get_closest_marker("prometheus"):
            item.add_marker(pytest.mark.prometheus)


@pytest.fixture(scope="session")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Cluster]:
    """The real control plane for this test session, with the CRDs installed."""
    needed = ["kubectl"] if os.environ.get(EXTERNAL_KUBECONFIG_ENV) else CONTROL_PLANE_BINARIES
    missing = missing_tools(list(needed))
    if missing:
        pytest.fail(
            f"control plane binaries missing from {BIN_DIR}: {', '.join(missing)} "
            "(run: make tools)",
            pytrace=False,
        )
    with running_cluster(tmp_path_factory.mktemp("controlplane")) as running:
        if not running.external:
            pytestconfig.stash[START_SECONDS] = running.start_seconds
        running.install_crds()
        yield running


@pytest.fixture(scope="session")
def operator_image(cluster: Cluster) -> str:
    """The project's image (operator, replay and model server), built without Docker and
    cached by a hash of its inputs, present in the node's containerd."""
    built = load_hack("images").build_image(REPO_ROOT, IMAGE_CACHE)
    cluster.import_image(built.archive)
    ref: str = built.ref
    return ref


@pytest.fixture(scope="session")
def kube_api(cluster: Cluster) -> Iterator[client.ApiClient]:
    """An admin `kubernetes.client.ApiClient` for the test cluster."""
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig)
    )
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(kube_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new namespace for this test (its `default` ServiceAccount exists); deleted after."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{secrets.token_hex(3)}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def default_service_account() -> bool:
        try:
            core.read_namespaced_service_account("default", name)
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True

    poll_until(
        default_service_account,
        timeout=30,
        message=f"the default ServiceAccount in namespace {name}",
    )
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusFactory]:
    """`prometheus(targets, *, scrape_interval="1s", rule_files=None) -> PrometheusHandle`."""
    missing = missing_tools(["prometheus"])
    if missing:
        pytest.fail(f"{BIN_DIR / 'prometheus'} is missing (run: make tools)", pytrace=False)
    factory = PrometheusFactory(tmp_path_factory.mktemp("prometheus"))
    try:
        yield factory
    finally:
        factory.close()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    seconds = config.stash.get(START_SECONDS, None)
    if seconds is not None:
        terminalreporter.write_line(f"control plane started in {seconds:.1f}s")
