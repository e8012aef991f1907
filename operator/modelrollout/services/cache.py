"""A watch-fed cache of the objects reconciles read, inside the I/O layer.

A reconcile reads its object, the Deployments and the ReplayTest it owns, and applies
every owned object. Most reconciles change nothing (a resync, an event of an object's own
status write, a Deployment's status moving as its pods start), yet each one cost about ten
requests. kopf already watches these objects to trigger the reconciles, so its events feed
this cache too, and :class:`~modelrollout.services.kube.Kube` reads from it and skips an
apply when the watched object already carries the manifest (:mod:`modelrollout.core.applied`).
The services do not know: they call the same methods and get the same dicts (copies).

**What is kept.** The kinds in :data:`WATCHES`: ModelDeployments and ReplayTests, and the
Deployments, Services and Jobs labelled as managed by the operator, in the namespaces the
operator serves. ConfigMaps and Secrets are not: they are the user's, unlabelled, so a
watch would stream every ConfigMap and Secret of those namespaces (Helm release Secrets,
certificates…) into the operator to save one read per reference. They are read on each
reconcile. Nothing is kept for a kind before its watch has delivered a first event, so
without a running watch (an operator whose watch failed, a command-line tool) every read
goes to the apiserver.

**How it is fed.**

* :meth:`ObjectCache.observe`: each watch event (``None`` for the initial listing,
  ``ADDED``, ``MODIFIED``, ``DELETED``). The handlers call it *before* they trigger a
  reconcile, so the reconcile that an event causes reads at least that event's state. An
  object that leaves the scope (its managed-by label removed) is dropped, like a deleted
  one.
* :meth:`ObjectCache.offer`: the answers of the operator's own reads and writes (the
  object after a status patch or an apply). This is what makes a reconcile read at least
  what the previous reconcile wrote, even when the watch event of that write has not come
  yet: a reconcile never repeats its predecessor's Events or notifications because the
  cache lagged behind.

Newer wins: resourceVersions are compared as integers (they are etcd revisions, and
comparable integers in Kubernetes 1.35), so a late watch event never replaces a newer
answer. A ``DELETED`` event leaves a tombstone with its resourceVersion for a few minutes,
so a read or write answer that raced with the deletion cannot bring the object back.
Where a resourceVersion is not an integer, answers are not stored: only watch events are.

**Why a stale read is safe.** The state read may be behind the apiserver by the watch's
latency, a few milliseconds. Decisions are level-based: a reconcile computes everything
from what it observes, and the event that brings a newer state triggers another reconcile,
which decides again. Writes do not rely on a fresh read: owned objects are server-side
applied (the whole desired state, idempotent, see :mod:`.kube`), a status write is a merge
patch of what the decision computed (user-written fields only when the decision changed
them), and the GatewayAPI router, whose HTTPRoute is not cached, patches with the
resourceVersion it read. A reconcile that runs in the short window before an event arrives
does what one that ran just before the change would have done.

**Skipping applies.** :meth:`ObjectCache.still_applied` says an apply may be skipped when
the cached object carries the manifest (its hash annotation, and every field set; see
:mod:`modelrollout.core.applied`) and this process applied it less than a period ago
(:data:`modelrollout.services.kube.REAPPLY_SECONDS`). Drift by another writer shows in the
watched object: its event triggers the owner's reconcile, which sees the difference and
applies. What a comparison cannot see (a field another manager now co-owns with the same
value, an object changed while its watch was down) is corrected by the periodic re-apply,
and by the first reconcile after a restart or a change of leader, which applies everything.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelrollout.core import applied, workloads
from modelrollout.core.api.common import GROUP, VERSION
from modelrollout.services import metrics

Key = tuple[str, str, str]
"""(resource, namespace, name)"""

MANAGED: Mapping[str, str] = {workloads.LABEL_MANAGED_BY: workloads.MANAGER}
TOMBSTONE_SECONDS = 300.0


@dataclass(frozen=True)
class Watch:
    """One kind the cache keeps, and the labels an object of it must carry."""

    group: str
    version: str
    resource: str
    labels: Mapping[str, str] = field(default_factory=dict)


WATCHES: tuple[Watch, ...] = (
    Watch(GROUP, VERSION, "modeldeployments"),
    Watch(GROUP, VERSION, "replaytests"),
    Watch("apps", "v1", "deployments", MANAGED),
    Watch("", "v1", "services", MANAGED),
    Watch("batch", "v1", "jobs", MANAGED),
)
"""The kinds kopf watches for the operator, and this cache keeps."""


def resource_version(obj: Mapping[str, Any]) -> int | None:
    """The object's resourceVersion as an integer; None when it is not one."""
    value = (obj.get("metadata") or {}).get("resourceVersion")
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
        return None
    return int(value)


def _key(resource: str, obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return resource, str(meta.get("namespace") or ""), str(meta.get("name") or "")


class ObjectCache:
    """The last known state of the watched objects, safe to use from several threads."""

    def __init__(
        self,
        watches: Iterable[Watch] = WATCHES,
        *,
        namespaces: Iterable[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._labels = {watch.resource: dict(watch.labels) for watch in watches}
        self._namespaces = frozenset(namespaces) if namespaces is not None else None
        self._clock = clock
        self._lock = threading.Lock()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._tombstones: OrderedDict[Key, tuple[int | None, float]] = OrderedDict()
        self._applied_at: dict[Key, float] = {}
        self._fed: set[str] = set()

    # --- what is kept ---------------------------------------------------------------
    def keeps(self, resource: str) -> bool:
        """Whether reads of this resource are answered here (it is watched and fed)."""
        with self._lock:
            return resource in self._fed

    def _in_scope(self, resource: str, obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        wanted = self._labels.get(resource)
        if wanted is None:
            return False
        return all(labels.get(k) == v for k, v in wanted.items())

    def concerns(self, resource: str, obj: Mapping[str, Any]) -> bool:
        """Whether a watch event of ``obj`` matters here: the object is in scope, or it is
        kept (and the event may take it out of scope)."""
        if self._in_scope(resource, obj):
            return True
        with self._lock:
            return _key(resource, obj) in self._objects

    def _namespace_served(self, namespace: str) -> bool:
        return self._namespaces is None or namespace in self._namespaces

    # --- feeding ------------------------------------------------------------------------
    def observe(self, resource: str, type_: str | None, obj: Mapping[str, Any]) -> bool:
        """A watch event. True when it concerns an object in scope, or one that was kept
        until now (and has just been dropped)."""
        if resource not in self._labels:
            return False
        key = _key(resource, obj)
        in_scope = self._in_scope(resource, obj)
        with self._lock:
            self._fed.add(resource)
            self._prune()
            if type_ == "DELETED" or not in_scope:
                held = self._objects.pop(key, None) is not None
                self._applied_at.pop(key, None)
                if held or in_scope:
                    self._tombstones[key] = (resource_version(obj), self._clock())
                    self._tombstones.move_to_end(key)
                return held or in_scope
            current = self._objects.get(key)
            if current is None or not _older(obj, current):
                self._objects[key] = copy.deepcopy(dict(obj))
                self._tombstones.pop(key, None)
            return True

    def offer(self, resource: str, obj: Mapping[str, Any]) -> None:
        """The apiserver's answer to one of our reads or writes: kept when it is newer than
        what is known (the object, or its deletion) and the kind's watch is running."""
        if resource not in self._labels or not obj.get("metadata"):
            return
        version = resource_version(obj)
        key = _key(resource, obj)
        if version is None or not self._in_scope(resource, obj):
            return
        if not self._namespace_served(key[1]):
            return
        with self._lock:
            if resource not in self._fed:
                return
            self._prune()
            tombstone = self._tombstones.get(key)
            if tombstone is not None and (tombstone[0] is None or version <= tombstone[0]):
                return
            current = self._objects.get(key)
            if current is not None and _older(obj, current):
                return
            self._objects[key] = copy.deepcopy(dict(obj))
            self._tombstones.pop(key, None)

    def drop(self, resource: str, namespace: str, name: str) -> None:
        """Forget an object this process has just deleted (its event follows)."""
        with self._lock:
            self._objects.pop((resource, namespace, name), None)
            self._applied_at.pop((resource, namespace, name), None)

    def _prune(self) -> None:
        deadline = self._clock() - TOMBSTONE_SECONDS
        while self._tombstones:
            key, (_, at) = next(iter(self._tombstones.items()))
            if at > deadline:
                break
            del self._tombstones[key]

    # --- reading -----------------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of the kept object; None when it is not kept (read it from the API)."""
        with self._lock:
            found = self._objects.get((resource, namespace, name))
            result = copy.deepcopy(found) if found is not None else None
        metrics.CACHE_READS.labels(resource, "hit" if result is not None else "miss").inc()
        return result

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    # --- applies -----------------------------------------------------------------------
    def applied(self, resource: str, obj: Mapping[str, Any]) -> None:
        """This process has just applied the object (``obj`` is the apiserver's answer)."""
        self.offer(resource, obj)
        with self._lock:
            self._applied_at[_key(resource, obj)] = self._clock()

    def still_applied(self, resource: str, manifest: Mapping[str, Any], *, within: float) -> bool:
        """Whether applying ``manifest`` (with its hash annotation) would change nothing
        that matters: the kept object carries it, and this process applied it less than
        ``within`` seconds ago."""
        key = _key(resource, manifest)
        with self._lock:
            live = self._objects.get(key)
            at = self._applied_at.get(key)
            if live is None or at is None or self._clock() - at >= within:
                return False
            if (live.get("metadata") or {}).get("deletionTimestamp"):
                return False
            return applied.carries(live, manifest)


def _older(obj: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is known to be older than ``than`` (by resourceVersion)."""
    a, b = resource_version(obj), resource_version(than)
    return a is not None and b is not None and a < b
