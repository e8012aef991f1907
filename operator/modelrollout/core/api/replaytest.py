"""The ReplayTest kind: one replay of recorded production events against a model endpoint.

A ReplayTest is run by the operator as an Indexed Job. Each shard replays its part of the
events at its part of the rate and prints a mergeable result; the operator merges the
shards exactly (histograms are merged, percentiles are never averaged), judges the merged
result against ``successCriteria`` and writes it to the status.

:class:`ReplaySettings` is shared with the ModelDeployment's NonProduction stage, which
creates ReplayTests from it, so a replay is configured the same way in both places.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from modelrollout.core.api.base import ApiModel, cel, validations
from modelrollout.core.api.common import (
    Condition,
    Duration,
    EmbeddedObject,
    Endpoint,
    KeyReference,
)
from modelrollout.core.replay.criteria import SuccessCriteria
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.rates import RateSpec
from modelrollout.core.replay.result import ReplaySummary
from modelrollout.core.replay.selection import EventSelection

KIND = "ReplayTest"
PLURAL = "replaytests"


class VolumeEventSource(ApiModel):
    """A file on a PersistentVolumeClaim, mounted read-only into the replay pods."""

    claim_name: str = Field(
        description="Name of the PersistentVolumeClaim in the same namespace.",
        min_length=1,
        max_length=253,
    )
    path: str = Field(
        description="Path of the JSON Lines file (optionally gzip) inside the volume.",
        min_length=1,
        max_length=4096,
    )


class EventSource(ApiModel):
    """Where the recorded events come from: exactly one of configMapKeyRef, url or volume."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "[has(self.configMapKeyRef), has(self.url), has(self.volume)]"
                ".filter(x, x).size() == 1",
                "exactly one of configMapKeyRef, url or volume must be set",
            )
        )
    }

    config_map_key_ref: KeyReference | None = Field(
        default=None,
        description="A ConfigMap key holding the events as JSON Lines (use binaryData for "
        "gzip). Good for small datasets; a ConfigMap holds at most 1 MiB.",
    )
    url: str | None = Field(
        default=None,
        description="An http(s) URL serving the events as JSON Lines, optionally gzip.",
        pattern=r"^https?://",
        max_length=2048,
    )
    volume: VolumeEventSource | None = Field(
        default=None, description="A file on a PersistentVolumeClaim."
    )


class ReplaySettings(ReplayOptions):
    """How to replay: events, rate and length, request options, quality fields and success
    criteria. The request options are the same as the replay command's flags."""

    events: EventSource = Field(description="Where the recorded events come from.")
    selection: EventSelection | None = Field(
        default=None,
        description="Which recorded events to use: a time window, attribute filters, a "
        "sampling fraction and a maximum count.",
    )
    rate: RateSpec = Field(
        description="The transaction rate of the replay, which may differ from the rate at "
        "which the events happened (a constant rate, a speed factor, or a pattern), and "
        "the run length (a duration or a request count)."
    )
    parallelism: int = Field(
        default=1,
        description="Number of shards (pods of the Indexed Job). The rate and the events "
        "are split evenly across shards and their results are merged exactly.",
        ge=1,
        le=64,
    )
    success_criteria: SuccessCriteria | None = Field(
        default=None,
        description="Thresholds the result must meet, absolute or relative to the "
        "baseline. Without criteria the verdict passes when the replay completes.",
    )
    active_deadline: Duration = Field(
        default="30m",
        description="The whole test fails with reason DeadlineExceeded after this long.",
    )
    resources: EmbeddedObject | None = Field(
        default=None,
        description="Resource requests and limits of each replay pod "
        "(a core/v1 ResourceRequirements). Defaults are set by the operator.",
    )


class ReplayTestSpec(ReplaySettings):
    """What to replay, where to send it, and what counts as passing."""

    target: Endpoint = Field(description="The endpoint under test (the candidate model).")
    baseline: Endpoint | None = Field(
        default=None,
        description="The endpoint to compare with (usually the production model). Each "
        "event is sent to both; the result reports agreement and side-by-side deltas.",
    )


ReplayPhase = Literal["Pending", "Running", "Succeeded", "Failed"]
Verdict = Literal["Pending", "Passed", "Failed", "Inconclusive"]


class ReplayProgress(ApiModel):
    """How far the shards have got."""

    shards: int = Field(default=0, description="Number of shards.", ge=0)
    succeeded: int = Field(default=0, description="Shards that finished.", ge=0)
    failed: int = Field(default=0, description="Shards that failed.", ge=0)
    active: int = Field(default=0, description="Shards running now.", ge=0)


class ReplayTestStatus(ApiModel):
    """The observed state of a ReplayTest, written by the operator."""

    phase: ReplayPhase = Field(
        default="Pending", description="Pending, Running, Succeeded or Failed."
    )
    verdict: Verdict = Field(
        default="Pending", description="Pending, Passed, Failed or Inconclusive."
    )
    reasons: list[str] = Field(
        default_factory=list,
        description="Why the verdict is what it is, one line per criterion.",
        max_length=64,
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes.", ge=0
    )
    job_name: str | None = Field(default=None, description="The Job that runs the replay.")
    executor: Literal["job", "local"] | None = Field(
        default=None, description="The executor that ran the replay."
    )
    start_time: str | None = Field(default=None, description="When the replay started.")
    completion_time: str | None = Field(default=None, description="When the replay ended.")
    progress: ReplayProgress | None = Field(default=None, description="Shard progress.")
    result: ReplaySummary | None = Field(
        default=None,
        description="The merged result of all shards: the measurements of result.json "
        "without its mergeable state, timeline and settings (see docs/replay.md).",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="ReferencesResolved, Complete and Passed, with reasons.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    kopf: EmbeddedObject | None = Field(
        default=None, description="Bookkeeping of the operator framework; do not edit."
    )


class ReplayTest(ApiModel):
    """A replay of recorded production events against a model endpoint, run as a Job."""

    api_version: Literal["modelrollout.io/v1alpha1"] = Field(
        default="modelrollout.io/v1alpha1", description="modelrollout.io/v1alpha1"
    )
    kind: Literal["ReplayTest"] = Field(default="ReplayTest", description="ReplayTest")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: ReplayTestSpec = Field(description="What to replay and how to judge it.")
    status: ReplayTestStatus | None = Field(default=None, description="Written by the operator.")
