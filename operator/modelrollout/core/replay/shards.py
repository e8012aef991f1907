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
fast failure on terminal waiting reasons such as an image that cannot be pulled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from modelrollout.core import names
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

TERMINAL_WAITING = {
    "ErrImagePull",
    "ErrImageNeverPull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}

DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "500m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}


@dataclass(frozen=True)
class ShardOutcome:
    """What one shard did: still running, succeeded with a result, or failed."""

    index: int
    state: Literal["pending", "running", "succeeded", "failed"]
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


def events_location(spec: ReplayTestSpec) -> str:
    """Where a Job pod finds the events: a mounted file or the URL."""
    events = spec.events
    if events.url is not None:
        return events.url
    if events.config_map_key_ref is not None:
        return f"{EVENTS_MOUNT}/{events.config_map_key_ref.key}"
    assert events.volume is not None
    return f"{EVENTS_MOUNT}/{events.volume.path.lstrip('/')}"


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
    name = names.job_name(meta["name"], int(meta.get("generation") or 1))
    labels = {
        LABEL_REPLAY_TEST: meta["name"],
        LABEL_REPLAY_UID: meta["uid"],
        "app.kubernetes.io/managed-by": "modelrollout",
        "app.kubernetes.io/component": "replay",
    }
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if spec.events.config_map_key_ref is not None:
        ref = spec.events.config_map_key_ref
        volumes.append(
            {
                "name": "events",
                "configMap": {"name": ref.name, "items": [{"key": ref.key, "path": ref.key}]},
            }
        )
        mounts.append({"name": "events", "mountPath": EVENTS_MOUNT, "readOnly": True})
    elif spec.events.volume is not None:
        volumes.append(
            {
                "name": "events",
                "persistentVolumeClaim": {
                    "claimName": spec.events.volume.claim_name,
                    "readOnly": True,
                },
            }
        )
        mounts.append({"name": "events", "mountPath": EVENTS_MOUNT, "readOnly": True})
    container = {
        "name": "replay",
        "image": image,
        "imagePullPolicy": pull_policy,
        "args": SHARD_ARGS,
        "env": [{"name": RUN_ENV, "value": run.to_json()}],
        "resources": spec.resources or DEFAULT_RESOURCES,
        "volumeMounts": mounts,
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "ReplayTest",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.parallelism,
            "parallelism": spec.parallelism,
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(1, int(parse_duration(spec.active_deadline))),
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def pod_outcome(
    pod: dict[str, Any], parse: Callable[[dict[str, Any]], ReplayResult | None]
) -> ShardOutcome:
    """Classify one Job pod. ``parse`` reads the pod's log into a result (or None)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    index = int(labels.get("batch.kubernetes.io/job-completion-index", 0))
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in TERMINAL_WAITING:
            return ShardOutcome(
                index,
                "failed",
                reason=str(waiting["reason"]),
                message=str(waiting.get("message", "")),
            )
    if phase == "Succeeded":
        return ShardOutcome(index, "succeeded", result=parse(pod))
    if phase == "Failed":
        message = status.get("message") or _termination_message(status)
        return ShardOutcome(
            index, "failed", reason=str(status.get("reason") or "PodFailed"), message=message
        )
    return ShardOutcome(index, "running" if phase == "Running" else "pending")


def _termination_message(status: dict[str, Any]) -> str:
    for cs in status.get("containerStatuses") or []:
        terminated = (cs.get("state") or {}).get("terminated") or {}
        if terminated:
            return f"exit code {terminated.get('exitCode')}: {terminated.get('message', '')}"
    return ""


def latest_per_index(shards: list[ShardOutcome]) -> list[ShardOutcome]:
    """One outcome per index, the furthest along (a pod replaced by the Job controller
    leaves its predecessor behind for a while)."""
    rank = {"succeeded": 3, "failed": 2, "running": 1, "pending": 0}
    best: dict[int, ShardOutcome] = {}
    for shard in shards:
        current = best.get(shard.index)
        if current is None or rank[shard.state] > rank[current.state]:
            best[shard.index] = shard
    return [best[i] for i in sorted(best)]
