"""Feed an ObjectCache from watches of one namespace, as the operator's kopf handlers do,
for code that runs the reconcile services in process (the API-calls benchmark).

One thread per watched kind: a watch without a resourceVersion first sends every existing
object as ADDED, then the changes; each event goes to ``cache.observe``. The watches use
their own ApiClient, so they never count as the operator's requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from kubernetes import client, watch

from modelrollout.core.api.common import GROUP, VERSION
from modelrollout.services.cache import WATCHES, ObjectCache

WATCH_SECONDS = 5  # each watch call ends after this, so a stop is noticed quickly


class WatchFeed:
    def __init__(self, api: client.ApiClient, cache: ObjectCache, namespace: str) -> None:
        self.cache = cache
        self.namespace = namespace
        self.stopping = threading.Event()
        self.errors: list[BaseException] = []
        core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
        custom = client.CustomObjectsApi(api)
        self.lists: dict[str, Callable[..., Any]] = {
            "modeldeployments": lambda **kw: custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "modeldeployments", **kw
            ),
            "replaytests": lambda **kw: custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "replaytests", **kw
            ),
            "deployments": lambda **kw: apps.list_namespaced_deployment(namespace, **kw),
            "services": lambda **kw: core.list_namespaced_service(namespace, **kw),
            "jobs": lambda **kw: batch.list_namespaced_job(namespace, **kw),
        }
        assert set(self.lists) == {item.resource for item in WATCHES}
        self.threads = [
            threading.Thread(target=self._run, args=(resource,), daemon=True, name=resource)
            for resource in self.lists
        ]

    def _run(self, resource: str) -> None:
        version: str | None = None
        while not self.stopping.is_set():
            stream = watch.Watch()
            kwargs: dict[str, Any] = {"timeout_seconds": WATCH_SECONDS}
            if version is not None:
                kwargs["resource_version"] = version
            try:
                for event in stream.stream(self.lists[resource], **kwargs):
                    raw = event["raw_object"]
                    version = raw["metadata"]["resourceVersion"]
                    self.cache.observe(resource, event["type"], raw)
                    if self.stopping.is_set():
                        stream.stop()
            except client.exceptions.ApiException as err:
                if err.status != 410:  # expired: start again from a fresh listing
                    self.errors.append(err)
                    return
                version = None

    def __enter__(self) -> WatchFeed:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=WATCH_SECONDS + 5)
