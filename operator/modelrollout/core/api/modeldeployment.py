"""The ModelDeployment kind: one model, moved version by version into production.

Changing ``spec.model.version`` (or the pod template) starts a rollout of a new candidate.
The candidate goes through three stages:

* **NonProduction**: no live traffic. A ReplayTest replays recorded production events to
  the candidate, optionally side by side with the stable model, and must pass.
* **Baking**: the candidate gets a growing share of live traffic, step by step
  (``baking.steps``). Every ``analysis.interval`` the SLOs are evaluated in Prometheus.
* **Production**: the candidate becomes the stable version.

A fired trigger (an SLO breach, drift, lost accuracy) sends all traffic back to the stable
version and marks the rollout RolledBack. Manual gates can hold the rollout before Baking
or before Production; they are approved in Git (``spec.approvals``) or with
``kubectl modelrollout approve``, which writes the status and never the spec.

The names of the ideas follow Flagger and Argo Rollouts where they exist (steps, interval,
thresholdRange, failureLimit, inconclusiveLimit, consecutiveErrorLimit), so that their
users find their way.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from modelrollout.core import presets
from modelrollout.core.api.base import ApiModel, cel, validations
from modelrollout.core.api.common import (
    Condition,
    Duration,
    EmbeddedObject,
    KeyReference,
    ObjectName,
    ShortName,
)
from modelrollout.core.api.judging import Judge, ShadowStage
from modelrollout.core.api.monitoring import (
    AnomalyTrigger,
    FeatureDriftTrigger,
    MonitoringSpec,
    PredictionDriftTrigger,
    QualityTrigger,
    Window,
)
from modelrollout.core.api.replaytest import ReplaySettings
from modelrollout.core.replay.result import ReplaySummary

KIND = "ModelDeployment"
SLO_QUERY_OR_PRESET = "exactly one of query and preset must be set"
SLO_PRESET_RUNTIME = (
    "runtime is required with preset ("
    + ", ".join(presets.RUNTIMES[:-1])
    + f" or {presets.RUNTIMES[-1]})"
)
SLO_RUNTIME_WITHOUT_PRESET = "runtime and model go with preset only; set preset or remove them"
PLURAL = "modeldeployments"


class ModelSpec(ApiModel):
    """The model being rolled out."""

    name: ShortName = Field(description="Logical name of the model, for example fraud-scorer.")
    version: str = Field(
        description="The version to run. Changing it starts a rollout of that version as "
        "the candidate.",
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
    )
    uri: str | None = Field(
        default=None,
        description="Where the model artifact lives (for example s3://bucket/model/v3). "
        "Passed to the pod as MODEL_URI.",
        max_length=2048,
    )
    framework: str | None = Field(
        default=None,
        description="Informational: the framework or serving runtime (sklearn, xgboost...).",
        max_length=63,
    )
    api: DeclaredApi | None = Field(
        default=None,
        description="The prediction API, declared. Without it the catalog shows the schema "
        "inferred from the replayed requests and the version's answers.",
    )


class DeclaredApi(ApiModel):
    """A declared request and response schema (JSON Schema)."""

    request: EmbeddedObject | None = Field(default=None, description="JSON Schema of a request.")
    response: EmbeddedObject | None = Field(default=None, description="JSON Schema of an answer.")


class CatalogSpec(ApiModel):
    """What the catalog records of each version (kind ModelVersion, one per version)."""

    enabled: bool = Field(
        default=True, description="Keep a ModelVersion record of every version rolled out."
    )
    requests_query: str | None = Field(
        default=None,
        description="PromQL returning the live requests a version served, for the record's "
        "usage; run by stages.baking.analysis.provider. Variables: {{ version }}, "
        "{{ range }} (time since the version began serving, e.g. 3600s) and the SLO "
        "variables.",
        min_length=1,
        max_length=8192,
    )
    usage_interval: Duration = Field(
        default="10m", description="How often requestsQuery is run for the serving versions."
    )


class ServingSpec(ApiModel):
    """How the model server in the pod template is reached."""

    port: int = Field(
        default=8080, description="Container port of the model server.", ge=1, le=65535
    )
    predict_path: str = Field(
        default="/v1/models/model:predict",
        description="HTTP path of the prediction endpoint.",
        pattern=r"^/",
        max_length=2048,
    )
    service_port: int = Field(
        default=80, description="Port of the Services the operator creates.", ge=1, le=65535
    )


class WorkloadSpec(ApiModel):
    """The pods that serve the model."""

    replicas: int = Field(
        default=1, description="Replicas of the stable Deployment.", ge=0, le=1000
    )
    candidate_replicas: int | None = Field(
        default=None,
        description="Replicas of the candidate Deployment; defaults to replicas.",
        ge=1,
        le=1000,
    )
    template: EmbeddedObject = Field(
        description="A core/v1 PodTemplateSpec for the model server. The operator adds the "
        "labels modelrollout.io/name, modelrollout.io/track and modelrollout.io/version, "
        "and the environment variables MODEL_NAME, MODEL_VERSION and MODEL_URI."
    )


class ReplayStage(ReplaySettings):
    """The replay run against the candidate before it gets live traffic."""

    compare_with_stable: bool = Field(
        default=True,
        description="Also send every event to the stable version and compare. Ignored for "
        "the first version, which has no stable version.",
    )


class NonProductionStage(ApiModel):
    """Testing without live traffic."""

    enabled: bool = Field(
        default=True, description="Run the NonProduction stage. When false, Baking starts at once."
    )
    replay: ReplayStage | None = Field(
        default=None,
        description="The replay test. Required when the stage is enabled.",
    )
    timeout: Duration = Field(
        default="1h", description="The stage fails (and rolls back) if it runs longer."
    )


class BakeStep(ApiModel):
    """One step of the bake: a share of live traffic held for a while."""

    weight: int = Field(
        description="Percent of live traffic sent to the candidate during this step.",
        ge=1,
        le=100,
    )
    duration: Duration = Field(
        description="How long to hold this weight while the SLOs are evaluated."
    )


class ThresholdRange(ApiModel):
    """Bounds a measurement must stay within; either bound may be left out."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel("has(self.min) || has(self.max)", "set min, max or both"),
            cel(
                "!has(self.min) || !has(self.max) || self.min <= self.max",
                "min must not be greater than max",
            ),
        )
    }

    min: float | None = Field(default=None, description="Smallest acceptable value.")
    max: float | None = Field(default=None, description="Largest acceptable value.")


class Slo(ApiModel):
    """A service level objective checked in Prometheus every analysis interval.

    Either a query of one's own or a preset of a serving runtime. The query may use the
    variables {{ name }}, {{ namespace }}, {{ model }}, {{ candidate_version }},
    {{ stable_version }}, {{ candidate_service }}, {{ stable_service }} and
    {{ interval }}. It must return one sample.
    """

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel("has(self.query) != has(self.preset)", SLO_QUERY_OR_PRESET),
            cel("!has(self.preset) || has(self.runtime)", SLO_PRESET_RUNTIME),
            cel(
                "has(self.preset) || (!has(self.runtime) && !has(self.model))",
                SLO_RUNTIME_WITHOUT_PRESET,
            ),
        )
    }

    name: ShortName = Field(description="Unique name of the SLO.")
    query: str | None = Field(
        default=None,
        description="PromQL query returning a single value. Exactly one of query and preset.",
        min_length=1,
        max_length=8192,
    )
    preset: presets.Preset | None = Field(
        default=None,
        description="A ready-made query for the runtime: latency-p99 (seconds), error-rate "
        "(failed requests as a fraction, 0 to 1) or throughput (requests per second), over "
        "the last interval, of the pods of the version under analysis (Prometheus labels "
        "namespace and pod). Exactly one of query and preset; the query it expands to is "
        "shown in status.analysis[].query. " + presets.EXPANSIONS_HELP,
    )
    runtime: presets.Runtime | None = Field(
        default=None,
        description="The model server whose metric names the preset uses: modelrollout "
        "(modelrollout serve-model), kserve (the KServe Python model server), mlserver "
        "(Seldon MLServer, metrics port 8082) or triton (NVIDIA Triton; its latency-p99 "
        "needs --metrics-config summary_latencies=true). Required with preset.",
    )
    model: str | None = Field(
        default=None,
        description="Only the series of this served model (the runtime's model label); "
        "{{ model }} is spec.model.name. Optional, with preset only; MLServer's latency "
        "histogram has no model label, so its latency-p99 covers every model of the pods.",
        pattern=r'^[^"\\]+$',
        max_length=253,
    )
    threshold_range: ThresholdRange = Field(description="Where the value must stay.")
    failure_limit: int = Field(
        default=1,
        description="How many failed measurements are tolerated; one more fires the SLO.",
        ge=0,
        le=1000,
    )
    inconclusive_limit: int = Field(
        default=0,
        description="How many inconclusive measurements (no data) are tolerated before "
        "the rollout pauses for a person to decide.",
        ge=0,
        le=1000,
    )
    consecutive_error_limit: int = Field(
        default=4,
        description="How many query errors in a row are tolerated before the SLO counts as failed.",
        ge=0,
        le=1000,
    )
    no_data: Literal["Inconclusive", "Fail"] = Field(
        default="Inconclusive",
        description="What an empty or NaN result counts as. It never counts as a pass.",
    )

    @model_validator(mode="after")
    def _query_or_preset(self) -> Slo:
        if (self.query is None) == (self.preset is None):
            raise ValueError(f"SLO {self.name}: {SLO_QUERY_OR_PRESET}")
        if self.preset is not None and self.runtime is None:
            raise ValueError(f"SLO {self.name}: {SLO_PRESET_RUNTIME}")
        if self.preset is None and (self.runtime is not None or self.model is not None):
            raise ValueError(f"SLO {self.name}: {SLO_RUNTIME_WITHOUT_PRESET}")
        return self

    def promql(self) -> str:
        """The query as written, or the one the preset expands to ({{ }} variables left in)."""
        if self.preset is not None and self.runtime is not None:
            return presets.expand(self.preset, self.runtime, self.model)
        assert self.query is not None  # the validator guarantees one of the two
        return self.query


class AnalysisSpec(ApiModel):
    """The metric provider and how often SLOs and judges are evaluated while baking."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!has(self.judges) || !has(self.slos) || "
                "self.judges.all(j, !self.slos.exists(s, s.name == j.name))",
                "a judge must not have the name of an SLO",
                field_path=".judges",
            ),
        )
    }

    provider: MetricProvider = Field(description="Where the SLO queries run.")
    interval: Duration = Field(default="1m", description="Time between two evaluations.")
    slos: list[Slo] = Field(
        default_factory=list,
        description="The SLOs; names must be unique.",
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    judges: list[Judge] = Field(
        default_factory=list,
        description="Statistical comparisons of the candidate with stable over the same "
        "window; names must be unique.",
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


class MetricProvider(ApiModel):
    """A metric provider. Only kinds listed in the enum are accepted."""

    kind: Literal["Prometheus"] = Field(default="Prometheus", description="The provider kind.")
    address: str = Field(
        description="Base URL of the Prometheus HTTP API, for example "
        "http://prometheus.monitoring:9090.",
        pattern=r"^https?://",
        max_length=2048,
    )
    timeout: Duration = Field(default="10s", description="Timeout of one query.")
    bearer_token_secret_ref: KeyReference | None = Field(
        default=None, description="A Secret key holding a bearer token for the API."
    )


class BakingStage(ApiModel):
    """Serving a growing share of live traffic while SLOs are watched."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "self.steps.map(s, s.weight).isSorted() && "
                "self.steps.all(s, self.steps.exists_one(t, t.weight == s.weight))",
                "step weights must be strictly increasing",
                field_path=".steps",
            ),
        )
    }

    steps: list[BakeStep] = Field(
        description="The traffic steps, with weights strictly increasing between 1 and 100.",
        min_length=1,
        max_length=20,
    )
    shadow: ShadowStage | None = Field(
        default=None,
        description="A shadow step before the weighted steps: the candidate's answers to "
        "mirrored live requests are compared with stable's, and never served.",
    )
    analysis: AnalysisSpec | None = Field(
        default=None, description="SLOs evaluated in Prometheus every interval."
    )


class ProductionWatch(ApiModel):
    """Triggers kept running after promotion: a version that misbehaves in production goes
    back to the previous one in one step, without a change in Git."""

    duration: Duration = Field(
        description="How long after promotion the SLOs and triggers keep being evaluated."
    )
    analysis: AnalysisSpec | None = Field(
        default=None,
        description="The provider, interval and SLOs of the watch; the Baking stage's "
        "analysis when unset. The rollback triggers are evaluated too, against the version "
        "under watch: in queries, {{candidate_version}} and {{candidate_service}} name it.",
    )


class ProductionStage(ApiModel):
    """Promotion of the candidate to stable."""

    scale_down_delay: Duration = Field(
        default="30s",
        description="How long the previous stable pods keep running after promotion, so "
        "that in-flight requests finish.",
    )
    watch: ProductionWatch | None = Field(
        default=None,
        description="Keep watching a promoted version, and revert to the previous version "
        "when a trigger fires.",
    )


class StagesSpec(ApiModel):
    """The three stages of a rollout."""

    non_production: NonProductionStage = Field(
        default_factory=NonProductionStage, description="Testing without live traffic."
    )
    baking: BakingStage | None = Field(
        default=None,
        description="Serving a growing share of live traffic. Without it, a candidate that "
        "passes NonProduction goes straight to Production.",
    )
    production: ProductionStage = Field(
        default_factory=ProductionStage, description="Promotion to stable."
    )


class GatewayApiRouter(ApiModel):
    """Weights set on an existing Gateway API HTTPRoute."""

    http_route: ObjectName = Field(
        description="Name of the HTTPRoute in the same namespace. The operator sets the "
        "weights of the backendRefs that point at the stable and candidate Services and "
        "leaves every other field alone."
    )
    rule_index: int = Field(
        default=0, description="Index of the rule whose backendRefs carry the weights.", ge=0
    )


class TrafficSpec(ApiModel):
    """How live traffic is split. Only router kinds listed in the enum are accepted."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "self.router != 'GatewayAPI' || has(self.gatewayAPI)",
                "gatewayAPI is required when router is GatewayAPI",
                field_path=".gatewayAPI",
            ),
        )
    }

    router: Literal["ReplicaRatio", "GatewayAPI", "None"] = Field(
        default="ReplicaRatio",
        description="ReplicaRatio approximates weights by the share of ready pods behind "
        "one Service; GatewayAPI sets exact weights on an HTTPRoute; None routes nothing: "
        "the candidate gets no live traffic and only the replay judges it, so stages.baking "
        "must not be set.",
    )
    gateway_api: GatewayApiRouter | None = Field(
        default=None,
        alias="gatewayAPI",
        description="Settings of the GatewayAPI router.",
    )


class SloTrigger(ApiModel):
    """Fires when the named SLO exceeds its failure limit."""

    slo: ShortName = Field(description="Name of an SLO in analysis.slos.")


class QueryTrigger(ApiModel):
    """Fires when a PromQL value leaves its range (drift score, online accuracy...)."""

    query: str = Field(
        description="PromQL query returning a single value; the SLO variables may be used.",
        min_length=1,
        max_length=8192,
    )
    threshold_range: ThresholdRange = Field(description="Where the value must stay.")


class Trigger(ApiModel):
    """A condition that rolls the candidate back when it fires.

    Only trigger types listed in the enum are accepted, and the matching settings field
    must be set.
    """

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "self.type != 'SLOBreach' || has(self.sloBreach)",
                "sloBreach is required when type is SLOBreach",
            ),
            cel(
                "self.type != 'Drift' || has(self.drift)",
                "drift is required when type is Drift",
            ),
            cel(
                "self.type != 'AccuracyDrop' || has(self.accuracyDrop)",
                "accuracyDrop is required when type is AccuracyDrop",
            ),
            cel(
                "self.type != 'Anomaly' || has(self.anomaly)",
                "anomaly is required when type is Anomaly",
            ),
            cel(
                "self.type != 'FeatureDrift' || has(self.featureDrift)",
                "featureDrift is required when type is FeatureDrift",
            ),
            cel(
                "self.type != 'PredictionDrift' || has(self.predictionDrift)",
                "predictionDrift is required when type is PredictionDrift",
            ),
            cel(
                "self.type != 'QualityDrop' || has(self.qualityDrop)",
                "qualityDrop is required when type is QualityDrop",
            ),
        )
    }

    name: ShortName = Field(description="Unique name of the trigger.")
    type: Literal[
        "SLOBreach",
        "Drift",
        "AccuracyDrop",
        "Anomaly",
        "FeatureDrift",
        "PredictionDrift",
        "QualityDrop",
    ] = Field(
        description="SLOBreach, Drift or AccuracyDrop (from Prometheus), Anomaly (a band "
        "learned from Prometheus history), FeatureDrift, PredictionDrift or QualityDrop "
        "(computed by the operator from the capture sidecars' live windows)."
    )
    action: Literal["Rollback", "Hold", "Notify"] = Field(
        default="Rollback",
        description="What a firing trigger does: Rollback (when rollback.automatic, else "
        "it holds), Hold (the bake waits for kubectl modelrollout resume or abort), or "
        "Notify (a Warning Event and the notifiers; the bake goes on).",
    )
    slo_breach: SloTrigger | None = Field(default=None, description="For type SLOBreach.")
    drift: QueryTrigger | None = Field(
        default=None, description="For type Drift: a drift score from Prometheus."
    )
    accuracy_drop: QueryTrigger | None = Field(
        default=None, description="For type AccuracyDrop: an online accuracy from Prometheus."
    )
    anomaly: AnomalyTrigger | None = Field(
        default=None,
        description="For type Anomaly: a metric against the normal band learned from its "
        "own history.",
    )
    feature_drift: FeatureDriftTrigger | None = Field(
        default=None, description="For type FeatureDrift: live features against the baseline."
    )
    prediction_drift: PredictionDriftTrigger | None = Field(
        default=None,
        description="For type PredictionDrift: the candidate's predictions against stable's.",
    )
    quality_drop: QualityTrigger | None = Field(
        default=None, description="For type QualityDrop: quality once labels have arrived."
    )

    @property
    def window(self) -> Window | None:
        """The live window of a FeatureDrift, PredictionDrift or QualityDrop trigger."""
        settings = self.feature_drift or self.prediction_drift or self.quality_drop
        return None if settings is None else settings.window


class RollbackSpec(ApiModel):
    """What happens when a trigger fires."""

    automatic: bool = Field(
        default=True,
        description="Roll back by itself when a trigger fires. When false, the rollout "
        "pauses and waits for kubectl modelrollout abort or retry.",
    )
    triggers: list[Trigger] = Field(
        default_factory=list,
        description="Triggers besides the implicit ones (a failed SLO or replay always "
        "fires); names must be unique.",
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    scale_down_candidate: bool = Field(
        default=True, description="Scale the candidate to zero after a rollback."
    )


NotificationEvent = Literal[
    "StageChanged", "StepAdvanced", "GateWaiting", "Promoted", "RolledBack", "Failed"
]


def _default_notification_events() -> list[NotificationEvent]:
    return ["Promoted", "RolledBack", "Failed", "GateWaiting"]


class Notifier(ApiModel):
    """Where decisions are announced. Only kinds listed in the enum are accepted."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.url) != has(self.urlSecretRef)",
                "set exactly one of url or urlSecretRef",
            ),
        )
    }

    name: ShortName = Field(description="Unique name of the notifier.")
    kind: Literal["Webhook", "Slack"] = Field(description="Webhook (JSON POST) or Slack.")
    url: str | None = Field(
        default=None, description="Endpoint URL.", pattern=r"^https?://", max_length=2048
    )
    url_secret_ref: KeyReference | None = Field(
        default=None, description="A Secret key holding the endpoint URL."
    )
    events: list[NotificationEvent] = Field(
        default_factory=_default_notification_events,
        description="Which decisions to announce.",
        max_length=6,
    )


class GatesSpec(ApiModel):
    """Manual gates. A held rollout waits for an approval of the candidate version."""

    before_baking: Literal["Automatic", "Manual"] = Field(
        default="Automatic", description="Hold before the candidate gets live traffic."
    )
    before_production: Literal["Automatic", "Manual"] = Field(
        default="Automatic", description="Hold before the candidate becomes stable."
    )


GateName = Literal["BeforeBaking", "BeforeProduction"]


class Approval(ApiModel):
    """An approval of one gate for one version, kept in Git."""

    gate: GateName = Field(description="BeforeBaking or BeforeProduction.")
    version: str = Field(
        description="The model version approved; approvals of other versions are ignored.",
        min_length=1,
        max_length=63,
    )


NEEDS_CAPTURE = (
    "FeatureDrift, PredictionDrift and QualityDrop triggers read the capture sidecars' "
    "windows: set monitoring.capture.enabled"
)
LIVE_WINDOW_TRIGGERS = ("FeatureDrift", "PredictionDrift", "QualityDrop")
NO_ROUTER_NO_BAKE = (
    "stages.baking needs a traffic router: with traffic.router None the candidate gets no "
    "live traffic"
)


NEEDS_PROVIDER = "catalog.requestsQuery needs stages.baking.analysis, whose provider runs it"


class ModelDeploymentSpec(ApiModel):
    """The desired model, how it is served, and how new versions reach production."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.stages) && has(self.stages.nonProduction) && "
                "((has(self.stages.nonProduction.enabled) && !self.stages.nonProduction.enabled)"
                " || has(self.stages.nonProduction.replay))",
                "stages.nonProduction.replay is required when the stage is enabled",
                field_path=".stages.nonProduction.replay",
            ),
            cel(
                "!has(self.rollback) || !has(self.rollback.triggers) || "
                "self.rollback.triggers.all(t, t.type != 'SLOBreach' || "
                "(has(self.stages) && has(self.stages.baking) && "
                "has(self.stages.baking.analysis) && "
                "self.stages.baking.analysis.slos.exists(s, s.name == t.sloBreach.slo)))",
                "every SLOBreach trigger must name an SLO in stages.baking.analysis.slos",
                field_path=".rollback.triggers",
            ),
            cel(
                "!has(self.traffic) || !has(self.traffic.router) || "
                "self.traffic.router != 'None' || !has(self.stages) || "
                "!has(self.stages.baking)",
                NO_ROUTER_NO_BAKE,
                field_path=".stages.baking",
            ),
            cel(
                "!has(self.rollback) || !has(self.rollback.triggers) || "
                "self.rollback.triggers.all(t, "
                "!(t.type in ['FeatureDrift', 'PredictionDrift', 'QualityDrop']) || "
                "(has(self.monitoring) && has(self.monitoring.capture) && "
                "has(self.monitoring.capture.enabled) && self.monitoring.capture.enabled))",
                NEEDS_CAPTURE,
                field_path=".monitoring.capture.enabled",
            ),
            cel(
                "!has(self.stages) || !has(self.stages.baking) || "
                "!has(self.stages.baking.shadow) || "
                "(has(self.monitoring) && has(self.monitoring.capture) && "
                "has(self.monitoring.capture.enabled) && self.monitoring.capture.enabled)",
                "stages.baking.shadow needs monitoring.capture.enabled: the stable pods' "
                "capture sidecars send the shadow requests",
                field_path=".monitoring.capture.enabled",
            ),
            cel(
                "!has(self.rollback) || !has(self.rollback.triggers) || "
                "self.rollback.triggers.all(t, t.type != 'FeatureDrift' || "
                "(has(self.monitoring) && has(self.monitoring.baseline)))",
                "a FeatureDrift trigger needs monitoring.baseline",
                field_path=".monitoring.baseline",
            ),
            cel(
                "!has(self.rollback) || !has(self.rollback.triggers) || "
                "self.rollback.triggers.all(t, t.type != 'QualityDrop' || "
                "(has(self.monitoring) && has(self.monitoring.labels)))",
                "a QualityDrop trigger needs monitoring.labels",
                field_path=".monitoring.labels",
            ),
            cel(
                "!has(self.catalog) || !has(self.catalog.requestsQuery) || "
                "(has(self.stages) && has(self.stages.baking) && "
                "has(self.stages.baking.analysis))",
                NEEDS_PROVIDER,
                field_path=".catalog.requestsQuery",
            ),
        )
    }

    model: ModelSpec = Field(description="The model and the version to run.")
    workload: WorkloadSpec = Field(description="The pods that serve the model.")
    serving: ServingSpec = Field(
        default_factory=ServingSpec, description="How the model server is reached."
    )
    stages: StagesSpec = Field(
        default_factory=StagesSpec,
        description="NonProduction, Baking and Production settings.",
    )
    traffic: TrafficSpec = Field(
        default_factory=TrafficSpec, description="How live traffic is split."
    )
    rollback: RollbackSpec = Field(
        default_factory=RollbackSpec, description="Triggers and what a rollback does."
    )
    monitoring: MonitoringSpec = Field(
        default_factory=MonitoringSpec,
        description="Capture of live traffic, the baseline profile and delayed labels.",
    )
    gates: GatesSpec = Field(default_factory=GatesSpec, description="Manual gates.")
    catalog: CatalogSpec = Field(
        default_factory=CatalogSpec, description="The catalog's records of each version."
    )
    approvals: list[Approval] = Field(
        default_factory=list,
        description="Gate approvals kept in Git: an approval opens a gate for one version.",
        max_length=32,
    )
    notifications: list[Notifier] = Field(
        default_factory=list,
        description="Where decisions are announced; names must be unique.",
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    paused: bool = Field(
        default=False,
        description="Hold the rollout where it is. Triggers still roll back.",
    )
    progress_deadline: Duration = Field(
        default="10m",
        description="A candidate whose pods are not ready within this time fails the rollout.",
    )

    @model_validator(mode="after")
    def _replay_when_enabled(self) -> ModelDeploymentSpec:
        stage = self.stages.non_production
        if stage.enabled and stage.replay is None:
            raise ValueError("stages.nonProduction.replay is required when the stage is enabled")
        return self

    @model_validator(mode="after")
    def _no_bake_without_router(self) -> ModelDeploymentSpec:
        if self.traffic.router == "None" and self.stages.baking is not None:
            raise ValueError(NO_ROUTER_NO_BAKE)
        return self

    @model_validator(mode="after")
    def _monitoring_sources(self) -> ModelDeploymentSpec:
        types = {t.type for t in self.rollback.triggers}
        monitoring = self.monitoring
        if types & set(LIVE_WINDOW_TRIGGERS) and not monitoring.capture.enabled:
            raise ValueError(f"monitoring.capture.enabled: {NEEDS_CAPTURE}")
        baking = self.stages.baking
        if baking is not None and baking.shadow is not None and not monitoring.capture.enabled:
            raise ValueError(
                "monitoring.capture.enabled: stages.baking.shadow needs it: the stable pods' "
                "capture sidecars send the shadow requests"
            )
        if "FeatureDrift" in types and monitoring.baseline is None:
            raise ValueError("monitoring.baseline: a FeatureDrift trigger needs it")
        if "QualityDrop" in types and monitoring.labels is None:
            raise ValueError("monitoring.labels: a QualityDrop trigger needs it")
        return self

    @model_validator(mode="after")
    def _usage_provider(self) -> ModelDeploymentSpec:
        baking = self.stages.baking
        if self.catalog.requests_query is not None and (baking is None or baking.analysis is None):
            raise ValueError(f"catalog.requestsQuery: {NEEDS_PROVIDER}")
        return self


Phase = Literal["Pending", "NonProduction", "Baking", "Production", "RolledBack", "Failed"]


class Measurement(ApiModel):
    """One evaluation of an SLO or trigger."""

    phase: Literal["Successful", "Failed", "Inconclusive", "Error"] = Field(
        description="Successful, Failed, Inconclusive (no data) or Error (the query failed)."
    )
    value: float | None = Field(default=None, description="The value, when there was one.")
    message: str = Field(default="", description="Why, for Failed, Inconclusive and Error.")
    started_at: str = Field(description="When the query ran.")


class MetricResult(ApiModel):
    """The running tally of one SLO or trigger during the bake."""

    name: str = Field(description="SLO or trigger name.")
    query: str = Field(
        default="", description="For an SLO preset: the PromQL it ran, variables filled in."
    )
    successful: int = Field(default=0, description="Successful measurements.", ge=0)
    failed: int = Field(default=0, description="Failed measurements.", ge=0)
    inconclusive: int = Field(default=0, description="Inconclusive measurements.", ge=0)
    error: int = Field(default=0, description="Query errors.", ge=0)
    consecutive_error: int = Field(default=0, description="Query errors in a row.", ge=0)
    measurements: list[Measurement] = Field(
        default_factory=list, description="The latest measurements (at most 10).", max_length=10
    )


class TrafficStatus(ApiModel):
    """The weights last applied, so a restarted operator knows where it stood."""

    stable_weight: int = Field(default=100, description="Percent to stable.", ge=0, le=100)
    candidate_weight: int = Field(default=0, description="Percent to candidate.", ge=0, le=100)


class Revision(ApiModel):
    """A version that was stable before, kept so that it can be restored without Git."""

    version: str = Field(description="The model version.")
    hash: str = Field(description="Hash of its pod template and model.")
    template: EmbeddedObject = Field(description="Its pod template, as it ran.")
    retired_at: str = Field(description="When a newer version replaced it.")


class Reverted(ApiModel):
    """The spec's version was taken out of production; what runs differs from the spec."""

    version: str = Field(description="The version taken out of production.")
    hash: str = Field(
        description="Its template hash: while the spec has it, it is not rolled out again."
    )
    to_version: str = Field(description="The version restored.")
    reason: str = Field(description="Why: the trigger that fired, or the undo command.")
    at: str = Field(description="When.")


class UndoRequest(ApiModel):
    """Set by kubectl modelrollout undo."""

    requested_at: str = Field(description="When undo was asked for.")
    to_version: str | None = Field(
        default=None, description="The version to restore; the previous one when unset."
    )


class HistoryEntry(ApiModel):
    """The outcome of one past rollout."""

    version: str = Field(description="The candidate version.")
    outcome: Literal["Promoted", "RolledBack", "Failed", "Superseded", "Reverted"] = Field(
        description="How the rollout ended; Reverted: promoted, then taken out of production."
    )
    reason: str = Field(default="", description="Why.")
    finished_at: str = Field(description="When it ended.")


class ShadowStatus(ApiModel):
    """The shadow step: the candidate's answers to mirrored requests against stable's."""

    run: str = Field(description="Identifies this shadow run to the sidecars.")
    started_at: str = Field(description="When the shadow began.")
    finished_at: str | None = Field(default=None, description="When it ended.")
    outcome: Literal["Running", "Pass", "Fail", "Inconclusive"] = Field(
        default="Running",
        description="Running, then Pass or Fail; Inconclusive holds it (too few pairs).",
    )
    pairs: int = Field(default=0, ge=0, description="Stable's answers paired with the candidate's.")
    floor_pairs: int = Field(
        default=0, ge=0, description="Stable's answers paired with its own second answers."
    )
    agreement: float | None = Field(
        default=None, description="Share of the candidate's answers that agree with stable's."
    )
    floor_agreement: float | None = Field(
        default=None, description="Share of stable's second answers that agree with its first."
    )
    excess_disagreement: float | None = Field(
        default=None, description="The candidate's disagreement rate minus the floor's."
    )
    interval: list[float] | None = Field(
        default=None,
        description="Confidence interval of the excess disagreement (two numbers).",
        max_length=2,
    )
    p_value: float | None = Field(
        default=None,
        description="One-sided p-value of an excess beyond the tolerance.",
    )
    mean_abs_score_diff: float | None = Field(
        default=None, description="Mean absolute score difference, candidate against stable."
    )
    floor_mean_abs_score_diff: float | None = Field(
        default=None, description="The same for stable against itself."
    )
    candidate_p99_ms: float | None = Field(
        default=None, description="99th percentile latency of the candidate's shadow answers."
    )
    stable_p99_ms: float | None = Field(
        default=None, description="The same for stable's second answers."
    )
    candidate_errors: int = Field(default=0, ge=0, description="Failed candidate requests.")
    dropped: int = Field(
        default=0, ge=0, description="Sampled requests the sidecars dropped (queue full)."
    )
    message: str = Field(default="", description="The verdict, in words.")


class ModelDeploymentStatus(ApiModel):
    """The observed state of a ModelDeployment, written once per reconcile."""

    phase: Phase = Field(
        default="Pending",
        description="Pending, NonProduction, Baking, Production, RolledBack or Failed.",
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes.", ge=0
    )
    stable_version: str | None = Field(default=None, description="The version in production.")
    candidate_version: str | None = Field(
        default=None, description="The version being rolled out, if any."
    )
    candidate_hash: str | None = Field(
        default=None, description="Hash of the candidate's pod template and model."
    )
    stable_hash: str | None = Field(
        default=None, description="Hash of the stable pod template and model."
    )
    current_step: int | None = Field(
        default=None, description="Index of the current bake step.", ge=0
    )
    stage_started_at: str | None = Field(default=None, description="When the stage began.")
    step_started_at: str | None = Field(default=None, description="When the step began.")
    traffic: TrafficStatus | None = Field(default=None, description="Weights last applied.")
    replay_test: str | None = Field(
        default=None, description="Name of the ReplayTest of the NonProduction stage."
    )
    replay_result: ReplaySummary | None = Field(
        default=None, description="Summary of that ReplayTest's result."
    )
    shadow: ShadowStatus | None = Field(
        default=None, description="The shadow step of the current candidate, if any."
    )
    analysis: list[MetricResult] = Field(
        default_factory=list, description="Running tallies of the SLOs and triggers.", max_length=64
    )
    last_analysis_at: str | None = Field(
        default=None, description="When the SLOs and triggers were last evaluated."
    )
    approvals: list[Approval] = Field(
        default_factory=list,
        description="Approvals given with kubectl modelrollout approve (the spec holds those "
        "kept in Git).",
        max_length=32,
    )
    aborted: bool = Field(
        default=False, description="Set by kubectl modelrollout abort; rolls the candidate back."
    )
    retry_requested_at: str | None = Field(
        default=None,
        description="Set by kubectl modelrollout retry: rolls out a rolled-back or failed "
        "candidate again, with a new replay.",
    )
    attempt: int | None = Field(
        default=None, description="Attempt number of the current candidate (1 when unset).", ge=1
    )
    resumed_at: str | None = Field(
        default=None,
        description="Set by kubectl modelrollout resume: lifts a hold for inconclusive data "
        "or a trigger that fired while automatic rollback is off.",
    )
    message: str = Field(default="", description="The latest decision, in words.")
    history: list[HistoryEntry] = Field(
        default_factory=list, description="Recent rollouts (at most 10).", max_length=10
    )
    revisions: list[Revision] = Field(
        default_factory=list,
        description="Earlier stable versions with their pod templates, newest first (at most "
        "3): what an automatic revert or kubectl modelrollout undo restores.",
        max_length=3,
    )
    stable_template: EmbeddedObject | None = Field(
        default=None,
        description="The pod template of the stable version when it is not the spec's (after "
        "a revert).",
    )
    reverted: Reverted | None = Field(
        default=None,
        description="Set when the spec's version was taken out of production: it is not "
        "rolled out again until the spec changes or kubectl modelrollout retry.",
    )
    undo: UndoRequest | None = Field(default=None, description="Set by kubectl modelrollout undo.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing, Paused, ReferencesResolved, ReplayPassed, "
        "TrafficApplied, Healthy, RolledBack and InvalidSpec, with reasons.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    kopf: EmbeddedObject | None = Field(
        default=None, description="Bookkeeping of the operator framework; do not edit."
    )


class ModelDeployment(ApiModel):
    """A model rolled out version by version: NonProduction, Baking, then Production."""

    api_version: Literal["modelrollout.io/v1alpha1"] = Field(
        default="modelrollout.io/v1alpha1", description="modelrollout.io/v1alpha1"
    )
    kind: Literal["ModelDeployment"] = Field(
        default="ModelDeployment", description="ModelDeployment"
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: ModelDeploymentSpec = Field(description="The desired state.")
    status: ModelDeploymentStatus | None = Field(
        default=None, description="Written by the operator."
    )


AnalysisSpec.model_rebuild()
