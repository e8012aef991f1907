"""The kopf handlers: configure kopf, then turn watch events into reconcile triggers.

Handlers stay thin. Every ModelDeployment and ReplayTest event (and every event of an
object they own) becomes a trigger for the per-object :class:`Scheduler`, which runs the
service's reconcile. kopf's own state is kept out of the user's object: no handler here
needs a finalizer or a progress record, and the ``status.kopf`` stanza is declared in the
CRD schema so that nothing kopf might write there is pruned.
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
from modelrollout.services.config import CONFIG
from modelrollout.services.kube import Kube
from modelrollout.services.replay import service as replays
from modelrollout.services.scheduler import Scheduler

MANAGED = {workloads.LABEL_MANAGED_BY: workloads.MANAGER}


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.scanning.disabled = True
    settings.persistence.finalizer = "modelrollout.io/finalizer"
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(field="status.kopf.diffbase")
    settings.watching.server_timeout = 300
    api_client = _api_client()
    kube = Kube(api_client)
    gate = _leader_gate(kube, memo)
    memo.rollouts = Scheduler(
        "ModelDeployment",
        rollouts.RolloutService(
            kube, rollouts.Settings(wait_for_ready=CONFIG.wait_for_ready)
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
    type: str, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    _route(memo.rollouts, type, namespace, name)


@kopf.on.event(GROUP, VERSION, "replaytests")
async def replaytest_event(
    type: str, namespace: str | None, name: str, memo: kopf.Memo, body: kopf.Body, **_: Any
) -> None:
    _route(memo.replays, type, namespace, name)
    owner = body.get("metadata", {}).get("labels", {}).get(workloads.LABEL_NAME)
    if owner and namespace:
        memo.rollouts.trigger_owner((namespace, owner))


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
async def deployment_event(
    namespace: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    owner = body.get("metadata", {}).get("labels", {}).get(workloads.LABEL_NAME)
    if owner and namespace:
        memo.rollouts.trigger_owner((namespace, owner))


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_event(namespace: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    owner = body.get("metadata", {}).get("labels", {}).get(replays.LABEL_REPLAY_TEST)
    if owner and namespace:
        memo.replays.trigger_owner((namespace, owner))


def _route(scheduler: Scheduler, type: str, namespace: str | None, name: str) -> None:
    if namespace is None:
        return
    if type == "DELETED":
        scheduler.forget((namespace, name))
    else:
        scheduler.trigger((namespace, name))
