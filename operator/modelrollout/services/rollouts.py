"""Reconcile one ModelDeployment: observe, decide, act, write the status once.

This is the I/O shell around :func:`modelrollout.core.rollout.decide`. It reads the
object fresh from the apiserver (a queued reconcile may run long after the event that
caused it), looks up the referenced ConfigMaps and Secrets, reads the owned Deployments
and the ReplayTest, and hands all of it to ``decide``. Then it applies the owned objects
with server-side apply, creates the ReplayTest, records the Events and writes the status
with one merge patch, skipped when nothing changed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from pydantic import ValidationError

from modelrollout.core import errors, names, rollout
from modelrollout.core.api import modeldeployment, replaytest
from modelrollout.core.api.base import readable
from modelrollout.core.api.modeldeployment import ModelDeployment, ModelDeploymentStatus, Phase
from modelrollout.core.api.replaytest import ReplayTestStatus
from modelrollout.core.clock import parse_rfc3339, utcnow
from modelrollout.core.conditions import get_condition
from modelrollout.core.references import model_deployment_refs
from modelrollout.services import baking, catalog, metrics, reconciling
from modelrollout.services.kube import Kube
from modelrollout.services.monitoring import shadowing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Operator-wide behaviour that is not part of any spec."""

    wait_for_ready: bool = True
    capture_image: str | None = None


USER_FIELDS: dict[str, Any] = {
    "approvals": [],
    "aborted": False,
    "resumedAt": None,
    "retryRequestedAt": None,
    "undo": None,
}


def _replay_view(obj: dict[str, Any] | None) -> rollout.ReplayView | None:
    if obj is None:
        return None
    status = ReplayTestStatus.model_validate(
        {k: v for k, v in (obj.get("status") or {}).items() if k != "kopf"}
    )
    return rollout.ReplayView(
        name=obj["metadata"]["name"],
        phase=status.phase,
        verdict=status.verdict,
        reasons=tuple(status.reasons),
        result=status.result,
        completion_time=status.completion_time,
    )


class RolloutService:
    def __init__(self, kube: Kube, settings: Settings | None = None) -> None:
        self.kube = kube
        self.settings = settings or Settings()

    def reconcile(self, namespace: str, name: str) -> reconciling.Result:
        """One reconcile; says when the next one is due."""
        raw = self.kube.get_custom(modeldeployment.PLURAL, namespace, name)
        if raw is None or raw["metadata"].get("deletionTimestamp"):
            return reconciling.Gone()
        try:
            md = ModelDeployment.model_validate(readable(raw, ModelDeploymentStatus))
        except ValidationError as err:
            return reconciling.mark_invalid(
                self.kube, modeldeployment.PLURAL, raw, reconciling.describe(err), utcnow()
            )
        missing = reconciling.find_missing(self.kube, namespace, model_deployment_refs(md.spec))
        stable = self.kube.get_deployment(namespace, names.stable_name(name))
        candidate = self.kube.get_deployment(namespace, names.candidate_name(name))
        replay_name = md.status.replay_test if md.status else None
        replay = (
            self.kube.get_custom(replaytest.PLURAL, namespace, replay_name) if replay_name else None
        )
        now = utcnow()
        measurements = (
            baking.take_measurements(self.kube, md, now) | baking.window_probes(self.kube, md, now)
            if not missing and rollout.analysis_due(md, now)
            else None
        )
        observed = rollout.Observed(
            md=md,
            missing=missing,
            stable=rollout.DeploymentView.of(stable),
            candidate=rollout.DeploymentView.of(candidate),
            replay=_replay_view(replay),
            now=now,
            wait_for_ready=self.settings.wait_for_ready,
            capture_image=self.settings.capture_image,
            measurements=measurements,
            shadow=shadowing.read_shadow(self.kube, md)
            if not missing and rollout.in_shadow(md)
            else None,
        )
        decision = rollout.decide(observed)
        if not missing:
            # The router first: what it takes over from the owned objects (ReplicaRatio's
            # replicas) must be its own before they leave it out.
            decision.events += baking.apply_weights(self.kube, md, decision.status)
        for obj in decision.apply:
            self.kube.apply(obj)
        if decision.create_replay is not None:
            self.kube.apply_custom(replaytest.PLURAL, decision.create_replay)
        if not missing:
            decision.events += baking.verify_weights(self.kube, md, decision.status, now)
            decision.events += baking.notify(
                self.kube, md, decision.status.phase, list(decision.events), now
            )
        _export_metrics(namespace, name, md.status, decision.status, observed.now)
        try:
            catalog.record_rollout(self.kube, md, md.status, decision.status, observed.replay, now)
        except errors.ModelRolloutError as exc:  # the record waits; the rollout does not
            log.warning("catalog record of %s/%s not written: %s", namespace, name, exc)
        for metric, probe in (measurements or {}).items():
            if probe.bounds is None:
                continue
            for bound, value in (("lower", probe.bounds.min), ("upper", probe.bounds.max)):
                if value is not None:
                    metrics.ANALYSIS_BOUND.labels(namespace, name, metric, bound).set(value)
        return reconciling.conclude(
            self.kube,
            modeldeployment.PLURAL,
            raw,
            decision.status,
            decision.events,
            decision.requeue_after,
            USER_FIELDS,
            now=observed.now,
        )


TALLIES = (
    ("Successful", "successful"),
    ("Failed", "failed"),
    ("Inconclusive", "inconclusive"),
    ("Error", "error"),
)


def _export_metrics(
    namespace: str,
    name: str,
    before: ModelDeploymentStatus | None,
    after: ModelDeploymentStatus,
    now: datetime,
) -> None:
    for phase in get_args(Phase):
        metrics.PHASE.labels("ModelDeployment", namespace, name, phase).set(
            1.0 if after.phase == phase else 0.0
        )
    weight = after.traffic.candidate_weight if after.traffic else 0
    metrics.CANDIDATE_WEIGHT.labels(namespace, name).set(float(weight))
    # Measurements taken by this reconcile: the growth of the status tallies (which start
    # again from zero for a new candidate).
    old = {result.name: result for result in (before.analysis if before else [])}
    for result in after.analysis:
        if result.measurements:
            latest = result.measurements[-1].value
            metrics.ANALYSIS_VALUE.labels(namespace, name, result.name).set(
                math.nan if latest is None else latest
            )
        for phase, field in TALLIES:
            count = int(getattr(result, field))
            previous = int(getattr(old[result.name], field)) if result.name in old else 0
            grown = count - previous if count >= previous else count
            if grown > 0:
                metrics.MEASUREMENTS.labels(namespace, name, result.name, phase).inc(grown)
    if after.phase == "RolledBack" and (before is None or before.phase != "RolledBack"):
        rolled = get_condition(after.conditions, "RolledBack")
        metrics.ROLLBACKS.labels(namespace, name, rolled.reason if rolled else "Unknown").inc()
        failed = [
            parse_rfc3339(m.started_at)
            for result in after.analysis
            for m in result.measurements
            if m.phase == "Failed"
        ]
        if failed:  # the weight went back to 0 in this reconcile
            metrics.ROLLBACK_SECONDS.observe(max(0.0, (now - min(failed)).total_seconds()))
