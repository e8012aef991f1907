"""Model monitoring inside the rollout: capture, the baseline profile, delayed labels, and
the triggers the operator computes from them.

``spec.monitoring`` says where the data comes from: the capture sidecar in every model pod
(``capture``), the profile of the data the model was tested on (``baseline``), and where
labels that arrive later are found (``labels``). ``FeatureDrift``, ``PredictionDrift`` and
``QualityDrop`` triggers read the live windows the sidecars keep; an ``Anomaly`` trigger
compares a metric with the band learned from its own Prometheus history
(:mod:`modelrollout.core.anomaly`). They are evaluated every analysis interval, like the
SLOs, and act as a ``Rollback``, a ``Hold`` or a ``Notify``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelrollout.core.api.base import ApiModel, cel, validations
from modelrollout.core.api.common import Duration, KeyReference

CAPTURE_PORT = 8081


class CaptureSpec(ApiModel):
    """The capture sidecar: a reverse proxy in front of the model container that records
    every request and answer (the files are replay datasets and drift windows) and keeps
    the recent window's profile and predictions for the operator."""

    enabled: bool = Field(default=False, description="Inject the capture sidecar.")
    port: int = Field(
        default=CAPTURE_PORT,
        ge=1,
        le=65535,
        description="Port of the sidecar; the Services send traffic to it when capture is on.",
    )
    sample: float = Field(
        default=1.0, gt=0, le=1, description="Fraction of requests written to the files."
    )
    max_disk: str = Field(
        default="256Mi",
        pattern=r"^[0-9]+(Ki|Mi|Gi)$",
        description="Disk the capture files may use per pod (an emptyDir of this size); "
        "the oldest files go first.",
    )


class BaselineSpec(ApiModel):
    """The data the model was tested on, as a profile from ``modelrollout profile``."""

    profile_config_map_key_ref: KeyReference = Field(
        description="A ConfigMap key holding the profile JSON."
    )


class LabelsSpec(ApiModel):
    """Where the ground truth that arrives later is found: JSON Lines of
    ``{"inferenceId": ..., "label": ...}``, joined with the captured answers by the
    inference id the sidecar gives each request."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.configMapKeyRef) != has(self.url)",
                "exactly one of configMapKeyRef or url must be set",
            )
        )
    }

    config_map_key_ref: KeyReference | None = Field(
        default=None, description="A ConfigMap key holding the labels."
    )
    url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=2048,
        description="An http(s) URL serving the labels.",
    )


class MonitoringSpec(ApiModel):
    """Where monitoring data comes from."""

    capture: CaptureSpec = Field(
        default_factory=CaptureSpec, description="The capture sidecar in every model pod."
    )
    baseline: BaselineSpec | None = Field(
        default=None, description="The baseline profile that feature drift is measured against."
    )
    labels: LabelsSpec | None = Field(
        default=None, description="Delayed labels, for quality triggers."
    )


class Window(ApiModel):
    """The live window a statistic is computed over."""

    size: Duration = Field(default="5m", description="How far back the window reaches.")
    step: Duration | None = Field(
        default=None,
        description="How far the window slides between two measurements: the trigger is "
        "measured when this much time has passed since its last measurement, and skips "
        "the analysis rounds in between. Every analysis interval when unset.",
    )
    min_count: int = Field(
        default=200,
        ge=1,
        description="Fewer events than this in the window is no data (Inconclusive), never "
        "a pass and never a failure.",
    )


class FeatureDriftTrigger(ApiModel):
    """The candidate's live features against the baseline profile."""

    features: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="Features to watch (dotted paths); all of the profile's when empty.",
    )
    window: Window = Field(default_factory=Window, description="The live window.")
    max_drifted: int = Field(
        default=0, ge=0, description="How many features may drift before the trigger fires."
    )


class PredictionDriftTrigger(ApiModel):
    """The candidate's predictions against stable's in the same window (seasonality cancels
    out), or against the baseline profile's."""

    against: Literal["Stable", "Baseline"] = Field(
        default="Stable", description="What the candidate's predictions are compared with."
    )
    window: Window = Field(default_factory=Window, description="The live window.")


class QualityTrigger(ApiModel):
    """Quality of the candidate's answers once their labels have arrived."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.min) || has(self.maxDropFromStable)",
                "set min, maxDropFromStable or both",
            )
        )
    }

    metric: Literal["Accuracy", "AUC", "Precision", "Recall"] = Field(
        default="Accuracy", description="Which quality measure."
    )
    min: float | None = Field(default=None, ge=0, le=1, description="The lowest acceptable value.")
    max_drop_from_stable: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="How far below stable's value, in the same window, the candidate may be.",
    )
    window: Window = Field(
        default_factory=lambda: Window(size="1h", min_count=100),
        description="The window of labelled answers.",
    )


class AnomalyTrigger(ApiModel):
    """A metric's value against its normal band, learned from its own history."""

    query: str = Field(
        min_length=1,
        max_length=8192,
        description="PromQL for the value now (the SLO variables may be used), for example "
        "the candidate's p99 latency.",
    )
    history_query: str | None = Field(
        default=None,
        max_length=8192,
        description="PromQL whose history the band is learned from (for example the same "
        "metric for stable); the query itself when unset.",
    )
    history: Duration = Field(
        default="168h", description="How much history is read (168h is a week)."
    )
    step: Duration = Field(default="5m", description="Resolution of the history.")
    seasonality: Literal["Daily", "None"] = Field(
        default="Daily",
        description="Daily compares the value with the same time of day on earlier days; "
        "None with the whole history.",
    )
    window: Duration = Field(
        default="30m", description="With Daily seasonality: how far from the same time of day."
    )
    k: float = Field(default=3.0, gt=0, le=100, description="Band half-width, in spreads.")
    min_samples: int = Field(
        default=12, ge=3, description="Less comparable history than this gives no band."
    )
    min_width: float = Field(
        default=0.05, ge=0, description="The spread is at least this fraction of the centre."
    )
