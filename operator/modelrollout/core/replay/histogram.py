"""A mergeable latency histogram with a guaranteed relative error.

Percentiles cannot be averaged: the p99 of two shards is not the mean of their p99s. What
can be combined exactly is a histogram, provided every shard uses the same bucket
boundaries. This module implements the log-bucketed scheme popularised by DDSketch:
bucket ``i`` holds the values in ``(gamma**(i-1), gamma**i]`` with
``gamma = (1 + alpha) / (1 - alpha)``, and a quantile is reported as the bucket's
representative ``2 * gamma**i / (gamma + 1)``. Whatever value of the bucket was the true
quantile, the representative is within ``alpha`` of it (relative error), so

* the quantile reported for rank ``floor(q * (n - 1))`` is within ``alpha`` of the sample
  value of that rank (numpy's ``method="lower"``), for every distribution;
* merging is adding counts bucket by bucket, which is exact: the merge of shard
  histograms is bit-for-bit the histogram a single run would have built;
* memory grows with the logarithm of the value range, not with the number of samples:
  from 1 microsecond to 1 hour at ``alpha = 0.005`` there are at most ~2,200 buckets, and a
  real latency distribution fills a few hundred.

Values at or below ``min_value`` go to a zero bucket (they are below any latency a
network request can have). Count, sum, min and max are kept exactly, so the mean and
the maximum are exact rather than estimated. The bucket indexes are serialised sparsely
(delta-encoded index/count pairs) to keep shard results small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import Field

from modelrollout.core.api.base import ApiModel

DEFAULT_RELATIVE_ACCURACY = 0.005
"""Relative error bound of latency percentiles: 0.5 %, inside the promised 1 %."""

DEFAULT_MIN_VALUE = 1e-3
"""Values at or below this (in the histogram's unit, milliseconds: 1 microsecond) count as zero."""


class HistogramState(ApiModel):
    """The serialised form of a :class:`LogHistogram`, enough to merge it exactly."""

    relative_accuracy: float = Field(
        description="Relative error bound alpha of the reported quantiles (0.005 = 0.5 %).",
        gt=0,
        lt=1,
    )
    min_value: float = Field(
        description="Values at or below this are counted in the zero bucket.", ge=0
    )
    count: int = Field(description="Number of recorded values.", ge=0)
    zero_count: int = Field(description="Number of values at or below minValue.", ge=0)
    sum: float = Field(description="Exact sum of the recorded values.")
    min: float | None = Field(default=None, description="Smallest recorded value, exact.")
    max: float | None = Field(default=None, description="Largest recorded value, exact.")
    buckets: list[int] = Field(
        default_factory=list,
        description=(
            "Bucket counts, run-encoded: the first number is the index of the first bucket, "
            "then a positive number is the count of the next bucket and a negative number -n "
            "skips n empty buckets."
        ),
    )


class LogHistogram:
    """Log-bucketed histogram; see the module documentation for the error bound."""

    __slots__ = (
        "_gamma",
        "_inv_log_gamma",
        "alpha",
        "count",
        "counts",
        "max",
        "min",
        "min_value",
        "sum",
        "zero_count",
    )

    def __init__(
        self,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
        min_value: float = DEFAULT_MIN_VALUE,
    ) -> None:
        if not 0 < relative_accuracy < 1:
            raise ValueError(f"relative accuracy {relative_accuracy} must be in (0, 1)")
        self.alpha = relative_accuracy
        self.min_value = min_value
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._inv_log_gamma = 1.0 / math.log(self._gamma)
        self.counts: dict[int, int] = {}
        self.zero_count = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    # -- recording -----------------------------------------------------------------
    def add(self, value: float) -> None:
        """Record one value (negative values are clamped to zero)."""
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value <= self.min_value:
            self.zero_count += 1
            return
        index = math.ceil(math.log(value) * self._inv_log_gamma)
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1

    def add_many(self, values: Iterable[float] | np.ndarray) -> None:
        """Record many values at once (vectorised)."""
        array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
        array = array.astype(np.float64).ravel()
        if array.size == 0:
            return
        self.count += int(array.size)
        self.sum += float(array.sum())
        self.min = min(self.min, float(array.min()))
        self.max = max(self.max, float(array.max()))
        positive = array[array > self.min_value]
        self.zero_count += int(array.size - positive.size)
        if positive.size:
            indexes = np.ceil(np.log(positive) * self._inv_log_gamma).astype(np.int64)
            unique, counts = np.unique(indexes, return_counts=True)
            for index, count in zip(unique.tolist(), counts.tolist(), strict=True):
                self.counts[index] = self.counts.get(index, 0) + count

    def merge(self, other: LogHistogram) -> None:
        """Add ``other`` into this histogram; exact when both use the same accuracy."""
        if not math.isclose(self.alpha, other.alpha) or not math.isclose(
            self.min_value, other.min_value
        ):
            raise ValueError(
                "cannot merge histograms with different accuracy "
                f"({self.alpha}/{self.min_value} vs {other.alpha}/{other.min_value})"
            )
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.zero_count += other.zero_count
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    # -- reading -------------------------------------------------------------------
    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def representative(self, index: int) -> float:
        """The value reported for bucket ``index``: within ``alpha`` of any value in it."""
        return 2.0 * self._gamma**index / (self._gamma + 1.0)

    def quantile(self, q: float, *, clamp: bool = True) -> float | None:
        """The value of rank ``floor(q * (count - 1))``, within ``alpha`` (relative)."""
        values = self.quantiles([q], clamp=clamp)
        return values[0]

    def quantiles(self, qs: Sequence[float], *, clamp: bool = True) -> list[float | None]:
        """Several quantiles in one pass over the buckets.

        With ``clamp`` (the default) results are clamped to the exact min and max, which
        only moves them towards the truth; without it the result depends on the buckets
        alone, so it is the same whether or not min and max were kept.
        """
        if self.count == 0:
            return [None for _ in qs]
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile {q} must be in [0, 1]")
        ranks = sorted((math.floor(q * (self.count - 1)), pos) for pos, q in enumerate(qs))
        results: list[float | None] = [None] * len(qs)
        cumulative = self.zero_count
        pending = 0
        # Ranks inside the zero bucket.
        while pending < len(ranks) and ranks[pending][0] < cumulative:
            results[ranks[pending][1]] = max(0.0, self.min) if clamp else 0.0
            pending += 1
        for index in sorted(self.counts):
            if pending >= len(ranks):
                break
            cumulative += self.counts[index]
            value = self.representative(index)
            while pending < len(ranks) and ranks[pending][0] < cumulative:
                results[ranks[pending][1]] = min(max(value, self.min), self.max) if clamp else value
                pending += 1
        while pending < len(ranks):  # pragma: no cover - only if counts were tampered with
            results[ranks[pending][1]] = self.max if clamp else None
            pending += 1
        return results

    # -- serialisation ---------------------------------------------------------------
    def to_state(self) -> HistogramState:
        return HistogramState(
            relative_accuracy=self.alpha,
            min_value=self.min_value,
            count=self.count,
            zero_count=self.zero_count,
            sum=self.sum,
            min=self.min if self.count else None,
            max=self.max if self.count else None,
            buckets=encode_counts(self.counts),
        )

    @classmethod
    def from_state(cls, state: HistogramState) -> LogHistogram:
        histogram = cls(state.relative_accuracy, state.min_value)
        histogram.counts = decode_counts(state.buckets)
        histogram.zero_count = state.zero_count
        histogram.count = state.count
        histogram.sum = state.sum
        histogram.min = state.min if state.min is not None else math.inf
        histogram.max = state.max if state.max is not None else -math.inf
        if histogram.zero_count + sum(histogram.counts.values()) != histogram.count:
            raise ValueError("histogram bucket counts do not add up to its count")
        return histogram

    def copy(self) -> LogHistogram:
        return LogHistogram.from_state(self.to_state())


def encode_counts(counts: dict[int, int]) -> list[int]:
    """Run-encode sparse counts: ``[first index, count | -skip, ...]``.

    Dense stretches cost one number per bucket and gaps one number per gap, so both a
    latency histogram (contiguous buckets) and a sparse one stay small.
    """
    if not counts:
        return []
    indexes = sorted(i for i, c in counts.items() if c)
    if not indexes:
        return []
    flat = [indexes[0]]
    previous = indexes[0] - 1
    for index in indexes:
        gap = index - previous - 1
        if gap:
            flat.append(-gap)
        flat.append(counts[index])
        previous = index
    return flat


def decode_counts(flat: Sequence[int]) -> dict[int, int]:
    """Inverse of :func:`encode_counts`; raises :class:`ValueError` on a malformed list."""
    counts: dict[int, int] = {}
    if not flat:
        return counts
    index = flat[0]
    for value in flat[1:]:
        if value > 0:
            counts[index] = value
            index += 1
        elif value < 0:
            index += -value
        else:
            raise ValueError("run-encoded counts must not contain 0")
    return counts
