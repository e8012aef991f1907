"""The ModelVersion kind: the catalog's record of one version of one model.

The operator writes these objects whole (no one edits them, and nothing of them is kept in
Git); each is owned by its ModelDeployment, so Argo CD and Flux show it as a child of the
object they manage and never try to prune or revert it, and it goes when the
ModelDeployment goes. What a record holds is measured (replay, bake, production), never
declared by hand, except the API definition when ``spec.model.api`` declares it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from modelrollout.core.api.base import ApiModel
from modelrollout.core.api.common import EmbeddedObject
from modelrollout.core.replay.capacity import CapacityReport

KIND = "ModelVersion"
PLURAL = "modelversions"

CATEGORY_LABEL = "modelrollout.io/category"
SUBCATEGORY_LABEL = "modelrollout.io/subcategory"

Stage = Literal["NonProduction", "Baking", "Production", "RolledBack", "Failed", "Retired"]


class ModelVersionSpec(ApiModel):
    """Which version of which model this record is about."""

    model_deployment: str = Field(description="The ModelDeployment that rolled it out.")
    model: str = Field(description="The model's name (spec.model.name).")
    version: str = Field(description="The model version.")


class ApiDefinition(ApiModel):
    """The request and response schema of the version's prediction endpoint."""

    source: Literal["Declared", "Inferred"] = Field(
        description="Declared in spec.model.api, or inferred from the replayed requests and "
        "the version's answers."
    )
    request: EmbeddedObject | None = Field(default=None, description="JSON Schema of a request.")
    response: EmbeddedObject | None = Field(default=None, description="JSON Schema of an answer.")
    samples: int = Field(default=0, ge=0, description="Requests and answers the inference saw.")


class LatencyFigures(ApiModel):
    """Latency percentiles, milliseconds."""

    p50: float | None = Field(default=None, description="Median.")
    p90: float | None = Field(default=None, description="90th percentile.")
    p99: float | None = Field(default=None, description="99th percentile.")
    p999: float | None = Field(default=None, description="99.9th percentile.")


class ReplayFigures(ApiModel):
    """What the version's NonProduction replay measured."""

    replay_test: str = Field(description="The ReplayTest.")
    finished_at: str | None = Field(default=None, description="When it ended.")
    verdict: str = Field(description="Passed, Failed or Inconclusive.")
    requests: int = Field(ge=0, description="Requests sent.")
    latency_ms: LatencyFigures = Field(description="Latency from the intended send time.")
    throughput: float = Field(ge=0, description="Successful answers per second.")
    error_rate: float | None = Field(default=None, description="errors / sent.")
    availability: float | None = Field(default=None, description="ok / sent.")
    accuracy: float | None = Field(default=None, description="On labeled events.")
    auc: float | None = Field(default=None, description="ROC AUC on labeled events.")
    agreement: float | None = Field(
        default=None,
        description="Share of events where it predicted the same class as its predecessor.",
    )
    predecessor: str | None = Field(
        default=None, description="The version it was compared with (the stable one then)."
    )


class SloFigure(ApiModel):
    """The last value of one SLO or judge during the bake, and its tally."""

    name: str = Field(description="SLO, trigger or judge name.")
    value: float | None = Field(default=None, description="The latest measured value.")
    successful: int = Field(default=0, ge=0, description="Successful measurements.")
    failed: int = Field(default=0, ge=0, description="Failed measurements.")


class BakeFigures(ApiModel):
    """What the bake on live traffic measured."""

    outcome: Literal["Running", "Passed", "RolledBack"] = Field(description="How it ended.")
    slos: list[SloFigure] = Field(
        default_factory=list, description="The analysis results.", max_length=64
    )
    shadow_agreement: float | None = Field(
        default=None, description="Agreement with stable in the shadow step, if there was one."
    )


class CapacityFigures(CapacityReport):
    """The capacity found by a ramp replay of this version."""

    replay_test: str = Field(description="The ReplayTest that found it.")


class UsageFigures(ApiModel):
    """How much the version served."""

    production_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Time spent as the production version, finished stays only (add the time "
        "since the last Production stage began when it is still current).",
    )
    live_requests: float | None = Field(
        default=None,
        description="Live requests served (spec.catalog.requestsQuery), when measured.",
    )
    measured_at: str | None = Field(default=None, description="When liveRequests was measured.")


class StageEntry(ApiModel):
    """One stage the version went through."""

    stage: Stage = Field(description="The stage.")
    entered_at: str = Field(description="When it began.")
    left_at: str | None = Field(default=None, description="When it ended.")
    reason: str = Field(default="", description="Why it ended, or what the stage began with.")


class ContainerResources(ApiModel):
    """The resources one container of the version's pods asks for."""

    container: str = Field(description="The container name.")
    requests: dict[str, str] = Field(default_factory=dict, description="Resource requests.")
    limits: dict[str, str] = Field(default_factory=dict, description="Resource limits.")


class ModelVersionStatus(ApiModel):
    """The record: identity, resources, API and what was measured."""

    stage: Stage = Field(description="Where the version is now.")
    category: str | None = Field(
        default=None, description="From the ModelDeployment's modelrollout.io/category label."
    )
    subcategory: str | None = Field(
        default=None,
        description="From the ModelDeployment's modelrollout.io/subcategory label.",
    )
    uri: str | None = Field(default=None, description="Where the model artifact lives.")
    framework: str | None = Field(default=None, description="spec.model.framework.")
    template_hash: str | None = Field(default=None, description="Hash of its pod template.")
    template: EmbeddedObject | None = Field(
        default=None, description="Its pod template, as rolled out (for a manifest)."
    )
    replicas: int | None = Field(default=None, ge=0, description="Replicas it ran with.")
    resources: list[ContainerResources] = Field(
        default_factory=list, description="Resources per container.", max_length=16
    )
    api: ApiDefinition | None = Field(default=None, description="The prediction API.")
    replay: ReplayFigures | None = Field(default=None, description="The replay's figures.")
    bake: BakeFigures | None = Field(default=None, description="The bake's figures.")
    capacity: CapacityFigures | None = Field(
        default=None, description="The capacity, when a ramp replay measured it."
    )
    usage: UsageFigures = Field(default_factory=UsageFigures, description="What it served.")
    stages: list[StageEntry] = Field(
        default_factory=list, description="Its stage history, oldest first.", max_length=64
    )
    updated_at: str | None = Field(default=None, description="When the record last changed.")


class ModelVersion(ApiModel):
    """The catalog's record of one model version: written by the operator, read-only."""

    api_version: Literal["modelrollout.io/v1alpha1"] = Field(
        default="modelrollout.io/v1alpha1", description="modelrollout.io/v1alpha1"
    )
    kind: Literal["ModelVersion"] = Field(default="ModelVersion", description="ModelVersion")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: ModelVersionSpec = Field(description="Which version of which model.")
    status: ModelVersionStatus | None = Field(
        default=None, description="The record, written by the operator."
    )
