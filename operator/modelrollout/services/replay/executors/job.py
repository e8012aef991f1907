"""The job executor: shards are the pods of one Indexed Job.

The Job is applied with server-side apply under a name derived from the ReplayTest and
its generation, so applying it again after a restart is a no-op. A Job of that name is
trusted only when its controller owner reference carries this ReplayTest's UID: one left by
a deleted ReplayTest of the same name is deleted, and the next reconcile creates ours.
Results are read from the logs of succeeded pods (the last line,
``MODELROLLOUT_RESULT {...}``), which needs no API token in the replay pods. Jobs of older
generations are deleted when the spec changes.
"""

from __future__ import annotations

from typing import Any

from modelrollout.core import jobs, names
from modelrollout.core.api.replaytest import ReplayTestSpec
from modelrollout.core.replay import shards
from modelrollout.core.replay.decision import Shards
from modelrollout.core.replay.result import ReplayResult, parse_result_line
from modelrollout.core.replay.shards import ShardOutcome
from modelrollout.services.kube import Kube
from modelrollout.services.replay.executors import Execution

FAILED_REASONS = {"DeadlineExceeded", "BackoffLimitExceeded", "FailedIndexes", "PodFailurePolicy"}


class JobExecutor:
    name = "job"

    def __init__(self, kube: Kube, image: str, pull_policy: str = "IfNotPresent") -> None:
        self.kube = kube
        self.image = image
        self.pull_policy = pull_policy

    def events(self, namespace: str, name: str, spec: ReplayTestSpec) -> str:
        return shards.events_location(spec)

    def endpoint(self, namespace: str, service: str, port: int, path: str, scheme: str) -> str:
        return f"{scheme}://{service}.{namespace}.svc:{port}{path}"

    def job_name(self, execution: Execution) -> str:
        return names.job_name(execution.name, execution.generation)

    def start(self, execution: Execution) -> None:
        job = self.kube.get_job(execution.namespace, self.job_name(execution))
        if job is not None:
            if not owned_by(job, execution.uid):
                self.kube.delete_job(execution.namespace, self.job_name(execution))
            return
        manifest = shards.job_manifest(
            execution.body,
            execution.spec,
            image=self.image,
            run=execution.run,
            pull_policy=self.pull_policy,
        )
        self.kube.apply(manifest)

    def observe(self, execution: Execution) -> Shards:
        name = self.job_name(execution)
        job = self.kube.get_job(execution.namespace, name)
        if job is None or not owned_by(job, execution.uid):
            return Shards(name=name)
        return Shards(
            outcomes=shard_outcomes(self.kube, job),
            failure=jobs.job_failure(job),
            started=True,
            name=name,
        )

    def stop(self, execution: Execution) -> None:
        keep = self.job_name(execution)
        for job in self._jobs_of(execution):
            if job != keep:
                self.kube.delete_job(execution.namespace, job)

    def _jobs_of(self, execution: Execution) -> list[str]:
        selector = f"{shards.LABEL_REPLAY_UID}={execution.uid}"
        jobs = self.kube.list_jobs(execution.namespace, selector)
        return sorted(job["metadata"]["name"] for job in jobs)

    def close(self) -> None:
        """Nothing to release: the Jobs belong to the cluster."""


def owned_by(job: dict[str, Any], uid: str) -> bool:
    """Whether the Job's controller is the object with this UID."""
    refs = job.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("controller") and ref.get("uid") == uid for ref in refs)


def shard_outcomes(kube: Kube, job: dict[str, Any]) -> list[ShardOutcome]:
    """How each shard of the Job did, with the result a succeeded shard printed."""
    meta = job["metadata"]
    # By the Job's UID, not its name: pods of a stale Job of the same name may linger.
    pods = kube.list_pods(meta["namespace"], f"{jobs.CONTROLLER_UID_LABEL}={meta['uid']}")

    def result_of(pod: dict[str, Any]) -> ReplayResult | None:
        pod_meta = pod["metadata"]
        try:
            return parse_result_line(kube.pod_log(pod_meta["namespace"], pod_meta["name"]))
        except ValueError:
            return None  # a corrupt or truncated line: reported as InvalidResult

    return jobs.latest_per_index([shards.pod_outcome(pod, result_of) for pod in pods])
