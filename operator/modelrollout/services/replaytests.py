"""Reconcile one ReplayTest: start its shards, watch them, merge and judge the result.

The decisions (arguments, the Job, the merge, the verdict, the conditions) are pure and
live in :mod:`modelrollout.core.replayjob`; this module gathers what they need and writes
the outcome: the status, once per reconcile, and an Event for each decision. A finished
ReplayTest is left alone until its spec changes (a new generation runs again).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from modelrollout.core import errors, names, replayjob
from modelrollout.core.api import modeldeployment, replaytest
from modelrollout.core.api.common import Endpoint
from modelrollout.core.api.modeldeployment import ModelDeployment
from modelrollout.core.api.replaytest import ReplayTest, ReplayTestSpec, ReplayTestStatus
from modelrollout.core.clock import utcnow
from modelrollout.core.conditions import get_condition, set_condition
from modelrollout.core.references import missing_message, replay_test_refs
from modelrollout.services import reconciling
from modelrollout.services.config import OperatorConfig
from modelrollout.services.executors import KINDS, ReplayExecutor, ReplayRun, UnknownExecutor
from modelrollout.services.executors.job import JobExecutor
from modelrollout.services.executors.local import LocalExecutor
from modelrollout.services.kube import Kube

LABEL_REPLAY_TEST = replayjob.LABEL_REPLAY_TEST
POLL_SECONDS = 2.0


def make_executor(
    kind: str,
    kube: Kube,
    *,
    image: str,
    endpoints: dict[str, str],
    pull_policy: str = "IfNotPresent",
) -> ReplayExecutor:
    """The executor of this kind; unknown kinds are rejected."""
    if kind == "job":
        return JobExecutor(kube, image, pull_policy)
    if kind == "local":
        return LocalExecutor(kube, endpoints)
    raise UnknownExecutor(f"unknown replay executor {kind!r}; choose one of {', '.join(KINDS)}")


def build_service(kube: Kube, config: OperatorConfig) -> ReplayTestService:
    executor = make_executor(
        config.replay_executor,
        kube,
        image=config.replay_image,
        endpoints=config.endpoints,
        pull_policy=config.replay_image_pull_policy,
    )
    return ReplayTestService(kube, executor)


class ReplayTestService:
    def __init__(self, kube: Kube, executor: ReplayExecutor) -> None:
        self.kube = kube
        self.executor = executor

    def reconcile(self, namespace: str, name: str) -> reconciling.Result:
        raw = self.kube.get_custom(replaytest.PLURAL, namespace, name)
        if raw is None or raw["metadata"].get("deletionTimestamp"):
            return reconciling.Gone()
        generation = int(raw["metadata"].get("generation") or 1)
        try:
            body = ReplayTest.model_validate(reconciling.readable(raw, ReplayTestStatus))
        except ValidationError as err:
            return reconciling.mark_invalid(
                self.kube, replaytest.PLURAL, raw, reconciling.describe(err), utcnow()
            )
        spec = body.spec
        status = body.status or ReplayTestStatus()
        if status.observed_generation != generation:
            status = ReplayTestStatus(conditions=status.conditions)
        elif status.phase in ("Succeeded", "Failed"):
            return reconciling.Done(resync=False)  # a finished replay changes only with its spec
        now = utcnow()
        events: list[tuple[str, str, str]] = []
        requeue: float | None = POLL_SECONDS
        missing = reconciling.find_missing(self.kube, namespace, replay_test_refs(spec))
        if missing:
            message = missing_message(missing)
            previous = get_condition(status.conditions, replayjob.READY)
            if previous is None or previous.message != message:
                events.append(("Warning", replayjob.REASON_MISSING_REFERENCE, message))
            status.conditions = set_condition(
                status.conditions,
                type=replayjob.READY,
                status="False",
                reason=replayjob.REASON_MISSING_REFERENCE,
                message=message,
                generation=generation,
                now=now,
            )
            status.observed_generation = generation
            requeue = 10.0
        else:
            status.conditions = set_condition(
                status.conditions,
                type=replayjob.READY,
                status="True",
                reason=replayjob.REASON_REFERENCES_FOUND,
                message="every referenced object exists",
                generation=generation,
                now=now,
            )
            try:
                run = self._run(raw, spec, generation)
            except errors.InvalidSpec as exc:
                status, events = self._invalid(status, exc, generation, now)
                requeue = None
            else:
                started = status.job_name is not None
                self.executor.start(run)
                observation = self.executor.observe(run)
                status.executor = self.executor.name  # type: ignore[assignment]
                status.job_name = observation.job_name or status.job_name or run.name
                if not started:
                    events.append(
                        (
                            "Normal",
                            replayjob.REASON_STARTED,
                            f"replay started with the {self.executor.name} executor "
                            f"({spec.parallelism} shards): {spec.rate.describe()}",
                        )
                    )
                conclusion = replayjob.conclude(
                    status,
                    spec,
                    observation.shards,
                    generation=generation,
                    now=now,
                    job_failure=observation.failure,
                )
                status = conclusion.status
                events += conclusion.events
                if conclusion.done:
                    self.executor.stop(run)
                    requeue = None
        for type_, reason, message in events:
            self.kube.event(raw, type_=type_, reason=reason, message=message, now=now)
        patch = reconciling.status_payload(status, raw.get("status"))
        if patch is not None:
            self.kube.patch_status(replaytest.PLURAL, namespace, name, patch)
        return reconciling.after(requeue)

    def _run(self, raw: dict[str, Any], spec: ReplayTestSpec, generation: int) -> ReplayRun:
        meta = raw["metadata"]
        namespace = meta["namespace"]
        target = replayjob.Target(
            target=self._url(namespace, spec.target, "spec.target"),
            baseline=(
                self._url(namespace, spec.baseline, "spec.baseline")
                if spec.baseline is not None
                else None
            ),
        )
        events = self.executor.events(namespace, meta["name"], spec)
        args = replayjob.shard_args(
            spec, events=events, target=target, shard_count=spec.parallelism
        )
        return ReplayRun(
            namespace=namespace,
            name=meta["name"],
            uid=meta["uid"],
            generation=generation,
            spec=spec,
            body=raw,
            args=args,
        )

    def _url(self, namespace: str, endpoint: Endpoint, field: str) -> str:
        if endpoint.url is not None:
            return endpoint.url
        if endpoint.service is not None:
            svc = endpoint.service
            return self.executor.endpoint(namespace, svc.name, svc.port, svc.path, svc.scheme)
        ref = endpoint.model_deployment
        assert ref is not None
        raw = self.kube.get_custom(modeldeployment.PLURAL, namespace, ref.name)
        if raw is None:
            raise errors.TemporaryError(
                f"{field}.modelDeployment: ModelDeployment {ref.name!r} not found", delay=10
            )
        md = ModelDeployment.model_validate(
            {k: raw[k] for k in ("apiVersion", "kind", "metadata", "spec")}
        )
        service = (
            names.candidate_name(ref.name)
            if ref.track == "candidate"
            else names.stable_name(ref.name)
        )
        return self.executor.endpoint(
            namespace, service, md.spec.serving.service_port, md.spec.serving.predict_path, "http"
        )

    @staticmethod
    def _invalid(
        status: ReplayTestStatus, exc: errors.InvalidSpec, generation: int, now: Any
    ) -> tuple[ReplayTestStatus, list[tuple[str, str, str]]]:
        status.phase = "Failed"
        status.verdict = "Failed"
        status.reasons = [str(exc)]
        status.observed_generation = generation
        for type_ in (replayjob.READY, replayjob.COMPLETE, replayjob.PASSED):
            status.conditions = set_condition(
                status.conditions,
                type=type_,
                status="False",
                reason="InvalidSpec",
                message=str(exc),
                generation=generation,
                now=now,
            )
        return status, [("Warning", "InvalidSpec", str(exc))]
