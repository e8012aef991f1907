"""What a ReplayTest runs: its shards, the Job that runs them, and how a shard ended.

A ReplayTest becomes ``parallelism`` shards of one :class:`~.run.ReplayRun`, handed to
each shard as JSON in ``MODELROLLOUT_REPLAY_RUN``. With the job executor they are the
pods of one Indexed Job (the shard index comes from ``JOB_COMPLETION_INDEX``); with the
local executor they are local processes. Either way each shard prints its mergeable
result as the last line of its output, and :func:`modelrollout.core.replay.decision.decide`
merges the shards exactly and judges the merged result. The same code runs for both
executors, so a test run locally means what a run in the cluster means.

The Job follows the habits of Argo Rollouts' job metric provider: a deterministic name
with room for the index suffix, a controller owner reference, a label with the owner's
UID, no retries of a failed shard (a retried shard would send its events twice), and a
fast failure on terminal waiting reasons such as an image that cannot be pulled. The
hardened pod and the Indexed Job around it are :mod:`modelrollout.core.jobs`'s, shared
with ``modelrollout profile --job``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelrollout.core import jobs, names
from modelrollout.core.api.base import parse_duration
from modelrollout.core.api.common import API_VERSION
from modelrollout.core.api.replaytest import ReplayTestSpec
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.result import ReplayResult
from modelrollout.core.replay.run import RUN_ENV, ReplayRun
from modelrollout.core.replay.selection import EventSelection

LABEL_REPLAY_TEST = "modelrollout.io/replaytest"
LABEL_REPLAY_UID = "modelrollout.io/replaytest-uid"
EVENTS_MOUNT = "/events"
RESULT_PATH = "/tmp/result.json"
SHARD_ARGS = ["replay", "--result-line", "--quiet", "--output", RESULT_PATH]
"""A shard's command line: the run itself comes in ``MODELROLLOUT_REPLAY_RUN``."""

TMP_SIZE = "64Mi"

DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "500m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}


@dataclass(frozen=True)
class ShardOutcome:
    """What one shard did: still running, succeeded with a result, or failed."""

    index: int
    state: jobs.ShardState
    result: ReplayResult | None = None
    reason: str = ""
    message: str = ""


def shard_run(spec: ReplayTestSpec, *, events: str, target: str, baseline: str | None) -> ReplayRun:
    """The run every shard of a ReplayTest receives (each takes its own index).

    Success criteria are left out on purpose: a shard sees only part of the run, so the
    verdict is taken on the merged result by :func:`~.decision.decide`.
    """
    options = ReplayOptions.model_validate(spec.model_dump(include=set(ReplayOptions.model_fields)))
    return ReplayRun(
        events=events,
        target=target,
        baseline=baseline,
        rate=spec.rate,
        selection=spec.selection or EventSelection(),
        options=options,
        shard_count=spec.parallelism,
    )


def events_mount(spec: ReplayTestSpec) -> jobs.DataMount | None:
    """The volume a Job pod reads the events from; None for a URL."""
    events = spec.events
    if events.config_map_key_ref is not None:
        ref = events.config_map_key_ref
        return jobs.DataMount(EVENTS_MOUNT, config_map=ref.name, key=ref.key)
    if events.volume is not None:
        return jobs.DataMount(EVENTS_MOUNT, claim=events.volume.claim_name, path=events.volume.path)
    return None


def events_location(spec: ReplayTestSpec) -> str:
    """Where a Job pod finds the events: a mounted file or the URL."""
    mount = events_mount(spec)
    if mount is not None:
        return mount.location()
    assert spec.events.url is not None
    return spec.events.url


def job_manifest(
    rt: dict[str, Any],
    spec: ReplayTestSpec,
    *,
    image: str,
    run: ReplayRun,
    pull_policy: str = "IfNotPresent",
) -> dict[str, Any]:
    """The Indexed Job that runs the shards: each pod gets the run in its environment."""
    meta = rt["metadata"]
    labels = {
        LABEL_REPLAY_TEST: meta["name"],
        LABEL_REPLAY_UID: meta["uid"],
        "app.kubernetes.io/managed-by": "modelrollout",
        "app.kubernetes.io/component": "replay",
    }
    data = events_mount(spec)
    container = jobs.container(
        "replay",
        image=image,
        args=SHARD_ARGS,
        pull_policy=pull_policy,
        resources=spec.resources or DEFAULT_RESOURCES,
        env=[{"name": RUN_ENV, "value": run.to_json()}],
        data=data,
    )
    owner = {
        "apiVersion": API_VERSION,
        "kind": "ReplayTest",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return jobs.indexed_job(
        name=names.job_name(meta["name"], int(meta.get("generation") or 1)),
        namespace=meta["namespace"],
        labels=labels,
        container=container,
        count=spec.parallelism,
        deadline_seconds=int(parse_duration(spec.active_deadline)),
        tmp_size=TMP_SIZE,
        data=data,
        owner_references=[owner],
    )


def pod_outcome(
    pod: dict[str, Any], parse: Callable[[dict[str, Any]], ReplayResult | None]
) -> ShardOutcome:
    """Classify one Job pod (:func:`~modelrollout.core.jobs.pod_state`). ``parse`` reads a
    succeeded pod's log into a result (or None)."""
    state = jobs.pod_state(pod)
    result = parse(pod) if state.state == "succeeded" else None
    return ShardOutcome(
        state.index, state.state, result=result, reason=state.reason, message=state.message
    )
