"""Request settings of a replay that are neither the rate nor the event selection.

Kept as an API model so that a ReplayTest resource can embed it unchanged and the CLI
flags, the result's echo of the settings and the resource all mean the same thing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from modelrollout.core.api.base import DURATION_PATTERN, ApiModel, parse_duration
from modelrollout.core.replay.jsonpath import compile_path

DEFAULT_CONCURRENCY = 100
DEFAULT_TIMEOUT = "10s"
DEFAULT_MAX_LAG = "1s"


class ReplayOptions(ApiModel):
    """How requests are sent and how responses are read."""

    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY,
        ge=1,
        le=10_000,
        description=(
            "Most requests in flight at once, per endpoint. A send that finds the limit "
            "reached waits; if it cannot leave within maxLag of its intended time it is "
            "dropped and counted."
        ),
    )
    timeout: str = Field(
        default=DEFAULT_TIMEOUT,
        pattern=DURATION_PATTERN,
        description="Per-request timeout from the actual send (e.g. 10s, 500ms).",
    )
    max_lag: str = Field(
        default=DEFAULT_MAX_LAG,
        pattern=DURATION_PATTERN,
        description=(
            "Longest a send may wait behind the concurrency limit past its intended time "
            "before it is dropped (counted in counts.dropped, never silently skipped)."
        ),
    )
    prediction_path: str | None = Field(
        default=None,
        description=(
            "Where the prediction is in the JSON response, e.g. predictions[0] or "
            "$.predictions.0.score. When set, a 2xx response without a prediction there is "
            "an invalid_response error; quality and agreement need it."
        ),
    )
    prediction_kind: Literal["auto", "score", "class"] = Field(
        default="auto",
        description=(
            "How to read predictions: score (numbers, thresholded), class (labels), or auto "
            "(numbers are scores, strings and booleans are classes)."
        ),
    )
    label_field: str = Field(
        default="label",
        description="Event field holding the ground truth; dots reach into objects.",
    )
    threshold: float = Field(
        default=0.5, description="Scores at or above this predict the positive class."
    )
    positive_label: str = Field(
        default="1",
        description="The positive class label (labels true, 1 and 1.0 all read as 1).",
    )
    use_event_path: bool = Field(
        default=False,
        description=(
            "Send each event to the endpoint's origin plus the event's recorded path instead "
            "of the endpoint URL's own path."
        ),
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra headers on every request (they override recorded headers).",
    )
    capacity_p99_ms: float | None = Field(
        default=None,
        gt=0,
        description=(
            "When set, the result reports the capacity: the highest rate at which p99 latency "
            "stayed at or below this many milliseconds. Use it with a ramp or steps rate "
            "pattern that pushes past the limit."
        ),
    )
    capacity_window: str = Field(
        default="5s",
        pattern=DURATION_PATTERN,
        description="Length of the windows in which the capacity's p99 is measured.",
    )

    @field_validator("prediction_path")
    @classmethod
    def _valid_path(cls, value: str | None) -> str | None:
        if value is not None:
            compile_path(value)
        return value

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError("timeout must be positive")
        return value

    @field_validator("capacity_window")
    @classmethod
    def _whole_window(cls, value: str) -> str:
        seconds = parse_duration(value)
        if seconds < 1 or seconds != int(seconds):
            raise ValueError("capacityWindow must be a whole number of seconds, at least 1s")
        return value

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)

    @property
    def max_lag_seconds(self) -> float:
        return parse_duration(self.max_lag)
