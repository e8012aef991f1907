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

from modelrollout.core import names, replayjob
from modelrollout.core.api.replaytest import ReplayTestSpec
from modelrollout.core.replay.result import parse_result_line
from modelrollout.core.replayjob import ShardOutcome
from modelrollout.services.executors import Observation, ReplayRun
from modelrollout.services.kube import Kube

FAILED_REASONS = {"DeadlineExceeded", "BackoffLimitExceeded", "FailedIndexes", "PodFailurePolicy"}


class JobExecutor:
    name = "job"

    def __init__(self, kube: Kube, image: str, pull_policy: str = "IfNotPresent") -> None:
        self.kube = kube
        self.image = image
        self.pull_policy = pull_policy

    def events(self, namespace: str, name: str, spec: ReplayTestSpec) -> str:
        return replayjob.events_location(spec)

    def endpoint(self, namespace: str, service: str, port: int, path: str, scheme: str) -> str:
        return f"{scheme}://{service}.{namespace}.svc:{port}{path}"

    def job_name(self, run: ReplayRun) -> str:
        return names.job_name(run.name, run.generation)

    def start(self, run: ReplayRun) -> None:
        job = self.kube.get_job(run.namespace, self.job_name(run))
        if job is not None:
            if not owned_by(job, run.uid):
                self.kube.delete_job(run.namespace, self.job_name(run))
            return
        manifest = replayjob.job_manifest(
            run.body, run.spec, image=self.image, args=run.args, pull_policy=self.pull_policy
        )
        self.kube.apply(manifest)

    def observe(self, run: ReplayRun) -> Observation:
        name = self.job_name(run)
        job = self.kube.get_job(run.namespace, name)
        if job is None or not owned_by(job, run.uid):
            return Observation(shards=[], job_name=name)
        failure = _job_failure(job)
        # By the Job's UID, not its name: pods of a stale Job of the same name may linger.
        uid = job["metadata"]["uid"]
        pods = self.kube.list_pods(run.namespace, f"batch.kubernetes.io/controller-uid={uid}")
        shards = [replayjob.pod_outcome(pod, self._result_of) for pod in pods]
        return Observation(shards=_latest_per_index(shards), failure=failure, job_name=name)

    def _result_of(self, pod: dict[str, Any]) -> Any:
        meta = pod["metadata"]
        try:
            return parse_result_line(self.kube.pod_log(meta["namespace"], meta["name"]))
        except ValueError:
            return None  # a corrupt or truncated line: reported as InvalidResult

    def stop(self, run: ReplayRun) -> None:
        keep = self.job_name(run)
        for job in self._jobs_of(run):
            if job != keep:
                self.kube.delete_job(run.namespace, job)

    def _jobs_of(self, run: ReplayRun) -> list[str]:
        jobs = self.kube.list_jobs(run.namespace, f"{replayjob.LABEL_REPLAY_UID}={run.uid}")
        return sorted(job["metadata"]["name"] for job in jobs)

    def close(self) -> None:
        """Nothing to release: the Jobs belong to the cluster."""


def owned_by(job: dict[str, Any], uid: str) -> bool:
    """Whether the Job's controller is the object with this UID."""
    refs = job.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("controller") and ref.get("uid") == uid for ref in refs)


def _job_failure(job: dict[str, Any]) -> tuple[str, str] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            reason = str(cond.get("reason") or "JobFailed")
            return reason, str(cond.get("message") or reason)
    return None


def _latest_per_index(shards: list[ShardOutcome]) -> list[ShardOutcome]:
    rank = {"succeeded": 3, "failed": 2, "running": 1, "pending": 0}
    best: dict[int, ShardOutcome] = {}
    for shard in shards:
        current = best.get(shard.index)
        if current is None or rank[shard.state] > rank[current.state]:
            best[shard.index] = shard
    return [best[i] for i in sorted(best)]
