"""`helm install` and `helm uninstall` against the real control plane.

CRDs are cluster-wide and the session's cluster already has modelrollout.io's, applied with
kubectl (so owned by no Helm release; Helm refuses to adopt them). The tests that exercise the
chart's CRD handling therefore install a copy of the chart whose CRDs are the real ones moved
to a group of their own, unique to the test: same schemas, same template, no shared state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart.chart_support import (
    CHART_CRDS_DIR,
    CHART_DIR,
    CONTRACT_TAIL,
    EXPECTED_CRD_NAMES,
    EXPECTED_RULES,
    Helm,
    HelmError,
    assert_no_wildcards,
    copy_chart,
    rules_table,
)
from support.cluster import Cluster
from support.wait import PollTimeoutError, poll_until

pytestmark = pytest.mark.cluster

TIMEOUT = 60.0
CRD_DELETE_TIMEOUT = 180.0


@dataclass(frozen=True)
class RenamedChart:
    path: Path
    crd_names: list[str]


def get(cluster: Cluster, kind: str, name: str, namespace: str | None = None) -> Any:
    """The object as JSON, or None when it does not exist."""
    args = ["get", kind, name, "--ignore-not-found", "-o", "json"]
    if namespace:
        args += ["--namespace", namespace]
    output = cluster.kubectl(*args).stdout
    return json.loads(output) if output.strip() else None


def wait_gone(
    cluster: Cluster, kind: str, name: str, namespace: str | None = None, timeout: float = TIMEOUT
) -> None:
    poll_until(
        lambda: get(cluster, kind, name, namespace) is None,
        timeout=timeout,
        message=f"{kind} {name} is deleted",
    )


def wait_crd_gone(cluster: Cluster, name: str) -> None:
    """A deleted CRD goes once the apiserver's finalizer has removed its (here: no)
    instances; on a loaded machine that queue can lag, so allow it longer and, if the CRD
    still stands, say where it is stuck."""
    try:
        wait_gone(cluster, "customresourcedefinition", name, timeout=CRD_DELETE_TIMEOUT)
    except PollTimeoutError as error:
        crd = get(cluster, "customresourcedefinition", name) or {}
        meta, status = crd.get("metadata", {}), crd.get("status") or {}
        stuck = {
            "deletionTimestamp": meta.get("deletionTimestamp"),
            "finalizers": meta.get("finalizers"),
            "conditions": [
                (c["type"], c["status"], c.get("reason")) for c in status.get("conditions") or []
            ],
        }
        raise AssertionError(f"{error}; the CRD now: {stuck!r}") from error


def established(cluster: Cluster, name: str) -> bool:
    crd = get(cluster, "customresourcedefinition", name)
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []  # may be null
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def install(helm: Helm, release: str, namespace: str, chart: Path, values: dict[str, Any]) -> str:
    """`helm install`. The operator image of these tests is not on the node and is never
    pulled (pullPolicy Never): they test what the chart creates, not the operator."""
    values = {**values, "image": {"pullPolicy": "Never", **values.get("image", {})}}
    return helm.run(
        "install",
        release,
        str(chart),
        "--namespace",
        namespace,
        "--values",
        "-",
        input=yaml.safe_dump(values),
    ).stdout


def uninstall(helm: Helm, release: str, namespace: str) -> str:
    result = helm.run("uninstall", release, "--namespace", namespace)
    return result.stdout + result.stderr


@pytest.fixture
def renamed_chart(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[RenamedChart]:
    """The chart with its CRDs moved to the group `<namespace>.chart-test.modelrollout.io`."""
    group = f"{namespace}.chart-test.modelrollout.io"
    crds: dict[str, str] = {}
    names: list[str] = []
    for path in sorted(CHART_CRDS_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        crd["spec"]["group"] = group
        crd["metadata"]["name"] = f"{crd['spec']['names']['plural']}.{group}"
        # Short names and categories are cluster-wide too; the real CRDs own them.
        crd["spec"]["names"].pop("shortNames", None)
        crd["spec"]["names"].pop("categories", None)
        crds[path.name] = yaml.safe_dump(crd, sort_keys=False)
        names.append(crd["metadata"]["name"])
    assert len(names) == len(EXPECTED_CRD_NAMES), f"expected every CRD in {CHART_CRDS_DIR}"
    try:
        yield RenamedChart(copy_chart(tmp_path / "chart", crds), names)
    finally:
        cluster.kubectl(
            "delete", "customresourcedefinition", "--ignore-not-found", "--wait=false", *names
        )


@pytest.fixture
def release(cluster_helm: Helm, namespace: str) -> Iterator[str]:
    """A release name unique to the test (the namespace ends with random hex); whatever the
    test leaves installed under it is uninstalled afterwards."""
    name = f"mr-{namespace[-6:]}"
    try:
        yield name
    finally:
        cluster_helm.run("uninstall", name, "--namespace", namespace, "--ignore-not-found")


@pytest.fixture
def other_namespace(cluster: Cluster, namespace: str) -> Iterator[str]:
    name = f"{namespace}-b"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


def test_install_cluster_scope_then_uninstall_keeps_crds(
    cluster: Cluster,
    cluster_helm: Helm,
    namespace: str,
    renamed_chart: RenamedChart,
    release: str,
) -> None:
    fullname = f"{release}-modelrollout"
    notes = install(cluster_helm, release, namespace, renamed_chart.path, {})
    assert "watches ModelDeployments and ReplayTests in all namespaces" in notes
    assert f"deployment/{fullname}" in notes

    for name in renamed_chart.crd_names:
        poll_until(
            lambda name=name: established(cluster, name),
            timeout=TIMEOUT,
            message=f"CRD {name} is Established",
        )
        annotations = get(cluster, "customresourcedefinition", name)["metadata"]["annotations"]
        assert annotations["helm.sh/resource-policy"] == "keep"
        assert annotations["meta.helm.sh/release-name"] == release
        assert annotations["meta.helm.sh/release-namespace"] == namespace

    role = get(cluster, "clusterrole", fullname)
    assert_no_wildcards(role["rules"])
    assert rules_table(role["rules"]) == EXPECTED_RULES
    binding = get(cluster, "clusterrolebinding", fullname)
    assert binding["roleRef"]["name"] == fullname
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": fullname, "namespace": namespace}
    ]
    assert get(cluster, "serviceaccount", fullname, namespace) is not None
    assert get(cluster, "service", f"{fullname}-metrics", namespace) is not None
    # In cluster scope the only Role is the leader election's, for its Lease.
    roles = cluster.kubectl("get", "roles", "--namespace", namespace, "-o", "name").stdout
    assert roles.split() == [f"role.rbac.authorization.k8s.io/{fullname}-leader-election"]

    deployment = get(cluster, "deployment", fullname, namespace)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == fullname
    [container] = pod["containers"]
    assert container["args"][:2] == ["run", "--all-namespaces"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsUser"] == 65532

    output = uninstall(cluster_helm, release, namespace)
    assert "kept due to the resource policy" in output
    wait_gone(cluster, "clusterrole", fullname)
    wait_gone(cluster, "clusterrolebinding", fullname)
    wait_gone(cluster, "serviceaccount", fullname, namespace)
    wait_gone(cluster, "deployment", fullname, namespace)
    wait_gone(cluster, "service", f"{fullname}-metrics", namespace)
    for name in renamed_chart.crd_names:
        assert established(cluster, name), f"{name} was not kept"


def test_uninstall_deletes_crds_when_not_kept(
    cluster: Cluster,
    cluster_helm: Helm,
    namespace: str,
    renamed_chart: RenamedChart,
    release: str,
) -> None:
    install(cluster_helm, release, namespace, renamed_chart.path, {"crds": {"keep": False}})
    for name in renamed_chart.crd_names:
        poll_until(
            lambda name=name: established(cluster, name),
            timeout=TIMEOUT,
            message=f"CRD {name} is Established",
        )
        annotations = get(cluster, "customresourcedefinition", name)["metadata"]["annotations"]
        assert "helm.sh/resource-policy" not in annotations
    uninstall(cluster_helm, release, namespace)
    for name in renamed_chart.crd_names:
        wait_crd_gone(cluster, name)


def test_install_refuses_crds_it_does_not_own(
    cluster: Cluster,
    cluster_helm: Helm,
    namespace: str,
    renamed_chart: RenamedChart,
    release: str,
) -> None:
    crd_dir = renamed_chart.path / "files" / "crds"
    cluster.kubectl("apply", "--server-side", "-f", str(crd_dir))
    for name in renamed_chart.crd_names:
        poll_until(
            lambda name=name: established(cluster, name),
            timeout=TIMEOUT,
            message=f"CRD {name} is Established",
        )

    with pytest.raises(HelmError, match="invalid ownership metadata") as refused:
        install(cluster_helm, release, namespace, renamed_chart.path, {})
    assert any(name in refused.value.stderr for name in renamed_chart.crd_names)

    # With crds.install=false the release leaves CRDs to whoever installed them.
    install(cluster_helm, release, namespace, renamed_chart.path, {"crds": {"install": False}})
    assert get(cluster, "clusterrole", f"{release}-modelrollout") is not None
    uninstall(cluster_helm, release, namespace)
    wait_gone(cluster, "clusterrole", f"{release}-modelrollout")
    for name in renamed_chart.crd_names:
        crd = get(cluster, "customresourcedefinition", name)
        assert "meta.helm.sh/release-name" not in crd["metadata"].get("annotations", {})
        assert established(cluster, name)


def test_install_namespace_scope_then_uninstall(
    cluster: Cluster, cluster_helm: Helm, namespace: str, other_namespace: str, release: str
) -> None:
    fullname = f"{release}-modelrollout"
    watched = [namespace, other_namespace]
    values = {
        "crds": {"install": False},
        "rbac": {"scope": "namespace"},
        "watchNamespaces": watched,
    }
    notes = install(cluster_helm, release, namespace, CHART_DIR, values)
    assert f"in these namespaces only:\n  - {namespace}\n  - {other_namespace}\n" in notes
    assert "crds.install is false" in notes

    assert get(cluster, "clusterrole", fullname) is None
    assert get(cluster, "clusterrolebinding", fullname) is None
    for watched_namespace in watched:
        role = get(cluster, "role", fullname, watched_namespace)
        assert_no_wildcards(role["rules"])
        assert rules_table(role["rules"]) == EXPECTED_RULES
        binding = get(cluster, "rolebinding", fullname, watched_namespace)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": fullname,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": fullname, "namespace": namespace}
        ]
    assert get(cluster, "serviceaccount", fullname, namespace) is not None
    deployment = get(cluster, "deployment", fullname, namespace)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][:5] == [
        "run",
        "--namespace",
        namespace,
        "--namespace",
        other_namespace,
    ]
    assert container["args"][5:9] == CONTRACT_TAIL

    # The operator's ServiceAccount may do exactly what the Roles grant, where they grant it.
    subject = f"system:serviceaccount:{namespace}:{fullname}"
    can = cluster.kubectl(
        "auth", "can-i", "get", "pods", "--subresource=log",
        "--namespace", other_namespace, "--as", subject,
    )  # fmt: skip
    assert can.stdout.strip() == "yes"
    cannot = cluster.kubectl(
        "auth", "can-i", "list", "secrets", "--namespace", "default", "--as", subject, check=False
    )
    assert cannot.stdout.strip() == "no"

    uninstall(cluster_helm, release, namespace)
    for watched_namespace in watched:
        wait_gone(cluster, "role", fullname, watched_namespace)
        wait_gone(cluster, "rolebinding", fullname, watched_namespace)
    wait_gone(cluster, "deployment", fullname, namespace)
