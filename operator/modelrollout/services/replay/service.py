"""Reconcile one ReplayTest: observe, decide, act, write the status once.

This is the I/O shell around :func:`modelrollout.core.replay.decision.decide`. It reads
the object, checks the ConfigMaps it refers to, builds the run (the endpoints' URLs, where
the shards read the events) and asks the executor how the shards are doing; then it starts
or stops the shards as decided, records the Events and writes the status with one merge
patch. A finished ReplayTest is left alone until its spec changes.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from modelrollout.core import errors, names
from modelrollout.core.api import modeldeployment, replaytest
from modelrollout.core.api.base import readable
from modelrollout.core.api.common import Endpoint
from modelrollout.core.api.modeldeployment import ModelDeployment
from modelrollout.core.api.replaytest import ReplayTest, ReplayTestSpec, ReplayTestStatus
from modelrollout.core.clock import utcnow
from modelrollout.core.references import replay_test_refs
from modelrollout.core.replay import decision, shards
from modelrollout.services import catalog, reconciling
from modelrollout.services.config import OperatorConfig
from modelrollout.services.kube import Kube
from modelrollout.services.replay.executors import (
    KINDS,
    Execution,
    ReplayExecutor,
    UnknownExecutor,
)
from modelrollout.services.replay.executors.job import JobExecutor
from modelrollout.services.replay.executors.local import LocalExecutor

log = logging.getLogger(__name__)

LABEL_REPLAY_TEST = shards.LABEL_REPLAY_TEST


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
            test = ReplayTest.model_validate(readable(raw, ReplayTestStatus))
        except ValidationError as err:
            return reconciling.mark_invalid(
                self.kube, replaytest.PLURAL, raw, reconciling.describe(err), utcnow()
            )
        if decision.settled(test, generation):
            return reconciling.Done(resync=False)
        missing = reconciling.find_missing(self.kube, namespace, replay_test_refs(test.spec))
        execution, invalid = None, None
        if not missing:
            try:
                execution = self._execution(raw, test.spec, generation)
            except errors.InvalidSpec as exc:
                invalid = str(exc)
        decided = decision.decide(
            decision.Observed(
                test=test,
                generation=generation,
                executor=self.executor.name,
                now=utcnow(),
                missing=missing,
                invalid=invalid,
                shards=self.executor.observe(execution) if execution else None,
            )
        )
        if execution is not None and decided.start:
            self.executor.start(execution)
        if execution is not None and decided.stop:
            self.executor.stop(execution)
        ended = ("Succeeded", "Failed")
        if (
            decided.status.phase in ended
            and decided.status.result is not None
            and (test.status is None or test.status.phase not in ended)
        ):
            self._record(raw, decided.status)
        return reconciling.conclude(
            self.kube, replaytest.PLURAL, raw, decided.status, decided.events, decided.requeue_after
        )

    def _record(self, raw: dict[str, Any], status: ReplayTestStatus) -> None:
        """Put a labelled test's capacity into the catalog (see services/catalog.py)."""
        assert status.result is not None
        try:
            catalog.record_capacity(self.kube, raw, status.result, status.verdict, utcnow())
        except errors.ModelRolloutError as exc:  # the test's own status comes first
            log.warning("catalog: capacity of %s not recorded: %s", raw["metadata"]["name"], exc)

    def _execution(self, raw: dict[str, Any], spec: ReplayTestSpec, generation: int) -> Execution:
        meta = raw["metadata"]
        namespace = meta["namespace"]
        run = shards.shard_run(
            spec,
            events=self.executor.events(namespace, meta["name"], spec),
            target=self._url(namespace, spec.target, "spec.target"),
            baseline=(
                self._url(namespace, spec.baseline, "spec.baseline")
                if spec.baseline is not None
                else None
            ),
        )
        return Execution(
            namespace=namespace,
            name=meta["name"],
            uid=meta["uid"],
            generation=generation,
            spec=spec,
            body=raw,
            run=run,
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
