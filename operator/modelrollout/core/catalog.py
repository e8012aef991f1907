"""The catalog: a measured record of every version a ModelDeployment rolls out, and the
suggestions made from those records. Pure functions; the I/O is services/catalog.py.

* :func:`stages_now` says which versions a reconcile moved, and to which stage.
* :func:`update` folds what a reconcile knows about one version into its record.
* :func:`suggest` ranks records against a user's constraints and says why each qualifies
  or not; :func:`manifest` writes the ModelDeployment that rolls the chosen one out.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelrollout.core.api.modeldeployment import ModelDeployment, ModelDeploymentStatus
from modelrollout.core.api.modelversion import (
    CATEGORY_LABEL,
    SUBCATEGORY_LABEL,
    ApiDefinition,
    BakeFigures,
    CapacityFigures,
    ContainerResources,
    LatencyFigures,
    ModelVersionStatus,
    ReplayFigures,
    SloFigure,
    Stage,
    StageEntry,
)
from modelrollout.core.clock import parse_rfc3339, rfc3339
from modelrollout.core.replay.result import ReplaySummary

MAX_STAGES = 64


def record_name(deployment: str, version: str) -> str:
    """The ModelVersion's name: ``<deployment>-<version>``, made a valid object name (a
    short hash is added when the version had to be changed, so two versions never meet)."""
    raw = f"{deployment}-{version}"
    clean = re.sub(r"[^a-z0-9.-]", "-", raw.lower()).strip("-.")
    if clean != raw or len(clean) > 200:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        clean = f"{clean[:200].rstrip('-.')}-{digest}"
    return clean


# -- what a reconcile moved --------------------------------------------------------------


def stages_now(
    before: ModelDeploymentStatus | None, after: ModelDeploymentStatus
) -> dict[str, tuple[Stage, str]]:
    """Each version the status speaks of, with its stage now and why (the status message)."""
    out: dict[str, tuple[Stage, str]] = {}
    why = after.message
    if after.stable_version:
        out[after.stable_version] = ("Production", why)
    if after.phase in ("NonProduction", "Baking") and after.candidate_version:
        out[after.candidate_version] = (after.phase, why)
    if after.phase in ("RolledBack", "Failed"):
        gone = after.candidate_version or (after.history[0].version if after.history else None)
        if gone and gone != after.stable_version:
            out[gone] = (after.phase, why)
    if after.reverted is not None and after.reverted.version != after.stable_version:
        out[after.reverted.version] = ("RolledBack", after.reverted.reason)
    old = before.stable_version if before is not None else None
    if old and old != after.stable_version and old not in out:
        out[old] = ("Retired", why)
    return out


def measured_version(
    before: ModelDeploymentStatus | None, after: ModelDeploymentStatus
) -> str | None:
    """The version the status's replay, analysis and shadow measure: the candidate, or the
    one this reconcile just promoted or rolled back. Never the stable version beside it."""
    return after.candidate_version or (before.candidate_version if before else None)


def changed(before: ModelDeploymentStatus | None, after: ModelDeploymentStatus) -> bool:
    """Whether a reconcile changed anything a record shows (so idle reconciles write none)."""
    if before is None:
        return True
    keys = ("phase", "stable_version", "candidate_version", "replay_result", "shadow", "reverted")
    if any(getattr(before, k) != getattr(after, k) for k in keys):
        return True
    return [(r.name, r.successful, r.failed) for r in before.analysis] != [
        (r.name, r.successful, r.failed) for r in after.analysis
    ]


# -- folding one reconcile into a record ---------------------------------------------------


@dataclass(frozen=True)
class ReplaySeen:
    """A finished ReplayTest of the version."""

    name: str
    verdict: str
    summary: ReplaySummary
    finished_at: str | None
    predecessor: str | None = None


@dataclass(frozen=True)
class VersionView:
    """What one reconcile knows about one version."""

    md: ModelDeployment
    version: str
    stage: Stage
    reason: str
    template: dict[str, Any] | None = None
    template_hash: str | None = None
    replicas: int | None = None
    replay: ReplaySeen | None = None
    bake: BakeFigures | None = None
    live_requests: float | None = None
    measured_at: str | None = None


def _resources(template: Mapping[str, Any] | None) -> list[ContainerResources]:
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    out = []
    for container in containers[:16]:
        resources = container.get("resources") or {}
        out.append(
            ContainerResources(
                container=str(container.get("name", "")),
                requests={k: str(v) for k, v in (resources.get("requests") or {}).items()},
                limits={k: str(v) for k, v in (resources.get("limits") or {}).items()},
            )
        )
    return out


def replay_figures(seen: ReplaySeen) -> ReplayFigures:
    s = seen.summary
    quality = s.quality
    latency = s.latency_ms
    return ReplayFigures(
        replay_test=seen.name,
        finished_at=seen.finished_at,
        verdict=seen.verdict,
        requests=s.counts.sent,
        latency_ms=LatencyFigures(
            p50=latency.p50, p90=latency.p90, p99=latency.p99, p999=latency.p999
        ),
        throughput=s.throughput,
        error_rate=s.error_rate,
        availability=s.availability,
        accuracy=quality.accuracy if quality else None,
        auc=quality.auc if quality else None,
        agreement=s.comparison.agreement if s.comparison else None,
        predecessor=seen.predecessor if s.comparison else None,
    )


def capacity_figures(seen: ReplaySeen) -> CapacityFigures | None:
    report = seen.summary.capacity
    if report is None:
        return None
    return CapacityFigures(**report.model_dump(), replay_test=seen.name)


def _api(view: VersionView, previous: ApiDefinition | None, own: bool) -> ApiDefinition | None:
    """The declaration in the spec, for the spec's own version; else what the replay saw;
    else what the record had."""
    declared = view.md.spec.model.api if own else None
    if declared is not None and (declared.request or declared.response):
        return ApiDefinition(
            source="Declared", request=declared.request, response=declared.response
        )
    shape = view.replay.summary.api if view.replay is not None else None
    if shape is None:
        return previous
    return ApiDefinition(
        source="Inferred",
        request=shape.request or None,
        response=shape.response or None,
        samples=shape.request_samples + shape.response_samples,
    )


def _stages(
    previous: list[StageEntry], stage: Stage, reason: str, now: str
) -> tuple[list[StageEntry], float]:
    """The history with ``stage`` current; the seconds of a Production stay it closed."""
    entries = [e.model_copy() for e in previous]
    if entries and entries[-1].left_at is None and entries[-1].stage == stage:
        return entries, 0.0
    closed = 0.0
    if entries and entries[-1].left_at is None:
        last = entries[-1]
        entries[-1] = last.model_copy(update={"left_at": now, "reason": reason or last.reason})
        if last.stage == "Production":
            closed = (parse_rfc3339(now) - parse_rfc3339(last.entered_at)).total_seconds()
    entries.append(StageEntry(stage=stage, entered_at=now, reason=reason if not entries else ""))
    return entries[-MAX_STAGES:], max(0.0, closed)


def update(
    previous: ModelVersionStatus | None, view: VersionView, now: datetime
) -> ModelVersionStatus:
    """The record after this reconcile. Figures a reconcile did not see are kept."""
    at = rfc3339(now)
    md = view.md
    own = md.spec.model.version == view.version  # the spec describes this version
    labels = md.metadata.get("labels") or {}
    base = previous or ModelVersionStatus(stage=view.stage)
    stages, closed = _stages(list(base.stages), view.stage, view.reason, at)
    usage = base.usage.model_copy(
        update={"production_seconds": base.usage.production_seconds + closed}
    )
    if view.live_requests is not None:
        usage = usage.model_copy(
            update={"live_requests": view.live_requests, "measured_at": view.measured_at or at}
        )
    replay = replay_figures(view.replay) if view.replay is not None else base.replay
    capacity = (capacity_figures(view.replay) if view.replay is not None else None) or base.capacity
    template = view.template if view.template is not None else base.template
    record = base.model_copy(
        update={
            "stage": view.stage,
            "category": labels.get(CATEGORY_LABEL, base.category),
            "subcategory": labels.get(SUBCATEGORY_LABEL, base.subcategory),
            "uri": md.spec.model.uri if own else base.uri,
            "framework": (md.spec.model.framework if own else None) or base.framework,
            "template_hash": view.template_hash or base.template_hash,
            "template": template,
            "replicas": view.replicas if view.replicas is not None else base.replicas,
            "resources": _resources(template) if template is not None else base.resources,
            "api": _api(view, base.api, own),
            "replay": replay,
            "bake": view.bake or base.bake,
            "capacity": capacity,
            "usage": usage,
            "stages": stages,
        }
    )
    if previous is None or record.model_dump(exclude={"updated_at"}) != previous.model_dump(
        exclude={"updated_at"}
    ):
        record = record.model_copy(update={"updated_at": at})
    return record


def bake_figures(status: ModelDeploymentStatus, stage: Stage) -> BakeFigures | None:
    """The bake's figures, when the status holds a bake's analysis or shadow."""
    if not status.analysis and status.shadow is None:
        return None
    outcome = {"Baking": "Running", "Production": "Passed"}.get(stage, "RolledBack")
    slos = [
        SloFigure(
            name=r.name,
            value=r.measurements[-1].value if r.measurements else None,
            successful=r.successful,
            failed=r.failed,
        )
        for r in status.analysis
    ]
    agreement = status.shadow.agreement if status.shadow is not None else None
    return BakeFigures(outcome=outcome, slos=slos, shadow_agreement=agreement)


# -- suggestions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Constraints:
    """What a suggestion must meet; None means no constraint."""

    category: str
    subcategory: str | None = None
    max_p99_ms: float | None = None
    min_accuracy: float | None = None
    min_capacity: float | None = None
    max_error_rate: float | None = None


@dataclass(frozen=True)
class Entry:
    """A record as the suggestion sees it."""

    name: str
    namespace: str
    deployment: str
    model: str
    version: str
    status: ModelVersionStatus


@dataclass(frozen=True)
class Suggestion:
    entry: Entry
    qualifies: bool
    reasons: tuple[str, ...]
    score: tuple[float, ...]


def _check(
    label: str, value: float | None, bound: float | None, *, at_most: bool, unit: str = ""
) -> tuple[bool, str] | None:
    if bound is None:
        return None
    if value is None or math.isnan(value):
        return False, f"{label} not measured (needs {'≤' if at_most else '≥'} {bound:g}{unit})"
    ok = value <= bound if at_most else value >= bound
    sign = ("≤" if at_most else "≥") if ok else (">" if at_most else "<")
    return ok, f"{label} {value:.4g}{unit} {sign} {bound:g}{unit}"


def suggest(entries: Sequence[Entry], want: Constraints) -> list[Suggestion]:
    """Every record of the category, those that meet every constraint first.

    Qualifying versions rank by accuracy (higher first), then p99 latency (lower), then
    capacity (higher); a version that was rolled back or failed its replay never qualifies.
    """
    out = []
    for entry in entries:
        status = entry.status
        if status.category != want.category:
            continue
        if want.subcategory is not None and status.subcategory != want.subcategory:
            continue
        replay = status.replay
        capacity = status.capacity.rate if status.capacity else None
        checks = [
            _check(
                "p99",
                replay.latency_ms.p99 if replay else None,
                want.max_p99_ms,
                at_most=True,
                unit=" ms",
            ),
            _check(
                "accuracy", replay.accuracy if replay else None, want.min_accuracy, at_most=False
            ),
            _check("capacity", capacity, want.min_capacity, at_most=False, unit=" req/s"),
            _check(
                "error rate",
                replay.error_rate if replay else None,
                want.max_error_rate,
                at_most=True,
            ),
        ]
        found = [c for c in checks if c is not None]
        reasons = [text for _, text in found]
        ok = all(passed for passed, _ in found)
        if status.stage in ("RolledBack", "Failed"):
            ok = False
            why = status.stages[-1].reason if status.stages else ""
            reasons.append(f"it was {status.stage}" + (f": {why}" if why else ""))
        elif replay is not None and replay.verdict == "Failed":
            ok = False
            reasons.append(f"its replay {replay.replay_test} failed")
        if not found:
            reasons.append("no constraint given")
        score = (
            -(replay.accuracy if replay and replay.accuracy is not None else -1.0),
            replay.latency_ms.p99 if replay and replay.latency_ms.p99 is not None else math.inf,
            -(capacity if capacity is not None else -1.0),
        )
        out.append(Suggestion(entry, ok, tuple(reasons), score))
    out.sort(key=lambda s: (not s.qualifies, s.score, s.entry.model, s.entry.version))
    return out


def manifest(deployment: Mapping[str, Any], chosen: Entry) -> dict[str, Any]:
    """The ModelDeployment ``deployment`` (as read from the cluster or a file) changed to roll
    out ``chosen``: its version, URI and pod template. Server fields are left out, so the
    result can go to Git or ``kubectl apply`` as it is."""
    meta = deployment.get("metadata") or {}
    keep = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)}
    annotations = {
        k: v
        for k, v in (keep.get("annotations") or {}).items()
        if not k.startswith("kubectl.kubernetes.io/")
    }
    if annotations:
        keep["annotations"] = annotations
    else:
        keep.pop("annotations", None)
    spec = dict(deployment.get("spec") or {})
    model = dict(spec.get("model") or {})
    model["version"] = chosen.version
    if chosen.status.uri:
        model["uri"] = chosen.status.uri
    spec["model"] = model
    if chosen.status.template is not None:
        spec["workload"] = {**(spec.get("workload") or {}), "template": chosen.status.template}
    return {
        "apiVersion": deployment.get("apiVersion", "modelrollout.io/v1alpha1"),
        "kind": "ModelDeployment",
        "metadata": keep,
        "spec": spec,
    }


def production_seconds(status: ModelVersionStatus, now: datetime) -> float:
    """Time spent in production, counting a Production stage still open at ``now``."""
    total = status.usage.production_seconds
    last = status.stages[-1] if status.stages else None
    if last is not None and last.stage == "Production" and last.left_at is None:
        total += max(0.0, (now - parse_rfc3339(last.entered_at)).total_seconds())
    return total
