"""Anomaly bands: the normal range of a metric, learned from its own history.

A fixed threshold has to be chosen by hand and is either loose enough to miss a shift
(p99 from 8 ms to 20 ms under a 50 ms SLO) or tight enough to fire on every busy hour. A
band is learned instead: from the metric's Prometheus history, the operator takes the
values that are comparable with *now* and computes a robust centre and spread.

* **Comparable values.** With ``Daily`` seasonality, the values at the same time of day
  (within ``± window``) on each earlier day of the history: Monday 14:00 is compared with
  the previous days at 13:30-14:30, so a daily peak is not an anomaly. With ``None``, every
  value of the history.
* **Centre and spread.** The median and the median absolute deviation (MAD), scaled by
  1.4826 so that it estimates the standard deviation of normal data. Both ignore the odd
  outlier in the history, which a mean and a standard deviation would not.
* **Band.** ``median ± k · max(1.4826 · MAD, minWidth · |median|, absoluteWidth)``. The
  floors keep a perfectly flat history (a MAD of 0) from turning every wiggle into an
  anomaly.
* **Too little history** (fewer than ``minSamples`` comparable values) gives no band: the
  measurement is Inconclusive, never a pass and never a failure.

Everything here is pure; the provider supplies the history as ``(unix time, value)``
pairs (a Prometheus range query).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Seasonality = Literal["Daily", "None"]

MAD_TO_SIGMA = 1.4826
"""MAD times 1.4826 estimates the standard deviation of normally distributed data."""
DAY = 86_400.0


@dataclass(frozen=True)
class Band:
    """The normal range at one instant, with what it was computed from."""

    lower: float
    upper: float
    center: float
    spread: float
    samples: int
    seasonality: Seasonality

    def contains(self, value: float) -> bool:
        return self.lower <= value <= self.upper

    def describe(self) -> str:
        return (
            f"band [{_num(self.lower)}, {_num(self.upper)}] around {_num(self.center)} "
            f"(spread {_num(self.spread)}, {self.samples} {self.seasonality.lower()} samples)"
        )


@dataclass(frozen=True)
class BandSettings:
    seasonality: Seasonality = "Daily"
    window_seconds: float = 1800.0
    """With Daily seasonality, how far from the same time of day a value still counts."""
    k: float = 3.0
    min_samples: int = 12
    min_width: float = 0.05
    """The spread is at least this fraction of the centre."""
    absolute_width: float = 0.0
    """The spread is at least this much, in the metric's unit."""


def comparable(
    history: Sequence[tuple[float, float]], now: float, settings: BandSettings
) -> list[float]:
    """The finite values of the history that are comparable with the instant ``now``."""
    values = []
    for stamp, value in history:
        if not math.isfinite(value) or stamp > now:
            continue
        if settings.seasonality == "Daily":
            days_back = round((now - stamp) / DAY)
            if days_back < 1 or abs(now - stamp - days_back * DAY) > settings.window_seconds:
                continue
        values.append(value)
    return values


def learn(
    history: Sequence[tuple[float, float]], now: float, settings: BandSettings
) -> Band | None:
    """The band at ``now``, or None when the history holds too few comparable values."""
    values = comparable(history, now, settings)
    if len(values) < settings.min_samples:
        return None
    center = _median(values)
    mad = _median([abs(v - center) for v in values])
    spread = max(MAD_TO_SIGMA * mad, settings.min_width * abs(center), settings.absolute_width)
    return Band(
        lower=center - settings.k * spread,
        upper=center + settings.k * spread,
        center=center,
        spread=spread,
        samples=len(values),
        seasonality=settings.seasonality,
    )


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def _num(value: float) -> str:
    return f"{value:.4g}"
