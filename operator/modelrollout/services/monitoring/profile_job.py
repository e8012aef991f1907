"""Running ``modelrollout profile --job``: create the Job, watch it, merge, clean up.

The decisions are :mod:`modelrollout.core.monitoring.profile_job`'s; this module does the
talking. It polls the Job and its pods (by the Job's UID) until every shard has
succeeded, one has failed, or the deadline has passed, with the clock and the pause
between polls handed in so that tests need no real time. A failed shard is reported at
once, with the end of its log; the shards' profiles are read from their logs and merged.
The Job is deleted afterwards (in the background: its pods go with it) unless kept, also
when the wait ends in an error or an interrupt.

The user needs: ``create``, ``get`` and ``delete`` on jobs, ``list`` on pods, ``get`` on
``pods/log`` and, to write the result, ``get``, ``create`` and ``update`` on configmaps
(``examples/profile-job-rbac.yaml``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelrollout.core import errors, jobs
from modelrollout.core.jobs import PodState
from modelrollout.core.monitoring import profile_job
from modelrollout.core.monitoring.profile import Profile, ProfileMergeError
from modelrollout.core.monitoring.profile_job import DataSource, Progress
from modelrollout.services.kube import Kube

POLL_SECONDS = 0.5
PROFILE_LOG_BYTES = 64 * 1024 * 1024
"""How much of a succeeded shard's log is read: far more than a profile line takes."""
WRITE_ATTEMPTS = 5


class ProfileJobError(Exception):
    """The Job did not give a profile; the message says which shard and why."""


@dataclass
class ProfileJob:
    """One run: the Job's manifest, where its data is, how long to wait."""

    kube: Kube
    manifest: dict[str, Any]
    source: DataSource
    shard_count: int
    timeout: float
    timeout_text: str
    keep: bool = False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    interval: float = POLL_SECONDS
    on_progress: Callable[[Progress], None] | None = None
    last_summary: str = field(default="", init=False)

    @property
    def namespace(self) -> str:
        return str(self.manifest["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    def run(self) -> Profile:
        """Create the Job, wait for its shards, merge them; delete the Job unless kept."""
        self.kube.create_job(self.manifest)
        try:
            return self._wait()
        finally:
            if not self.keep:
                self.kube.delete_job(self.namespace, self.name)

    def _wait(self) -> Profile:
        deadline = self.clock() + self.timeout
        while True:
            progress = self._observe()
            if self.on_progress is not None and progress.summary() != self.last_summary:
                self.on_progress(progress)
            self.last_summary = progress.summary()
            failed = progress.failed
            if failed is not None:
                raise ProfileJobError(
                    profile_job.failure_message(failed, self._tail(failed), self.source)
                )
            if progress.done:
                return self._merge(progress.succeeded)
            if progress.job_failure is not None:
                raise ProfileJobError(profile_job.job_failed_message(progress, self.timeout_text))
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise ProfileJobError(profile_job.timeout_message(progress, self.timeout_text))
            self.sleep(min(self.interval, remaining))

    def _observe(self) -> Progress:
        job = self.kube.get_job(self.namespace, self.name)
        if job is None:
            raise ProfileJobError(f"Job {self.namespace}/{self.name} was deleted while it ran")
        # By the Job's UID: pods of an earlier Job of the same name may linger.
        selector = f"{jobs.CONTROLLER_UID_LABEL}={job['metadata']['uid']}"
        pods = self.kube.list_pods(self.namespace, selector)
        return profile_job.assess(job, pods, self.shard_count)

    def _tail(self, shard: PodState) -> list[str]:
        if not shard.name or shard.reason in jobs.TERMINAL_WAITING:
            return []  # the container never started: there is no log
        try:
            log = self.kube.pod_log(
                self.namespace, shard.name, tail_lines=profile_job.LOG_LINES * 4
            )
        except errors.ApiError:
            return []
        return jobs.last_lines(log, profile_job.LOG_LINES)

    def _merge(self, shards: list[PodState]) -> Profile:
        profiles: dict[int, Profile] = {}
        for shard in shards:
            log = self.kube.pod_log(self.namespace, shard.name, tail_bytes=PROFILE_LOG_BYTES)
            try:
                profiles[shard.index] = profile_job.parse_profile_line(log)
            except ValueError as error:
                tail = "\n".join(f"    {line}" for line in jobs.last_lines(log, 3))
                raise ProfileJobError(
                    f"shard {shard.index} (pod {shard.name}) succeeded, but {error}"
                    + (f"\n  last lines of its log:\n{tail}" if tail else "")
                ) from None
        try:
            return profile_job.merge_shards(profiles, self.shard_count)
        except ProfileMergeError as error:
            raise ProfileJobError(f"the shards' profiles do not merge: {error}") from None


def write_config_map(kube: Kube, namespace: str, name: str, key: str, text: str) -> None:
    """Set ``key`` of ConfigMap ``name`` to ``text``, creating it if need be, other keys
    kept; :class:`~.profile_job.TooLargeError` when it would not fit."""
    for _ in range(WRITE_ATTEMPTS):
        existing = kube.get_config_map(namespace, name)
        body = profile_job.config_map_body(
            existing, namespace=namespace, name=name, key=key, text=text
        )
        try:
            if existing is None:
                kube.create_config_map(body)
            else:
                kube.replace_config_map(body)
        except (errors.AlreadyExists, errors.Conflict):
            continue  # written by someone else in between: read it again
        return
    raise ProfileJobError(f"ConfigMap {namespace}/{name} kept changing; try again")
