"""What `helm template` renders, with default and non-default values."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
import yaml

from chart.chart_support import (
    CHART_DIR,
    CONTRACT_TAIL,
    EXPECTED_CRD_NAMES,
    EXPECTED_RULES,
    Helm,
    Manifest,
    assert_no_wildcards,
    by_kind,
    one,
    operator_container,
    rules_table,
)

RELEASE = "modelrollout"
NAMESPACE = "modelrollout-system"
CHART = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
APP_VERSION = CHART["appVersion"]
DEFAULT_IMAGE = f"ghcr.io/modelrollout/modelrollout:{APP_VERSION}"

CLUSTER_SCOPED = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}

NON_DEFAULT: dict[str, Any] = {
    "rbac": {"scope": "namespace"},
    "watchNamespaces": ["team-a", "team-b"],
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "crds": {"install": False, "keep": False},
    "image": {"repository": "registry.example.com/ml/modelrollout", "tag": "1.2.3"},
    "logLevel": "debug",
    "logFormat": "text",
}


@pytest.fixture(scope="module")
def default(helm: Helm) -> list[Manifest]:
    return helm.template()


@pytest.fixture(scope="module")
def non_default(helm: Helm) -> list[Manifest]:
    return helm.template(NON_DEFAULT)


def election_roles(manifests: list[Manifest], kind: str) -> list[Manifest]:
    """The leader election's Role or RoleBinding (for its Lease)."""
    return [m for m in by_kind(manifests, kind) if m["metadata"]["name"].endswith("-election")]


def access_roles(manifests: list[Manifest], kind: str) -> list[Manifest]:
    """The Roles or RoleBindings that give the operator its access in watched namespaces."""
    return [m for m in by_kind(manifests, kind) if m not in election_roles(manifests, kind)]


def kinds(manifests: list[Manifest]) -> set[str]:
    return {m["kind"] for m in manifests}


def env_of(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item for item in container["env"]}


def test_default_objects(default: list[Manifest]) -> None:
    assert kinds(default) == {
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",  # the leader election's, for its Lease
        "RoleBinding",
        "PodDisruptionBudget",
        "Service",
        "Deployment",
    }
    assert len(by_kind(default, "CustomResourceDefinition")) == len(EXPECTED_CRD_NAMES)


def test_every_object_has_standard_labels_and_namespace(default: list[Manifest]) -> None:
    for manifest in default:
        metadata = manifest["metadata"]
        labels = metadata["labels"]
        assert labels["app.kubernetes.io/name"] == "modelrollout"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/version"] == APP_VERSION
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == f"modelrollout-{CHART['version']}"
        if manifest["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in metadata
        else:
            assert metadata["namespace"] == NAMESPACE


def test_cluster_scope_rbac_is_exactly_what_the_operator_needs(default: list[Manifest]) -> None:
    role = one(default, "ClusterRole")
    assert_no_wildcards(role["rules"])
    assert rules_table(role["rules"]) == EXPECTED_RULES
    binding = one(default, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    service_account = one(default, "ServiceAccount")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": service_account["metadata"]["name"],
            "namespace": NAMESPACE,
        }
    ]
    assert not access_roles(default, "Role")
    assert not access_roles(default, "RoleBinding")


def test_leader_election_may_touch_only_its_lease(default: list[Manifest]) -> None:
    (role,) = election_roles(default, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["modelrollout"],
            "verbs": ["get", "update", "patch"],
        },
    ]
    (binding,) = election_roles(default, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    budget = one(default, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    deployment = one(default, "Deployment")
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]


def test_one_replica_needs_neither_election_nor_budget(helm: Helm) -> None:
    manifests = helm.template({"replicaCount": 1, "leaderElection": {"enabled": False}})
    assert not by_kind(manifests, "PodDisruptionBudget")
    assert not election_roles(manifests, "Role")
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "--leader-elect" not in operator_container(manifests)["args"]


def test_two_replicas_without_election_are_refused(helm: Helm) -> None:
    error = helm.template_error({"replicaCount": 2, "leaderElection": {"enabled": False}})
    assert "needs leaderElection.enabled" in error


def test_default_container_contract(default: list[Manifest]) -> None:
    container = operator_container(default)
    assert container["image"] == DEFAULT_IMAGE
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["args"] == [
        "run",
        "--all-namespaces",
        *CONTRACT_TAIL,
        "--log-format",
        "json",
        "--log-level",
        "info",
        "--resync",
        "60",
        "--leader-elect",
        "--leader-election-id",
        "modelrollout",
    ]
    env = env_of(container)
    assert set(env) == {
        "POD_NAME",
        "POD_NAMESPACE",
        "MODELROLLOUT_REPLAY_IMAGE",
        "MODELROLLOUT_REPLAY_EXECUTOR",
        "MODELROLLOUT_REPLAY_IMAGE_PULL_POLICY",
    }
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["MODELROLLOUT_REPLAY_IMAGE"]["value"] == DEFAULT_IMAGE
    assert env["MODELROLLOUT_REPLAY_EXECUTOR"]["value"] == "job"
    assert env["MODELROLLOUT_REPLAY_IMAGE_PULL_POLICY"]["value"] == "IfNotPresent"

    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"health": 8080, "metrics": 8081}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_extra_args_and_resync_reach_the_operator(helm: Helm) -> None:
    rendered = helm.template({"resyncSeconds": 5, "extraArgs": ["--log-level", "debug"]})
    args = operator_container(rendered)["args"]
    assert args[args.index("--resync") + 1] == "5"
    assert args[-2:] == ["--log-level", "debug"]


def test_deployment_is_hardened(default: list[Manifest]) -> None:
    deployment = one(default, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == one(default, "ServiceAccount")["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(default)
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 65532
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    resources = container["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]


def test_metrics_service_selects_the_operator_pod(default: list[Manifest]) -> None:
    service = one(default, "Service")
    deployment = one(default, "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"] == selector
    assert selector.items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8081, "targetPort": "metrics", "protocol": "TCP"}
    ]


def test_namespace_scope_grants_roles_in_each_watched_namespace(
    non_default: list[Manifest],
) -> None:
    assert not by_kind(non_default, "ClusterRole")
    assert not by_kind(non_default, "ClusterRoleBinding")
    roles = access_roles(non_default, "Role")
    bindings = access_roles(non_default, "RoleBinding")
    assert [r["metadata"]["namespace"] for r in roles] == ["team-a", "team-b"]
    assert [b["metadata"]["namespace"] for b in bindings] == ["team-a", "team-b"]
    service_account = one(non_default, "ServiceAccount")["metadata"]["name"]
    for role, binding in zip(roles, bindings, strict=True):
        assert_no_wildcards(role["rules"])
        assert rules_table(role["rules"]) == EXPECTED_RULES
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": service_account, "namespace": NAMESPACE}
        ]


def test_namespace_scope_args_name_each_namespace(non_default: list[Manifest]) -> None:
    args = operator_container(non_default)["args"]
    assert args == [
        "run",
        "--namespace",
        "team-a",
        "--namespace",
        "team-b",
        *CONTRACT_TAIL,
        "--log-format",
        "text",
        "--log-level",
        "debug",
        "--resync",
        "60",
        "--leader-elect",
        "--leader-election-id",
        "modelrollout",
    ]
    assert "--all-namespaces" not in args


def test_namespace_scope_defaults_to_the_release_namespace(helm: Helm) -> None:
    manifests = helm.template({"rbac": {"scope": "namespace"}})
    assert [r["metadata"]["namespace"] for r in access_roles(manifests, "Role")] == [NAMESPACE]
    bindings = access_roles(manifests, "RoleBinding")
    assert [b["metadata"]["namespace"] for b in bindings] == [NAMESPACE]
    assert operator_container(manifests)["args"][:3] == ["run", "--namespace", NAMESPACE]


def test_cluster_scope_refuses_watch_namespaces(helm: Helm) -> None:
    error = helm.template_error({"watchNamespaces": ["team-a"]})
    assert "watchNamespaces is only used with rbac.scope=namespace" in error


def test_service_monitor(non_default: list[Manifest], default: list[Manifest]) -> None:
    assert not by_kind(default, "ServiceMonitor")
    monitor = one(non_default, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    service = one(non_default, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["endpoints"] == [
        {
            "port": "metrics",
            "path": "/metrics",
            "interval": "30s",
            "scrapeTimeout": "10s",
            "honorLabels": True,
        }
    ]


def test_grafana_dashboard_is_off_by_default(default: list[Manifest]) -> None:
    assert not by_kind(default, "ConfigMap")


def test_grafana_dashboard_config_map(helm: Helm) -> None:
    config_map = one(helm.template({"grafana": {"dashboard": {"enabled": True}}}), "ConfigMap")
    metadata = config_map["metadata"]
    assert metadata["name"] == f"{RELEASE}-dashboard"
    assert metadata["namespace"] == NAMESPACE
    assert metadata["labels"]["grafana_dashboard"] == "1"
    assert metadata["labels"]["app.kubernetes.io/instance"] == RELEASE
    assert metadata["labels"]["app.kubernetes.io/component"] == "dashboard"
    assert list(config_map["data"]) == ["modelrollout.json"]
    shipped = (CHART_DIR / "dashboards" / "modelrollout.json").read_text()
    assert json.loads(config_map["data"]["modelrollout.json"]) == json.loads(shipped)


def test_grafana_dashboard_labels_and_namespace(helm: Helm) -> None:
    values = {
        "grafana": {
            "dashboard": {
                "enabled": True,
                # A sidecar that selects another label: the default one is dropped with null.
                "labels": {"grafana_dashboard": None, "dashboards": "ml"},
                "namespace": "monitoring",
            }
        }
    }
    metadata = one(helm.template(values), "ConfigMap")["metadata"]
    assert metadata["namespace"] == "monitoring"
    assert metadata["labels"]["dashboards"] == "ml"
    assert "grafana_dashboard" not in metadata["labels"]


def test_crds_install_false_renders_no_crd(non_default: list[Manifest]) -> None:
    assert not by_kind(non_default, "CustomResourceDefinition")


@pytest.mark.parametrize(("keep", "expected"), [(True, "keep"), (False, None)])
def test_crds_keep_sets_the_resource_policy(helm: Helm, keep: bool, expected: str | None) -> None:
    crds = by_kind(helm.template({"crds": {"keep": keep}}), "CustomResourceDefinition")
    assert crds
    for crd in crds:
        annotations = crd["metadata"].get("annotations") or {}
        assert annotations.get("helm.sh/resource-policy") == expected


def test_only_crds_carry_the_keep_policy(default: list[Manifest]) -> None:
    for manifest in default:
        if manifest["kind"] != "CustomResourceDefinition":
            annotations = manifest["metadata"].get("annotations") or {}
            assert "helm.sh/resource-policy" not in annotations


def test_custom_image(non_default: list[Manifest], helm: Helm) -> None:
    image = "registry.example.com/ml/modelrollout:1.2.3"
    container = operator_container(non_default)
    assert container["image"] == image
    assert env_of(container)["MODELROLLOUT_REPLAY_IMAGE"]["value"] == image

    manifests = helm.template(
        {
            "image": {"pullPolicy": "Always"},
            "replay": {"image": "registry.example.com/ml/replay:7"},
            "imagePullSecrets": [{"name": "registry-credentials"}],
        }
    )
    container = operator_container(manifests)
    assert container["image"] == DEFAULT_IMAGE
    assert container["imagePullPolicy"] == "Always"
    replay_image = env_of(container)["MODELROLLOUT_REPLAY_IMAGE"]["value"]
    assert replay_image == "registry.example.com/ml/replay:7"
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    service_account = one(manifests, "ServiceAccount")
    assert service_account["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_pod_placement_and_metadata(helm: Helm) -> None:
    tolerations = [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ops"]}]}
                ]
            }
        }
    }
    manifests = helm.template(
        {
            "podAnnotations": {"example.com/team": "ml-platform"},
            "podLabels": {"team": "ml-platform", "app.kubernetes.io/name": "overridden"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": tolerations,
            "affinity": affinity,
        }
    )
    deployment = one(manifests, "Deployment")
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"] == {"example.com/team": "ml-platform"}
    labels = template["metadata"]["labels"]
    assert labels["team"] == "ml-platform"
    # Extra labels never break the selector.
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert template["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert template["spec"]["tolerations"] == tolerations
    assert template["spec"]["affinity"] == affinity


def test_existing_service_account(helm: Helm) -> None:
    manifests = helm.template({"serviceAccount": {"create": False, "name": "platform-operator"}})
    assert not by_kind(manifests, "ServiceAccount")
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "platform-operator"
    subjects = one(manifests, "ClusterRoleBinding")["subjects"]
    assert subjects == [
        {"kind": "ServiceAccount", "name": "platform-operator", "namespace": NAMESPACE}
    ]
    error = helm.template_error({"serviceAccount": {"create": False}})
    assert "serviceAccount.name is required" in error


def test_names_follow_the_release(helm: Helm) -> None:
    manifests = helm.template(release="ml")
    assert one(manifests, "Deployment")["metadata"]["name"] == "ml-modelrollout"
    assert one(manifests, "ClusterRole")["metadata"]["name"] == "ml-modelrollout"
    assert one(manifests, "Service")["metadata"]["name"] == "ml-modelrollout-metrics"
    manifests = helm.template({"fullnameOverride": "mr"})
    assert one(manifests, "Deployment")["metadata"]["name"] == "mr"


def test_names_fit_in_63_characters(helm: Helm) -> None:
    release = "a-release-name-as-long-as-helm-allows-" + "x" * 15
    assert len(release) == 53
    manifests = helm.template(release=release)
    for manifest in manifests:
        assert len(manifest["metadata"]["name"]) <= 63, manifest["metadata"]["name"]
    assert one(manifests, "Service")["metadata"]["name"].endswith("-metrics")


def run_parser() -> argparse.ArgumentParser:
    """The parser of `modelrollout run`, as the operator image runs it."""
    from modelrollout.cli import run

    parser = argparse.ArgumentParser(prog="modelrollout")
    run.register(parser.add_subparsers(dest="command"))
    return parser


@pytest.mark.parametrize("log_level", ["debug", "info", "warning"])
@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("scope", ["cluster", "namespace"])
def test_the_operator_accepts_the_rendered_args(
    helm: Helm, scope: str, log_format: str, log_level: str
) -> None:
    values: dict[str, Any] = {
        "rbac": {"scope": scope},
        "logFormat": log_format,
        "logLevel": log_level,
    }
    if scope == "namespace":
        values["watchNamespaces"] = ["team-a", "team-b"]
    args = run_parser().parse_args(operator_container(helm.template(values))["args"])
    assert args.command == "run"
    assert args.all_namespaces is (scope == "cluster")
    assert args.namespace == ([] if scope == "cluster" else ["team-a", "team-b"])
    assert (args.health_port, args.metrics_port) == (8080, 8081)
    assert (args.log_format, args.log_level) == (log_format, log_level)
