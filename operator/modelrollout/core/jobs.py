"""Indexed Jobs: the hardened pod, the Job around it, and how its pods are read.

Two things run as the pods of one Indexed Job: the shards of a ReplayTest, and the
shards of ``modelrollout profile --job``. Both want the same Job: ``completions`` and
``parallelism`` equal to the number of shards, each pod told its index by the Job
controller (``JOB_COMPLETION_INDEX``), no retry of a failed shard (``backoffLimit: 0``:
a replay shard run twice sends its events twice, a profile shard run twice is wasted
time, and either way the user wants the first error, not the third), and a pod that Pod
Security "restricted" admits: non-root, a read-only root filesystem with a writable
``/tmp``, no service account token, every capability dropped, the runtime's default
seccomp profile. The shards report through their logs, so the pods need no API access.

Both also read their data the same way: a URL, or a file of a mounted ConfigMap or
PersistentVolumeClaim (:class:`DataMount`).

The manifests are built here, once; reading a pod's state, a Job's failure and the
marked line a shard prints last are here too, so that the replay executor and the
profile command judge a pod in the same words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
DATA_VOLUME = "data"
TMP_VOLUME = "tmp"

TERMINAL_WAITING = frozenset(
    {
        "ErrImagePull",
        "ErrImageNeverPull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
"""Waiting reasons a pod does not recover from by itself: the shard has failed."""

POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}

ShardState = Literal["pending", "running", "succeeded", "failed"]


@dataclass(frozen=True)
class DataMount:
    """A dataset file the pods read from a mounted volume.

    ``config_map`` mounts a ConfigMap (``key`` the file, or every key when None);
    ``claim`` mounts a PersistentVolumeClaim read-only (``path`` the file on it). A
    ConfigMap is mounted ``optional`` when asked, so that a missing ConfigMap or key is a
    file the shard does not find (and says so in its log), not a pod that waits for its
    volume until the deadline.
    """

    mount_path: str
    config_map: str | None = None
    key: str | None = None
    claim: str | None = None
    path: str = ""
    optional: bool = False

    def volume(self) -> dict[str, Any]:
        if self.config_map is not None:
            source: dict[str, Any] = {"name": self.config_map}
            if self.key is not None:
                source["items"] = [{"key": self.key, "path": self.key}]
            if self.optional:
                source["optional"] = True
            return {"name": DATA_VOLUME, "configMap": source}
        assert self.claim is not None, "a DataMount names a ConfigMap or a claim"
        return {
            "name": DATA_VOLUME,
            "persistentVolumeClaim": {"claimName": self.claim, "readOnly": True},
        }

    def mount(self) -> dict[str, Any]:
        return {"name": DATA_VOLUME, "mountPath": self.mount_path, "readOnly": True}

    def location(self) -> str:
        """Where the pod finds the dataset."""
        if self.config_map is not None:
            return f"{self.mount_path}/{self.key}" if self.key is not None else self.mount_path
        return f"{self.mount_path}/{self.path.lstrip('/')}"


def container(
    name: str,
    *,
    image: str,
    args: Sequence[str],
    pull_policy: str,
    resources: Mapping[str, Any],
    env: Sequence[Mapping[str, Any]] = (),
    data: DataMount | None = None,
) -> dict[str, Any]:
    """A shard's container: hardened, ``/tmp`` writable, the data mounted read-only."""
    mounts: list[dict[str, Any]] = [{"name": TMP_VOLUME, "mountPath": "/tmp"}]
    if data is not None:
        mounts.append(data.mount())
    spec: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": pull_policy,
        "args": list(args),
        "resources": dict(resources),
        "volumeMounts": mounts,
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if env:
        spec["env"] = [dict(e) for e in env]
    return spec


def indexed_job(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    container: Mapping[str, Any],
    count: int,
    deadline_seconds: int,
    tmp_size: str,
    data: DataMount | None = None,
    owner_references: Sequence[Mapping[str, Any]] = (),
    ttl_seconds: int | None = None,
) -> dict[str, Any]:
    """An Indexed Job of ``count`` pods, all at once, none retried."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if owner_references:
        metadata["ownerReferences"] = [dict(ref) for ref in owner_references]
    volumes: list[dict[str, Any]] = [{"name": TMP_VOLUME, "emptyDir": {"sizeLimit": tmp_size}}]
    if data is not None:
        volumes.append(data.volume())
    spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": count,
        "parallelism": count,
        "backoffLimit": 0,
        "activeDeadlineSeconds": max(1, deadline_seconds),
        "template": {
            "metadata": {"labels": dict(labels)},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": POD_SECURITY_CONTEXT,
                "containers": [dict(container)],
                "volumes": volumes,
            },
        },
    }
    if ttl_seconds is not None:
        spec["ttlSecondsAfterFinished"] = ttl_seconds
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


# -- reading pods and Jobs -----------------------------------------------------------------


@dataclass(frozen=True)
class PodState:
    """Where one pod of an Indexed Job stands."""

    index: int
    state: ShardState
    name: str = ""
    reason: str = ""
    message: str = ""


def pod_state(pod: Mapping[str, Any]) -> PodState:
    """Classify one Job pod: a terminal waiting reason (an image that cannot be pulled)
    fails it at once, as a failed phase does."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    index = int(labels.get(COMPLETION_INDEX_LABEL, 0))
    name = str(meta.get("name", ""))
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in TERMINAL_WAITING:
            return PodState(
                index,
                "failed",
                name,
                reason=str(waiting["reason"]),
                message=str(waiting.get("message", "")),
            )
    if phase == "Succeeded":
        return PodState(index, "succeeded", name)
    if phase == "Failed":
        message = status.get("message") or _termination_message(status)
        return PodState(
            index, "failed", name, str(status.get("reason") or "PodFailed"), str(message)
        )
    return PodState(index, "running" if phase == "Running" else "pending", name)


def waiting_reason(pod: Mapping[str, Any]) -> str:
    """Why a pod that has not finished is not running yet, when its status says:
    ``Unschedulable: 0/1 nodes are available: ...`` or a container's waiting reason."""
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            reason = str(cond.get("reason") or "Unschedulable")
            message = str(cond.get("message") or "").strip()
            return f"{reason}: {message}" if message else reason
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            message = str(waiting.get("message") or "").strip()
            return f"{waiting['reason']}: {message}" if message else str(waiting["reason"])
    return ""


def _termination_message(status: Mapping[str, Any]) -> str:
    for cs in status.get("containerStatuses") or []:
        terminated = (cs.get("state") or {}).get("terminated") or {}
        if terminated:
            message = str(terminated.get("message") or "").strip()
            code = f"exit code {terminated.get('exitCode')}"
            return f"{code}: {message}" if message else code
    return ""


class Indexed(Protocol):
    @property
    def index(self) -> int: ...

    @property
    def state(self) -> ShardState: ...


T = TypeVar("T", bound=Indexed)
_RANK = {"succeeded": 3, "failed": 2, "running": 1, "pending": 0}


def latest_per_index(shards: Iterable[T]) -> list[T]:
    """One entry per index, the furthest along (a pod replaced by the Job controller
    leaves its predecessor behind for a while), in index order."""
    best: dict[int, T] = {}
    for shard in shards:
        current = best.get(shard.index)
        if current is None or _RANK[shard.state] > _RANK[current.state]:
            best[shard.index] = shard
    return [best[i] for i in sorted(best)]


def job_failure(job: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(reason, message)`` of a Job's Failed condition, or None."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            reason = str(cond.get("reason") or "JobFailed")
            return reason, str(cond.get("message") or reason)
    return None


def marked_line(text: str, marker: str) -> str | None:
    """What follows ``marker`` on the last line of ``text`` (a pod's log) that holds it;
    anything before the marker on that line (a log timestamp) is ignored."""
    for line in reversed(text.splitlines()):
        position = line.find(marker)
        if position >= 0:
            return line[position + len(marker) :].strip()
    return None


def last_lines(text: str, count: int) -> list[str]:
    """The last ``count`` non-blank lines of a log."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[-count:] if count > 0 else []
