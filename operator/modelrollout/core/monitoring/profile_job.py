"""``modelrollout profile --job``: a large dataset profiled by the pods of an Indexed Job.

The distributed engine is Kubernetes itself, as for replay: N pods of one Indexed Job
(:mod:`modelrollout.core.jobs`) each run ``modelrollout profile --shard-index I
--shard-count N`` on the same dataset, so shard I reads the lines numbered I modulo N, and
print their profile as the last line of their log (``MODELROLLOUT_PROFILE {...}``). The
command line reads the N lines and merges them with :func:`~.profile.merge_profiles`:
exactly the profile one process would have made, the sketches within their usual rank
error. No pod needs an API token, and no result store is needed: the log is the channel.

This module holds the decisions, pure: where the pods find the data (:class:`DataSource`),
the Job (:func:`job_manifest`), how far the Job has come and why it failed
(:func:`assess`, :func:`failure_message`, :func:`timeout_message`), reading a shard's
line (:func:`parse_profile_line`), the merge of the shards (:func:`merge_shards`) and the
ConfigMap that holds the result, refused over 1 MiB (:func:`config_map_body`). The
service layer does the talking to the apiserver.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from modelrollout.core import jobs, names
from modelrollout.core.jobs import DataMount, PodState
from modelrollout.core.monitoring.profile import (
    CONFIGMAP_BYTES,
    Profile,
    ProfileMergeError,
    merge_profiles,
)

PROFILE_LINE_PREFIX = "MODELROLLOUT_PROFILE "
DATA_MOUNT = "/data"
DEFAULT_KEY = "profile.json"
"""The key of ``--to-configmap NAME`` when no ``/KEY`` is given."""
NAME_PREFIX = "modelrollout-profile"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PROFILE = "modelrollout.io/profile"
CONTAINER = "profile"
TMP_SIZE = "1Gi"
"""Room in each pod's ``/tmp``: a dataset behind a URL is downloaded there."""
TTL_SECONDS = 600
"""A Job the command line did not delete (it was killed) goes this long after it ends."""
LOG_LINES = 5
"""Lines of a failed shard's log quoted in the error."""
DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}


_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_KEY = re.compile(r"[-._a-zA-Z0-9]+")


class BadReference(ValueError):
    """A ``NAME/KEY`` or ``CLAIM/PATH`` flag that does not parse."""


# -- where the data is -----------------------------------------------------------------------


@dataclass(frozen=True)
class DataSource:
    """The dataset as the pods reach it: a URL, or a file of a mounted volume."""

    kind: Literal["url", "configmap", "volume"]
    url: str = ""
    mount: DataMount | None = None

    @classmethod
    def from_url(cls, url: str) -> DataSource:
        if urlsplit(url).scheme not in {"http", "https"} or not urlsplit(url).netloc:
            raise BadReference(
                f"{url!r} is not an http(s) URL; the pods read the dataset from a URL, a "
                "ConfigMap (--data-configmap) or a volume (--data-volume), not from this "
                "machine's files"
            )
        return cls("url", url=url)

    @classmethod
    def from_config_map(cls, ref: str) -> DataSource:
        """``NAME`` or ``NAME/KEY``: without a key, the ConfigMap's only key."""
        name, _, key = ref.partition("/")
        _check_name(name, ref, "NAME[/KEY]")
        if key:
            _check_key(key, ref)
        mount = DataMount(DATA_MOUNT, config_map=name, key=key or None, optional=True)
        return cls("configmap", mount=mount)

    @classmethod
    def from_volume(cls, ref: str) -> DataSource:
        """``CLAIM/PATH``: the file at PATH on the PersistentVolumeClaim CLAIM."""
        claim, _, path = ref.partition("/")
        _check_name(claim, ref, "CLAIM/PATH")
        if not path.strip("/"):
            raise BadReference(f"{ref!r}: name the file on the claim (CLAIM/PATH)")
        return cls("volume", mount=DataMount(DATA_MOUNT, claim=claim, path=path))

    def location(self) -> str:
        """What the pods pass to ``--data``."""
        return self.mount.location() if self.mount is not None else self.url

    def describe(self) -> str:
        """The source in the user's words, for messages."""
        mount = self.mount
        if mount is None:
            return self.url
        if mount.config_map is not None:
            key = f" key {mount.key}" if mount.key else ""
            return f"ConfigMap {mount.config_map}{key}"
        return f"PersistentVolumeClaim {mount.claim} path {mount.path}"


def _check_name(name: str, ref: str, form: str) -> None:
    if len(name) > 253 or not _NAME.fullmatch(name):
        raise BadReference(
            f"{ref!r}: {name!r} is not an object name (lower case letters, digits, '-', '.') "
            f"({form})"
        )


def _check_key(key: str, ref: str) -> None:
    if len(key) > 253 or not _KEY.fullmatch(key) or key in {".", ".."}:
        raise BadReference(
            f"{ref!r}: {key!r} is not a ConfigMap key (letters, digits, '-', '_', '.') (NAME[/KEY])"
        )


def parse_config_map_target(ref: str) -> tuple[str, str]:
    """``NAME`` or ``NAME/KEY`` of ``--to-configmap``; the key defaults to profile.json."""
    name, _, key = ref.partition("/")
    _check_name(name, ref, "NAME[/KEY]")
    key = key or DEFAULT_KEY
    _check_key(key, ref)
    return name, key


# -- the Job ---------------------------------------------------------------------------------


def job_name(suffix: str) -> str:
    """``modelrollout-profile-<suffix>``, room left for the pods' ``-<index>-<random>``."""
    return names.bounded(f"{NAME_PREFIX}-{suffix}", limit=52)


def shard_args(source: DataSource, shard_count: int, extra: Sequence[str] = ()) -> list[str]:
    """A shard's command line: its index from the Job controller, its profile as one line."""
    return [
        "profile",
        "--data", source.location(),
        "--shard-index", f"$({jobs.COMPLETION_INDEX_ENV})",
        "--shard-count", str(shard_count),
        "--profile-line",
        "--quiet",
        *extra,
    ]  # fmt: skip


def job_manifest(
    *,
    name: str,
    namespace: str,
    source: DataSource,
    shard_count: int,
    image: str,
    deadline_seconds: int,
    profile_args: Sequence[str] = (),
    pull_policy: str = "IfNotPresent",
    keep: bool = False,
) -> dict[str, Any]:
    """The Indexed Job of the shards. A Job meant to be deleted by the command line also
    gets a TTL, so it goes even if the command line is killed before it can delete it."""
    labels = {
        LABEL_PROFILE: name,
        LABEL_MANAGED_BY: "modelrollout",
        LABEL_COMPONENT: "profile",
    }
    container = jobs.container(
        CONTAINER,
        image=image,
        args=shard_args(source, shard_count, profile_args),
        pull_policy=pull_policy,
        resources=DEFAULT_RESOURCES,
        data=source.mount,
    )
    return jobs.indexed_job(
        name=name,
        namespace=namespace,
        labels=labels,
        container=container,
        count=shard_count,
        deadline_seconds=deadline_seconds,
        tmp_size=TMP_SIZE,
        data=source.mount,
        ttl_seconds=None if keep else TTL_SECONDS,
    )


# -- how far it has come -----------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """The Job's shards, one per index, as far as they have come."""

    shard_count: int
    shards: list[PodState] = field(default_factory=list)
    job_failure: tuple[str, str] | None = None
    waiting: Mapping[int, str] = field(default_factory=dict)
    """Why a pending shard waits (unschedulable, its volume), by index."""

    @property
    def failed(self) -> PodState | None:
        return next((s for s in self.shards if s.state == "failed"), None)

    @property
    def succeeded(self) -> list[PodState]:
        return [s for s in self.shards if s.state == "succeeded"]

    @property
    def done(self) -> bool:
        return {s.index for s in self.succeeded} == set(range(self.shard_count))

    def summary(self) -> str:
        """``1 of 3 shards done; shard 1 running; shard 2 pending (Unschedulable: ...)``."""
        done = len(self.succeeded)
        parts = [f"{done} of {self.shard_count} shards done"]
        seen = {s.index for s in self.shards}
        for shard in self.shards:
            if shard.state in ("pending", "running"):
                why = self.waiting.get(shard.index)
                parts.append(f"shard {shard.index} {shard.state}" + (f" ({why})" if why else ""))
        missing = [i for i in range(self.shard_count) if i not in seen]
        if missing:
            parts.append(f"no pod for shard(s) {', '.join(map(str, missing))}")
        return "; ".join(parts)


def assess(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], shard_count: int) -> Progress:
    """Where the Job stands, from the Job and its pods."""
    states = jobs.latest_per_index(jobs.pod_state(pod) for pod in pods)
    waiting: dict[int, str] = {}
    for pod in pods:
        state = jobs.pod_state(pod)
        why = jobs.waiting_reason(pod)
        if state.state in ("pending", "running") and why:
            waiting[state.index] = why
    return Progress(
        shard_count=shard_count,
        shards=states,
        job_failure=jobs.job_failure(job),
        waiting=waiting,
    )


def failure_message(shard: PodState, log_tail: Sequence[str], source: DataSource) -> str:
    """A failed shard, in words: its index, its pod, why, and the end of its log."""
    message = shard.message.strip()
    head, _, rest = message.partition(": ")
    if rest.strip() and rest.strip() in "\n".join(log_tail):
        message = head  # "exit code 2: <the log's last line>": the log is quoted below
    why = shard.reason + (f": {message}" if message else "")
    lines = [f"shard {shard.index} (pod {shard.name}) failed: {why}"]
    if shard.reason in jobs.TERMINAL_WAITING:
        lines.append("  the image could not be used: check --image and that the node can pull it")
    elif log_tail:
        lines.append("  last lines of its log:")
        lines += [f"    {line}" for line in log_tail]
    else:
        lines.append("  its log is empty")
    if shard.reason not in jobs.TERMINAL_WAITING:
        lines.append(f"  the data: {source.describe()}, read by the pod as {source.location()}")
    return "\n".join(lines)


def timeout_message(progress: Progress, timeout: str) -> str:
    return f"the Job did not finish within {timeout}: {progress.summary()}"


def job_failed_message(progress: Progress, timeout: str) -> str:
    assert progress.job_failure is not None
    reason, message = progress.job_failure
    if reason == "DeadlineExceeded":
        return timeout_message(progress, timeout)
    return f"the Job failed ({reason}: {message}): {progress.summary()}"


# -- reading and merging the shards ------------------------------------------------------------


def profile_line(profile: Profile) -> str:
    """The line a shard prints last: the marker and the profile as compact JSON."""
    return PROFILE_LINE_PREFIX + profile.model_dump_json(by_alias=True) + "\n"


def parse_profile_line(log: str) -> Profile:
    """The profile on a shard's last marked line; ValueError says what is wrong."""
    payload = jobs.marked_line(log, PROFILE_LINE_PREFIX)
    if payload is None:
        raise ValueError("its log has no MODELROLLOUT_PROFILE line")
    try:
        return Profile.model_validate_json(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the line"
        raise ValueError(
            f"its MODELROLLOUT_PROFILE line ({len(payload):,} bytes) is not a profile: "
            f"{where}: {first['msg']}"
        ) from None


def merge_shards(profiles: Mapping[int, Profile], shard_count: int) -> Profile:
    """The profile of the whole dataset from the profile of every shard, in index order."""
    missing = [i for i in range(shard_count) if i not in profiles]
    if missing:
        raise ProfileMergeError(f"no profile from shard(s) {', '.join(map(str, missing))}")
    extra = sorted(set(profiles) - set(range(shard_count)))
    if extra:
        raise ProfileMergeError(f"shard(s) {', '.join(map(str, extra))} of {shard_count}?")
    return merge_profiles([profiles[i] for i in range(shard_count)])


# -- the ConfigMap ---------------------------------------------------------------------------


class TooLargeError(ValueError):
    """The profile does not fit a ConfigMap; the message names the limit."""


def config_map_bytes(data: Mapping[str, str], binary: Mapping[str, str] | None = None) -> int:
    """What the apiserver counts against a ConfigMap's limit: its keys and values
    (``binaryData`` decoded from its base64)."""
    size = sum(len(key.encode()) + len(value.encode()) for key, value in data.items())
    for key, value in (binary or {}).items():
        size += len(key.encode()) + len(base64.b64decode(value))
    return size


def config_map_body(
    existing: Mapping[str, Any] | None, *, namespace: str, name: str, key: str, text: str
) -> dict[str, Any]:
    """The ConfigMap to create (``existing`` None) or to write back with ``key`` set to
    ``text``, its other keys kept; :class:`TooLargeError` when it would not fit."""
    if existing is None:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {LABEL_MANAGED_BY: "modelrollout", LABEL_COMPONENT: "profile"},
            },
            "data": {key: text},
        }
    else:
        body = copy.deepcopy(dict(existing))
        body["data"] = {**(body.get("data") or {}), key: text}
        binary = {k: v for k, v in (body.get("binaryData") or {}).items() if k != key}
        if "binaryData" in body:
            body["binaryData"] = binary
    size = config_map_bytes(body["data"], body.get("binaryData"))
    if size > CONFIGMAP_BYTES:
        raise TooLargeError(
            f"ConfigMap {name} would hold {size:,} bytes ({size / 1024 / 1024:.2f} MiB), more "
            f"than a ConfigMap holds ({CONFIGMAP_BYTES:,} bytes, 1 MiB, keys and values "
            "together); profile fewer features (--feature) or lower --sketch-k / "
            "--category-limit, or write a file with --output"
        )
    return body
