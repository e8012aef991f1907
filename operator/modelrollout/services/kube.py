"""A narrow Kubernetes client: the handful of calls the operator makes, as plain dicts.

The generated client returns typed objects; the decisions in ``core`` work on plain
manifests and pydantic models, so every read here asks for the raw JSON. Writes of owned
objects use server-side apply with a fixed field manager and ``force``: the operator is the
only writer of what it owns, an apply is idempotent (a restart re-applies the same
objects without conflict), and fields other managers set (an HPA's replicas, a mesh's
annotations) are left alone.

With an :class:`~modelrollout.services.cache.ObjectCache` (the operator's, fed by its
watches), reads of the watched kinds are answered from the cache and go to the apiserver
only on a miss; the answers of reads and writes are handed to the cache. Each applied
manifest carries its hash (:mod:`modelrollout.core.applied`), and an apply is skipped when
the watched object already carries the manifest and this process applied it less than
:data:`REAPPLY_SECONDS` ago: see :mod:`.cache` for why that is safe, and how drift by
another writer is still corrected. Without a cache (the command-line tools) every call goes
to the apiserver.

API errors are mapped onto :mod:`modelrollout.core.errors` so callers never look at HTTP
status codes. Every request is counted (:mod:`.apicalls`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.core import applied, errors
from modelrollout.core.api.common import GROUP, VERSION
from modelrollout.core.clock import rfc3339
from modelrollout.services import apicalls, metrics
from modelrollout.services.cache import ObjectCache

FIELD_MANAGER = "modelrollout"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
COMPONENT = "modelrollout"
RESOURCES = {"Deployment": "deployments", "Service": "services", "Job": "jobs"}
"""The kinds :meth:`Kube.apply` writes, and their resources."""
REAPPLY_SECONDS = 600.0
"""An object the cache shows unchanged is applied again at least this often (see
:mod:`.cache`)."""

ApplyFn = Callable[[dict[str, Any]], Any]


def call_api(fn: Callable[[], Any], what: str, *, verb: str, resource: str) -> bytes:
    """Send one request (counted by :mod:`.apicalls` as ``verb resource``) and read its
    body in full; API errors become :mod:`modelrollout.core.errors`.

    Every call here passes ``_preload_content=False``, so the client hands back the
    urllib3 response unread. Reading it to the end is what returns its connection to the
    client's pool: a response dropped unread keeps its connection, and the next request
    opens a new one (a TCP and a TLS handshake with the apiserver). Writes therefore read
    their answers too, even when nothing in them is needed.
    """
    apicalls.record(verb, resource)
    try:
        return bytes(fn().data)
    except ApiException as exc:
        raise errors.from_status(int(exc.status or 0), what, _message(exc)) from exc


def call_json(fn: Callable[[], Any], what: str, *, verb: str, resource: str) -> dict[str, Any]:
    """:func:`call_api`, with the body parsed as a JSON object."""
    data: dict[str, Any] = json.loads(call_api(fn, what, verb=verb, resource=resource))
    return data


def list_items(fn: Callable[[], Any], resource: str) -> list[dict[str, Any]]:
    """The items of one list request of ``resource``."""
    data = call_json(fn, resource, verb="list", resource=resource)
    items: list[dict[str, Any]] = data.get("items", [])
    return items


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.body or exc.reason)
    return str(body.get("message") or exc.reason)


def read_or_none(fn: Callable[[], Any], what: str, *, resource: str) -> dict[str, Any] | None:
    """Read one object as a dict; None when it does not exist."""
    try:
        return call_json(fn, what, verb="get", resource=resource)
    except errors.NotFound:
        return None


class Kube:
    """The operator's view of the Kubernetes API."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        instance: str = "modelrollout",
        cache: ObjectCache | None = None,
        reapply_seconds: float = REAPPLY_SECONDS,
    ) -> None:
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.instance = instance
        self.cache = cache
        self.reapply_seconds = reapply_seconds

    # --- the cache ---------------------------------------------------------------------
    def _read(
        self, resource: str, namespace: str, name: str, fn: Callable[[], Any], what: str
    ) -> dict[str, Any] | None:
        """From the cache when it keeps the kind; otherwise (or on a miss) from the API."""
        cache = self.cache
        if cache is not None and cache.keeps(resource):
            found = cache.get(resource, namespace, name)
            if found is not None:
                return found
        obj = read_or_none(fn, what, resource=resource)
        if obj is not None and cache is not None:
            cache.offer(resource, obj)
        return obj

    def _apply(self, resource: str, manifest: dict[str, Any], send: ApplyFn) -> None:
        """Apply ``manifest`` with its hash annotation, unless the watched object already
        carries it and was applied by this process less than ``reapply_seconds`` ago."""
        body = applied.with_hash(manifest)
        cache = self.cache
        if cache is not None and cache.still_applied(resource, body, within=self.reapply_seconds):
            metrics.APPLIES_SKIPPED.labels(resource).inc()
            return
        answer = send(body)
        if cache is not None:
            cache.applied(resource, answer)

    def _create(
        self, create: Callable[..., Any], body: dict[str, Any], resource: str
    ) -> dict[str, Any]:
        meta = body["metadata"]
        return call_json(
            lambda: create(meta["namespace"], cast(Any, body), _preload_content=False),
            f"{body['kind'].lower()}/{meta['name']}",
            verb="create",
            resource=resource,
        )

    # --- the leader election's Lease --------------------------------------------------
    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        leases = client.CoordinationV1Api(self.api_client)
        return read_or_none(
            lambda: leases.read_namespaced_lease(name, namespace, _preload_content=False),
            f"lease/{name}",
            resource="leases",
        )

    def create_lease(self, namespace: str, body: dict[str, Any]) -> None:
        leases = client.CoordinationV1Api(self.api_client)
        call_api(
            lambda: leases.create_namespaced_lease(
                namespace, cast(Any, body), _preload_content=False
            ),
            f"lease/{body['metadata']['name']}",
            verb="create",
            resource="leases",
        )

    def patch_lease(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """A merge patch; with ``metadata.resourceVersion`` set it is refused (Conflict)
        if the Lease changed since it was read."""
        leases = client.CoordinationV1Api(self.api_client)
        call_api(
            lambda: leases.patch_namespaced_lease(
                name, namespace, body, _preload_content=False, _content_type=MERGE
            ),
            f"lease/{name}",
            verb="patch",
            resource="leases",
        )

    # --- our own kinds -------------------------------------------------------------
    def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(
            plural,
            namespace,
            name,
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, _preload_content=False
            ),
            f"{plural}/{name}",
        )

    def list_custom(
        self, plural: str, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Objects of one of our kinds in ``namespace`` (every namespace for None)."""
        return list_items(
            lambda: (
                self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, label_selector=label_selector,
                    _preload_content=False,
                )
                if namespace is not None
                else self.custom.list_cluster_custom_object(
                    GROUP, VERSION, plural, label_selector=label_selector, _preload_content=False
                )
            ),
            plural,
        )  # fmt: skip

    def patch_status(
        self,
        plural: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        *,
        resource_version: str | None = None,
    ) -> None:
        """Merge-patch the status subresource (keys set to None are removed).

        With ``resource_version`` the write fails with :class:`errors.Conflict` when the
        object changed since it was read.
        """
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        answer = call_json(
            lambda: self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                body,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE,
                _preload_content=False,
            ),
            f"{plural}/{name} status",
            verb="patch",
            resource=f"{plural}/status",
        )
        if self.cache is not None:
            self.cache.offer(plural, answer)

    def apply_custom(self, plural: str, manifest: dict[str, Any]) -> None:
        """Server-side apply of one of our kinds (a ReplayTest a ModelDeployment owns)."""
        meta = manifest["metadata"]

        def send(body: dict[str, Any]) -> dict[str, Any]:
            return call_json(
                lambda: self.custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    meta["namespace"],
                    plural,
                    meta["name"],
                    body,
                    field_manager=FIELD_MANAGER,
                    force=True,
                    _content_type=APPLY,
                    _preload_content=False,
                ),
                f"{plural}/{meta['name']}",
                verb="apply",
                resource=plural,
            )

        self._apply(plural, manifest, send)

    # --- owned workloads -------------------------------------------------------------
    def apply(self, manifest: dict[str, Any]) -> None:
        """Server-side apply of a Deployment, Service or Job we own."""
        kind = manifest["kind"]
        meta = manifest["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        common: dict[str, Any] = {
            "field_manager": FIELD_MANAGER,
            "force": True,
            "_content_type": APPLY,
            "_preload_content": False,
        }
        calls: dict[str, ApplyFn] = {
            "Deployment": lambda body: self.apps.patch_namespaced_deployment(
                name, namespace, body, **common
            ),
            "Service": lambda body: self.core.patch_namespaced_service(
                name, namespace, body, **common
            ),
            "Job": lambda body: self.batch.patch_namespaced_job(name, namespace, body, **common),
        }
        if kind not in calls:
            raise errors.PermanentError(f"cannot apply objects of kind {kind}")
        resource = RESOURCES[kind]

        def send(body: dict[str, Any]) -> dict[str, Any]:
            return call_json(
                lambda: calls[kind](body), f"{kind.lower()}/{name}", verb="apply", resource=resource
            )

        self._apply(resource, manifest, send)

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(
            "deployments",
            namespace,
            name,
            lambda: self.apps.read_namespaced_deployment(name, namespace, _preload_content=False),
            f"deployment/{name}",
        )

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(
            "services",
            namespace,
            name,
            lambda: self.core.read_namespaced_service(name, namespace, _preload_content=False),
            f"service/{name}",
        )

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(
            "jobs",
            namespace,
            name,
            lambda: self.batch.read_namespaced_job(name, namespace, _preload_content=False),
            f"job/{name}",
        )

    def list_jobs(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return list_items(
            lambda: self.batch.list_namespaced_job(
                namespace, label_selector=label_selector, _preload_content=False
            ),
            "jobs",
        )

    def delete_job(self, namespace: str, name: str) -> None:
        with contextlib.suppress(errors.NotFound):
            call_api(
                lambda: self.batch.delete_namespaced_job(
                    name, namespace, propagation_policy="Background", _preload_content=False
                ),
                f"job/{name}",
                verb="delete",
                resource="jobs",
            )
        if self.cache is not None:
            self.cache.drop("jobs", namespace, name)

    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return list_items(
            lambda: self.core.list_namespaced_pod(
                namespace, label_selector=label_selector, _preload_content=False
            ),
            "pods",
        )

    def create_job(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create a Job the caller owns for its lifetime (``modelrollout profile --job``);
        AlreadyExists is an error: the name was meant to be new."""
        return self._create(self.batch.create_namespaced_job, manifest, "jobs")

    def pod_log(
        self,
        namespace: str,
        name: str,
        *,
        tail_bytes: int = 4 * 1024 * 1024,
        tail_lines: int | None = None,
    ) -> str:
        """A pod's log: its first ``tail_bytes``, or with ``tail_lines`` its last lines."""
        options: dict[str, Any] = {"limit_bytes": tail_bytes}
        if tail_lines is not None:
            options["tail_lines"] = tail_lines
        body = call_api(
            lambda: self.core.read_namespaced_pod_log(
                name, namespace, _preload_content=False, **options
            ),
            f"pod/{name} log",
            verb="get",
            resource="pods/log",
        )
        return body.decode("utf-8", "replace")

    # --- references --------------------------------------------------------------------
    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return read_or_none(
            lambda: self.core.read_namespaced_config_map(name, namespace, _preload_content=False),
            f"configmap/{name}",
            resource="configmaps",
        )

    def create_config_map(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._create(self.core.create_namespaced_config_map, body, "configmaps")

    def replace_config_map(self, body: dict[str, Any]) -> dict[str, Any]:
        """Update a ConfigMap read before; its resourceVersion makes a write in between
        a :class:`errors.Conflict`, never a lost update."""
        meta = body["metadata"]
        return call_json(
            lambda: self.core.replace_namespaced_config_map(
                meta["name"], meta["namespace"], cast(Any, body), _preload_content=False
            ),
            f"configmap/{meta['name']}",
            verb="update",
            resource="configmaps",
        )

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return read_or_none(
            lambda: self.core.read_namespaced_secret(name, namespace, _preload_content=False),
            f"secret/{name}",
            resource="secrets",
        )

    # --- events --------------------------------------------------------------------------
    def list_events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """The core/v1 Events about one object."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        return list_items(
            lambda: self.core.list_namespaced_event(
                namespace, field_selector=selector, _preload_content=False
            ),
            "events",
        )

    def event(
        self,
        involved: dict[str, Any],
        *,
        type_: str,
        reason: str,
        message: str,
        now: datetime,
    ) -> None:
        """Record a core/v1 Event about one of our objects."""
        meta = involved["metadata"]
        stamp = rfc3339(now)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        call_api(
            lambda: self.core.create_namespaced_event(
                meta["namespace"], cast(Any, body), _preload_content=False
            ),
            "event",
            verb="create",
            resource="events",
        )


def config_map_value(obj: dict[str, Any], key: str) -> bytes | None:
    """A ConfigMap value as bytes, from data or binaryData."""
    data = obj.get("data") or {}
    if key in data:
        return str(data[key]).encode()
    binary = obj.get("binaryData") or {}
    if key in binary:
        return base64.b64decode(binary[key])
    return None
