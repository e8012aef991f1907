"""Model monitoring inside the rollout: triggers computed by the operator itself.

An ``Anomaly`` trigger compares a metric's value with its normal band, which the operator
learns every analysis interval from the metric's own Prometheus history
(:mod:`modelrollout.core.anomaly`). Like every trigger, it acts as a ``Rollback``, a
``Hold`` or a ``Notify``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelrollout.core.api.base import ApiModel
from modelrollout.core.api.common import Duration


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
