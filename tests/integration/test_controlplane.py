"""The test control plane is a real one: authentication, RBAC, controllers, CRDs, GC."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.cluster import REPO_ROOT, Cluster
from support.wait import poll_until

pytestmark = pytest.mark.cluster


def _status_of(call: Any, *args: Any, **kwargs: Any) -> int:
    """The HTTP status of a Kubernetes API call (200 when it succeeds)."""
    try:
        call(*args, **kwargs)
    except ApiException as err:
        return int(err.status)
    return 200


def _client(kube_api: client.ApiClient, token: str | None) -> client.ApiClient:
    """A client for the same server that trusts its CA but carries no client certificate."""
    admin = kube_api.configuration
    conf = client.Configuration()
    conf.host = admin.host
    conf.ssl_ca_cert = admin.ssl_ca_cert
    if token is not None:
        conf.api_key = {"authorization": token}
        conf.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(conf)


def _pinned_kubernetes_version() -> str:
    for line in (REPO_ROOT / "hack" / "k8s" / "go.mod").read_text().splitlines():
        fields = line.split()
        if "k8s.io/kubernetes" in fields and not line.lstrip().startswith("//"):
            return fields[fields.index("k8s.io/kubernetes") + 1]
    raise AssertionError("k8s.io/kubernetes is not required by hack/k8s/go.mod")


def test_server_runs_the_pinned_kubernetes(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.")
    if not cluster.external:
        pinned = _pinned_kubernetes_version()
        assert version["serverVersion"]["gitVersion"] == pinned
        assert version["clientVersion"]["gitVersion"] == pinned


def test_controllers_use_their_own_service_accounts(kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    names = poll_until(
        lambda: (
            {sa.metadata.name for sa in core.list_namespaced_service_account("kube-system").items}
            >= {"replicaset-controller", "job-controller", "generic-garbage-collector"}
        ),
        timeout=30,
        message="per-controller ServiceAccounts in kube-system",
    )
    assert names


def test_rbac_denies_until_a_role_binding_grants(
    kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)

    with _client(kube_api, None) as anonymous:
        assert _status_of(client.CoreV1Api(anonymous).list_namespaced_pod, namespace) == 403
    with _client(kube_api, "not-a-valid-token") as forged:
        assert _status_of(client.CoreV1Api(forged).list_namespaced_pod, namespace) == 401

    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    token = core.create_namespaced_service_account_token(
        "reader", namespace, client.AuthenticationV1TokenRequest(spec={"expirationSeconds": 600})
    ).status.token

    with _client(kube_api, token) as reader_client:
        reader = client.CoreV1Api(reader_client)
        assert _status_of(reader.list_namespaced_pod, namespace) == 403

        rbac.create_namespaced_role(
            namespace,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="pod-reader"),
                rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])],
            ),
        )
        rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="reader-reads-pods"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"
                ),
                subjects=[
                    client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
                ],
            ),
        )
        poll_until(
            lambda: _status_of(reader.list_namespaced_pod, namespace) == 200,
            timeout=30,
            message="the RoleBinding to allow listing pods",
        )
        # Only what the Role grants.
        assert _status_of(reader.list_namespaced_config_map, namespace) == 403
        assert _status_of(core.list_namespaced_pod, namespace) == 200


def test_deployment_gets_replicaset_and_pending_pods(
    kube_api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="web", image="registry.invalid/web")]
                    ),
                ),
            ),
        ),
    )
    replica_sets = poll_until(
        lambda: apps.list_namespaced_replica_set(namespace, label_selector="app=web").items,
        timeout=30,
        message="the Deployment's ReplicaSet",
    )
    assert len(replica_sets) == 1
    assert replica_sets[0].metadata.owner_references[0].kind == "Deployment"

    def two_live_pods() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        live = [pod for pod in pods if pod.metadata.deletion_timestamp is None]
        return live if len(live) == 2 else []

    pods = poll_until(two_live_pods, timeout=30, message="two Pods from the ReplicaSet")
    assert {pod.metadata.owner_references[0].name for pod in pods} == {
        replica_sets[0].metadata.name
    }
    # No kubelet: nothing schedules or runs them.
    assert {pod.status.phase for pod in pods} == {"Pending"}


def test_job_gets_a_pod(kube_api: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    batch.create_namespaced_job(
        namespace,
        client.V1Job(
            metadata=client.V1ObjectMeta(name="once"),
            spec=client.V1JobSpec(
                backoff_limit=0,
                template=client.V1PodTemplateSpec(
                    spec=client.V1PodSpec(
                        restart_policy="Never",
                        containers=[client.V1Container(name="once", image="registry.invalid/x")],
                    )
                ),
            ),
        ),
    )
    pods = poll_until(
        lambda: (
            core.list_namespaced_pod(
                namespace, label_selector="batch.kubernetes.io/job-name=once"
            ).items
        ),
        timeout=30,
        message="the Job's Pod",
    )
    assert pods[0].metadata.owner_references[0].kind == "Job"
    active = poll_until(
        lambda: batch.read_namespaced_job("once", namespace).status.active,
        timeout=30,
        message="the Job to report an active Pod",
    )
    assert active == 1


@pytest.fixture
def widget_crd(kube_api: client.ApiClient) -> Iterator[tuple[str, str]]:
    """A tiny namespaced CRD with a status subresource; yields (group, plural)."""
    ext = client.ApiextensionsV1Api(kube_api)
    group = f"t{secrets.token_hex(4)}.test.modelrollout.io"
    plural = "widgets"
    name = f"{plural}.{group}"
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        },
    }
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": plural, "singular": "widget", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": schema},
                        "subresources": {"status": {}},
                    }
                ],
            },
        }
    )

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        conditions = crd.status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    poll_until(established, timeout=30, message=f"CRD {name} to be Established")
    try:
        yield group, plural
    finally:
        ext.delete_custom_resource_definition(name)


def test_status_subresource_on_a_crd(
    kube_api: client.ApiClient, namespace: str, widget_crd: tuple[str, str]
) -> None:
    group, plural = widget_crd
    custom = client.CustomObjectsApi(kube_api)
    body = {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1},
        "status": {"ready": True},
    }
    created = poll_until(
        lambda: custom.create_namespaced_custom_object(group, "v1", namespace, plural, body),
        timeout=30,
        message="the new CRD's API to be served",
        ignore=(ApiException,),
    )
    # Status is ignored on create and on main-resource updates ...
    assert "status" not in created
    assert created["metadata"]["generation"] == 1

    # ... and only the status subresource writes it, without bumping the generation.
    patched = custom.patch_namespaced_custom_object_status(
        group, "v1", namespace, plural, "w", {"status": {"ready": True}, "spec": {"size": 5}}
    )
    assert patched["status"] == {"ready": True}
    assert patched["spec"] == {"size": 1}
    assert patched["metadata"]["generation"] == 1

    updated = custom.patch_namespaced_custom_object(
        group, "v1", namespace, plural, "w", {"spec": {"size": 2}, "status": {"ready": False}}
    )
    assert updated["spec"] == {"size": 2}
    assert updated["status"] == {"ready": True}
    assert updated["metadata"]["generation"] == 2


def test_garbage_collector_deletes_dependents(kube_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="dependent",
                owner_references=[
                    client.V1OwnerReference(
                        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
                    )
                ],
            )
        ),
    )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")
    poll_until(
        lambda: _status_of(core.read_namespaced_config_map, "dependent", namespace) == 404,
        timeout=60,
        message="the garbage collector to delete the dependent ConfigMap",
    )
