"""Drive the rollout decision in tests: observe a state, get a decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelrollout.core import rollout, workloads
from modelrollout.core.api.modeldeployment import ModelDeployment, ModelDeploymentStatus
from modelrollout.core.references import Reference

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MISSING = Reference(
    "ConfigMap", "events", "e.jsonl", "spec.stages.nonProduction.replay.events.configMapKeyRef"
)


def ready(md: ModelDeployment, hash_: str | None = None) -> rollout.DeploymentView:
    return rollout.DeploymentView(
        replicas=2,
        ready_replicas=2,
        template={"spec": {}},
        template_hash=hash_ or workloads.template_hash(md.spec),
    )


def observe(md: ModelDeployment, **kwargs: Any) -> rollout.Decision:
    defaults: dict[str, Any] = {
        "missing": [],
        "stable": None,
        "candidate": None,
        "replay": None,
        "now": NOW,
    }
    defaults.update(kwargs)
    return rollout.decide(rollout.Observed(md=md, **defaults))


def with_status(md: ModelDeployment, status: ModelDeploymentStatus) -> ModelDeployment:
    return md.model_copy(update={"status": status})


def replay(name: str, phase: str, verdict: str, *reasons: str) -> rollout.ReplayView:
    return rollout.ReplayView(name=name, phase=phase, verdict=verdict, reasons=reasons, result=None)


def objects(decision: rollout.Decision) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in decision.apply}


def in_non_production(md: ModelDeployment) -> tuple[ModelDeploymentStatus, str]:
    first = observe(md)
    second = observe(with_status(md, first.status), candidate=ready(md))
    assert second.create_replay is not None
    return second.status, second.create_replay["metadata"]["name"]


def promoted(md: ModelDeployment) -> ModelDeploymentStatus:
    status, name = in_non_production(md)
    return observe(
        with_status(md, status), candidate=ready(md), replay=replay(name, "Succeeded", "Passed")
    ).status
