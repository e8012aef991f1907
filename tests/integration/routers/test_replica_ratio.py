"""The ReplicaRatio router against a real apiserver: it reads the Deployments' replicas."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from modelrollout.core.api.modeldeployment import TrafficSpec
from modelrollout.services.kube import Kube
from modelrollout.services.routers import make_router

MD = "fraud"


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "model", "image": "model:1", "imagePullPolicy": "Never"}
                    ]
                },
            },
        },
    }


def generation(apps: client.AppsV1Api, namespace: str, track: str) -> int:
    found: int = apps.read_namespaced_deployment(f"{MD}-{track}", namespace).metadata.generation
    return found


def test_weights_follow_the_replica_counts(kube_api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(kube_api)
    router = make_router(TrafficSpec(), Kube(kube_api), port=80)
    assert router.get_weights(namespace, MD) is None

    apps.create_namespaced_deployment(namespace, deployment(f"{MD}-stable", 3))
    assert router.get_weights(namespace, MD) is None
    apps.create_namespaced_deployment(namespace, deployment(f"{MD}-candidate", 1))
    assert router.get_weights(namespace, MD) == (75, 25)

    # The deployment controller writes the status meanwhile; the spec's generation is what
    # a write of replicas would change.
    before = [generation(apps, namespace, track) for track in ("stable", "candidate")]
    router.set_weights(namespace, MD, stable_weight=10, candidate_weight=90)
    assert [generation(apps, namespace, track) for track in ("stable", "candidate")] == before
    assert router.get_weights(namespace, MD) == (75, 25)

    apps.patch_namespaced_deployment_scale(f"{MD}-stable", namespace, {"spec": {"replicas": 0}})
    assert router.get_weights(namespace, MD) == (0, 100)
    apps.patch_namespaced_deployment_scale(f"{MD}-candidate", namespace, {"spec": {"replicas": 0}})
    assert router.get_weights(namespace, MD) is None
