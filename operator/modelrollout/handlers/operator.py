"""The kopf handlers: configure kopf, then turn watch events into reconcile triggers.

Handlers stay thin. Every ModelDeployment and ReplayTest event (and every event of an
object they own) becomes a trigger for the per-object :class:`Scheduler`, which runs the
service's reconcile. Each event first updates the operator's
:class:`~modelrollout.services.cache.ObjectCache`, so the reconcile it triggers reads at
least that state without asking the apiserver; the kinds watched here are the cache's
``WATCHES``. The owned kinds are filtered by :func:`_ours` rather than kopf's label filter,
so that the event of an object whose managed-by label was just removed still reaches the
cache, which drops it.

kopf's own state is kept out of the user's object: no handler here needs a finalizer or a
progress record, and the ``status.kopf`` stanza is declared in the CRD schema so that
nothing kopf might write there is pruned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import kopf
from kubernetes import client
from kubernetes import config as kube_config

from modelrollout.core import workloads
from modelrollout.core.api.common import GROUP, VERSION
from modelrollout.services import leader, rollouts
from modelrollout.services.cache import ObjectCache
from modelrollout.services.config import CONFIG
from modelrollout.services.kube import Kube
from modelrollout.services.replay import service as replays
from modelrollout.services.scheduler import Scheduler


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.scanning.disabled = True
    settings.persistence.finalizer = "modelrollout.io/finalizer"
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(field="status.kopf.diffbase")
    settings.watching.server_timeout = 300
    api_client = _api_client()
    memo.cache = ObjectCache(namespaces=None if CONFIG.all_namespaces else CONFIG.namespaces)
    kube = Kube(api_client, cache=memo.cache)
    gate = _leader_gate(kube, memo)
    memo.rollouts = Scheduler(
        "ModelDeployment",
        rollouts.RolloutService(
            kube,
            rollouts.Settings(
                wait_for_ready=CONFIG.wait_for_ready, capture_image=CONFIG.replay_image
            ),
        ).reconcile,
        resync=CONFIG.resync_seconds,
        gate=gate,
    )
    replay_service = replays.build_service(kube, CONFIG)
    memo.replay_executor = replay_service.executor
    memo.replays = Scheduler(
        "ReplayTest", replay_service.reconcile, resync=CONFIG.resync_seconds, gate=gate
    )


def _leader_gate(kube: Kube, memo: kopf.Memo) -> Callable[[], bool]:
    """With --leader-elect, whether this replica holds the Lease (elected in the background);
    without, always true."""
    if not CONFIG.leader_elect:
        return lambda: True
    elector = leader.LeaderElector(kube, CONFIG.lease_namespace, CONFIG.lease_name, CONFIG.identity)
    memo.election = asyncio.get_running_loop().create_task(elector.run(), name="leader-election")
    return elector.is_leader


@kopf.on.cleanup()
def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Stop what the executor runs locally (local shards); Jobs live on in the cluster."""
    executor = memo.get("replay_executor")
    if executor is not None:
        executor.close()
    election = memo.get("election")
    if election is not None:
        election.cancel()


def _api_client() -> client.ApiClient:
    """In the cluster, the pod's ServiceAccount; outside, the kubeconfig."""
    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        api: client.ApiClient = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=CONFIG.kubeconfig
        )
        return api
    return client.ApiClient()


@kopf.on.event(GROUP, VERSION, "modeldeployments")
async def modeldeployment_event(
    type: str, event: kopf.RawEvent, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    memo.cache.observe("modeldeployments", type, event["object"])
    _route(memo.rollouts, type, namespace, name)


@kopf.on.event(GROUP, VERSION, "replaytests")
async def replaytest_event(
    type: str,
    event: kopf.RawEvent,
    namespace: str | None,
    name: str,
    memo: kopf.Memo,
    body: kopf.Body,
    **_: Any,
) -> None:
    memo.cache.observe("replaytests", type, event["object"])
    _route(memo.replays, type, namespace, name)
    owner = body.get("metadata", {}).get("labels", {}).get(workloads.LABEL_NAME)
    if owner and namespace:
        memo.rollouts.trigger_owner((namespace, owner))


def _ours(resource: str) -> Callable[..., bool]:
    """A kopf filter: the object is labelled as managed by the operator, or the cache keeps
    it (so the event that takes it out of scope is seen too)."""

    def check(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> bool:
        cache: ObjectCache | None = memo.get("cache")
        return cache is not None and cache.concerns(resource, event["object"])

    return check


@kopf.on.event("apps", "v1", "deployments", when=_ours("deployments"))
async def deployment_event(
    type: str, event: kopf.RawEvent, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    _owned(memo, "deployments", type, event, namespace, memo.rollouts, workloads.LABEL_NAME)


@kopf.on.event("", "v1", "services", when=_ours("services"))
async def service_event(
    type: str, event: kopf.RawEvent, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    _owned(memo, "services", type, event, namespace, memo.rollouts, workloads.LABEL_NAME)


@kopf.on.event("batch", "v1", "jobs", when=_ours("jobs"))
async def job_event(
    type: str, event: kopf.RawEvent, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    _owned(memo, "jobs", type, event, namespace, memo.replays, replays.LABEL_REPLAY_TEST)


def _owned(
    memo: kopf.Memo,
    resource: str,
    type: str | None,
    event: kopf.RawEvent,
    namespace: str | None,
    owners: Scheduler,
    owner_label: str,
) -> None:
    """An event of an object of a kind we own: into the cache, and a trigger for its owner
    when it is ours (labelled as managed by the operator), or was until this event."""
    obj = event["object"]
    if not memo.cache.observe(resource, type, obj):
        return
    owner = (obj.get("metadata") or {}).get("labels", {}).get(owner_label)
    if owner and namespace:
        owners.trigger_owner((namespace, owner))


def _route(scheduler: Scheduler, type: str, namespace: str | None, name: str) -> None:
    if namespace is None:
        return
    if type == "DELETED":
        scheduler.forget((namespace, name))
    else:
        scheduler.trigger((namespace, name))
