"""Building blocks of the router tests: the objects a ModelDeployment owns, written as the
operator writes them; reconciles run in the test process against the real apiserver; and a
log of every replica count a Deployment goes through."""

from __future__ import annotations

import copy
import threading
from typing import Any

from kubernetes import client, watch
from urllib3.exceptions import ReadTimeoutError

from modelrollout.core import workloads
from modelrollout.core.api import modeldeployment, replaytest
from modelrollout.core.api.common import GROUP, VERSION
from modelrollout.services import reconciling
from modelrollout.services.kube import Kube
from modelrollout.services.rollouts import RolloutService, Settings
from support.wait import poll_until

MD = "fraud"
# Pods of these tests are never scheduled: only the Deployments' specs matter.
NOWHERE = {"modelrollout.io/test": "no-such-node"}
POD_SPEC = {
    "nodeSelector": NOWHERE,
    "containers": [{"name": "model", "image": "model:1", "imagePullPolicy": "Never"}],
}


def deployment(namespace: str, track: workloads.Track, replicas: int | None) -> dict[str, Any]:
    """A track's Deployment as the owned objects carry it; ``replicas`` None leaves them out."""
    labels = workloads.selector_labels(MD, track)
    spec: dict[str, Any] = {} if replicas is None else {"replicas": replicas}
    spec["selector"] = {"matchLabels": labels}
    spec["template"] = {"metadata": {"labels": labels}, "spec": copy.deepcopy(POD_SPEC)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{MD}-{track}", "namespace": namespace},
        "spec": spec,
    }


def live_service(namespace: str, track: workloads.Track | None) -> dict[str, Any]:
    """The live Service, selecting one track or (None) both."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": MD, "namespace": namespace},
        "spec": {
            "selector": workloads.selector_labels(MD, track),
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    }


def apply_owned(
    kube: Kube,
    namespace: str,
    *,
    stable: int | None,
    candidate: int | None,
    live: workloads.Track | None,
) -> None:
    """Apply the live Service and both Deployments as the operator's owned objects."""
    kube.apply(live_service(namespace, live))
    kube.apply(deployment(namespace, "stable", stable))
    kube.apply(deployment(namespace, "candidate", candidate))


def replicas(kube_api: client.ApiClient, namespace: str) -> tuple[int, int]:
    apps = client.AppsV1Api(kube_api)
    stable, candidate = (
        apps.read_namespaced_deployment(f"{MD}-{track}", namespace).spec.replicas
        for track in ("stable", "candidate")
    )
    return stable, candidate


def replica_owners(kube_api: client.ApiClient, namespace: str, track: str) -> frozenset[str]:
    """The field managers of ``spec.replicas`` of a track's Deployment."""
    found = Kube(kube_api).get_deployment(namespace, f"{MD}-{track}")
    assert found is not None
    return workloads.field_managers(found, "spec", "replicas")


def managers(kube_api: client.ApiClient, namespace: str, track: str) -> set[str]:
    """Every field manager of a track's Deployment."""
    found = Kube(kube_api).get_deployment(namespace, f"{MD}-{track}")
    assert found is not None
    return {entry["manager"] for entry in found["metadata"].get("managedFields", [])}


def generations(kube_api: client.ApiClient, namespace: str) -> tuple[int, int]:
    """The Deployments' generations: a write of their spec changes them, the controller's
    status writes do not."""
    apps = client.AppsV1Api(kube_api)
    stable, candidate = (
        apps.read_namespaced_deployment(f"{MD}-{track}", namespace).metadata.generation
        for track in ("stable", "candidate")
    )
    return stable, candidate


def model_deployment(
    version: str, *, router: str = "ReplicaRatio", weight: int | None = None
) -> dict[str, Any]:
    """A ModelDeployment of 4 replicas; with ``weight``, a bake of one step at that weight
    held by the BeforeProduction gate until :meth:`Rollout.approve` (``version`` itself,
    the first, has nothing to bake against and is approved already)."""
    spec: dict[str, Any] = {
        "model": {"name": MD, "version": version},
        "workload": {"replicas": 4, "template": {"spec": copy.deepcopy(POD_SPEC)}},
        "stages": {
            "nonProduction": {
                "replay": {
                    "events": {"url": "http://events.invalid/events.jsonl"},
                    "rate": {"rate": 10, "duration": "10s"},
                }
            }
        },
        "traffic": {"router": router},
    }
    if weight is not None:
        spec["stages"]["baking"] = {"steps": [{"weight": weight, "duration": "0s"}]}
        spec["gates"] = {"beforeProduction": "Manual"}
        spec["approvals"] = [{"gate": "BeforeProduction", "version": version}]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": MD},
        "spec": spec,
    }


class Rollout:
    """One ModelDeployment, reconciled in the test process by the operator's own service
    (pods are not waited for; the ReplayTests are passed by hand)."""

    def __init__(self, kube_api: client.ApiClient, namespace: str, md: dict[str, Any]) -> None:
        self.custom = client.CustomObjectsApi(kube_api)
        self.namespace = namespace
        self.service = RolloutService(Kube(kube_api), Settings(wait_for_ready=False))
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, modeldeployment.PLURAL, md
        )

    def get(self) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, modeldeployment.PLURAL, MD
        )
        return found

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.get().get("status") or {}
        return status

    def reconcile(self) -> dict[str, Any]:
        """One reconcile; the status it wrote."""
        outcome = self.service.reconcile(self.namespace, MD)
        assert not isinstance(outcome, reconciling.Gone)
        return self.status()

    def patch_spec(self, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, modeldeployment.PLURAL, MD, {"spec": spec}
        )

    def patch_status(self, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, modeldeployment.PLURAL, MD, {"status": status}
        )

    def pass_replay(self) -> dict[str, Any]:
        """Pass the current ReplayTest, then reconcile."""
        name = self.status()["replayTest"]
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.namespace,
            replaytest.PLURAL,
            name,
            {"status": {"phase": "Succeeded", "verdict": "Passed"}},
        )
        return self.reconcile()

    def approve(self, version: str) -> dict[str, Any]:
        """Open the BeforeProduction gate for ``version``, then reconcile."""
        self.patch_spec({"approvals": [{"gate": "BeforeProduction", "version": version}]})
        return self.reconcile()

    def new_version(self, version: str) -> dict[str, Any]:
        self.patch_spec({"model": {"version": version}})
        return self.reconcile()


def traffic_applied(status: dict[str, Any]) -> dict[str, Any]:
    found = next(c for c in status["conditions"] if c["type"] == "TrafficApplied")
    return dict(found)


class ReplicaLog:
    """Watches the Deployments of one namespace from the moment it is made, until
    :meth:`stop`."""

    def __init__(self, kube_api: client.ApiClient, namespace: str) -> None:
        self.apps = client.AppsV1Api(kube_api)
        self.namespace = namespace
        self.seen: list[tuple[str, str, int]] = []
        self.error: BaseException | None = None
        self.stopped = threading.Event()
        listed = self.apps.list_namespaced_deployment(namespace)
        self.thread = threading.Thread(
            target=self._follow, args=(listed.metadata.resource_version,), daemon=True
        )
        self.thread.start()

    def _follow(self, version: str) -> None:
        while not self.stopped.is_set():
            stream = watch.Watch()
            try:
                # A short read timeout ends a quiet stream, so that stop() is noticed; the
                # watch then starts again from the last version seen.
                for event in stream.stream(
                    self.apps.list_namespaced_deployment,
                    self.namespace,
                    resource_version=version,
                    _request_timeout=(10, 1),
                ):
                    obj = event["object"]
                    version = obj.metadata.resource_version
                    self.seen.append((obj.metadata.name, version, obj.spec.replicas))
                    if self.stopped.is_set():
                        stream.stop()
            except ReadTimeoutError:
                continue
            except Exception as exc:  # reported by the test that reads the log
                self.error = exc
                return

    def replicas(self, name: str) -> list[int]:
        """The values ``spec.replicas`` of Deployment ``name`` went through, in order, each
        once however many writes kept it, up to its current version."""
        current = self.apps.read_namespaced_deployment(name, self.namespace)
        version = current.metadata.resource_version
        poll_until(
            lambda: self.error is not None or (name, version) in {s[:2] for s in self.seen},
            timeout=30,
            message=f"the watch to report deployment/{name} at version {version}",
        )
        if self.error is not None:
            raise AssertionError(f"the watch of deployments failed: {self.error}")
        values: list[int] = []
        for seen_name, _, replicas in self.seen:
            if seen_name == name and (not values or values[-1] != replicas):
                values.append(replicas)
        return values

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)
