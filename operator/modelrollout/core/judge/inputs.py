"""What the judge compares: latency samples, latency histograms and error counts.

Each input is built with ``of(...)``, which validates everything and raises
:class:`JudgeInputError` naming the field and index at fault, so a verdict is never
computed from a NaN, a negative count or a histogram whose cumulative counts go down.

**Histograms** come as Prometheus gives them: for each ``le`` bound (``+Inf`` last), the
cumulative count of requests at or below it, e.g. ``increase(x_bucket[5m])`` per ``le``.
``increase`` extrapolates, so counts may be fractional; they are rounded to whole requests
after validation. A histogram only says which bucket a request fell in, and the judge's
tests respect that (see :mod:`.latency`): rank tests treat a bucket as one tied value, and
quantile bounds use the bucket's edges.

Internally every input becomes a :class:`Points` view: sorted distinct positions with
weights, which makes rank sums, weighted quantiles and shifted comparisons linear or
``n log n`` whatever the number of requests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LOG_FLOOR_MS = 1e-3
"""Latencies below 1 microsecond (in milliseconds) are counted as 1 microsecond on the log
scale, as the replay's histograms count them in their zero bucket."""

INTERPOLATION_POINTS = 16
"""Points a histogram bucket is spread over, log-uniformly, for effect sizes."""


class JudgeInputError(ValueError):
    """The judge was given something it cannot compare; the message names the field."""


def _float_array(values: object, field: str) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise JudgeInputError(f"{field}: not a list of numbers") from None
    if array.ndim != 1:
        raise JudgeInputError(f"{field}: expected a flat list of numbers")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        index = int(bad[0])
        raise JudgeInputError(f"{field}[{index}]: {array[index]} is not a finite number")
    return array


@dataclass(frozen=True, slots=True)
class Points:
    """Sorted distinct positions with positive weights (counts, possibly fractional)."""

    positions: FloatArray
    weights: FloatArray

    @property
    def total(self) -> float:
        return float(self.weights.sum())


@dataclass(frozen=True, slots=True, eq=False)
class LatencySamples:
    """Per-request latencies in milliseconds, sorted."""

    values: FloatArray

    @classmethod
    def of(cls, values: Sequence[float] | FloatArray, *, field: str = "values") -> LatencySamples:
        array = _float_array(values, field)
        negative = np.flatnonzero(array < 0)
        if negative.size:
            index = int(negative[0])
            raise JudgeInputError(f"{field}[{index}]: {array[index]} is a negative latency")
        return cls(np.sort(array))

    @property
    def n(self) -> int:
        return int(self.values.size)

    def ranked(self) -> Points:
        """Distinct values and how often each occurs (ties kept as ties)."""
        positions, counts = np.unique(self.values, return_counts=True)
        return Points(positions, counts.astype(np.float64))

    def logs(self) -> Points:
        """Distinct log latencies with their counts."""
        ranked = self.ranked()
        return Points(np.log(np.maximum(ranked.positions, LOG_FLOOR_MS)), ranked.weights)

    def binned(self, bounds: FloatArray) -> LatencyHistogram:
        """These samples counted into the buckets ``(bounds[i-1], bounds[i]]``."""
        index = np.searchsorted(bounds, self.values, side="left")
        counts = np.bincount(index, minlength=bounds.size).astype(np.float64)
        return LatencyHistogram(bounds, counts)


@dataclass(frozen=True, slots=True, eq=False)
class LatencyHistogram:
    """Requests per latency bucket: ``counts[i]`` fell in ``(bounds[i-1], bounds[i]]``.

    ``bounds`` ends with ``+Inf``; counts are per bucket (not cumulative) and whole.
    """

    bounds: FloatArray
    counts: FloatArray

    @classmethod
    def of(
        cls,
        le_bounds: Sequence[float] | FloatArray,
        counts: Sequence[float] | FloatArray,
        *,
        cumulative: bool = True,
        field: str = "histogram",
    ) -> LatencyHistogram:
        """A histogram from Prometheus-style ``le`` bounds (``+Inf`` last) and counts.

        With ``cumulative`` (Prometheus's ``_bucket`` series), ``counts[i]`` is the number
        of requests at or below ``le_bounds[i]``; otherwise the number in bucket ``i``.
        """
        try:
            bounds = np.asarray(le_bounds, dtype=np.float64)
        except (TypeError, ValueError):
            raise JudgeInputError(f"{field}.le: not a list of numbers") from None
        if bounds.ndim != 1 or bounds.size == 0:
            raise JudgeInputError(f"{field}.le: expected a non-empty flat list of bounds")
        nan = np.flatnonzero(np.isnan(bounds))
        if nan.size:
            raise JudgeInputError(f"{field}.le[{int(nan[0])}]: NaN is not a bucket bound")
        if not math.isinf(bounds[-1]) or bounds[-1] < 0:
            raise JudgeInputError(
                f'{field}.le: the last bound must be +Inf (Prometheus\'s le="+Inf" bucket), '
                f"got {bounds[-1]}"
            )
        finite = bounds[:-1]
        if np.isinf(finite).any():
            index = int(np.flatnonzero(np.isinf(finite))[0])
            raise JudgeInputError(f"{field}.le[{index}]: only the last bound may be infinite")
        if finite.size and finite[0] < 0:
            raise JudgeInputError(f"{field}.le[0]: {finite[0]} is a negative latency")
        steps = np.flatnonzero(np.diff(bounds) <= 0)
        if steps.size:
            index = int(steps[0]) + 1
            raise JudgeInputError(
                f"{field}.le[{index}]: {bounds[index]} is not above the previous bound "
                f"{bounds[index - 1]} (bounds must increase)"
            )
        values = _float_array(counts, f"{field}.counts")
        if values.size != bounds.size:
            raise JudgeInputError(
                f"{field}.counts: {values.size} counts for {bounds.size} le bounds"
            )
        negative = np.flatnonzero(values < 0)
        if negative.size:
            index = int(negative[0])
            raise JudgeInputError(f"{field}.counts[{index}]: {values[index]} is a negative count")
        if cumulative:
            drops = np.flatnonzero(np.diff(values) < 0)
            if drops.size:
                index = int(drops[0]) + 1
                raise JudgeInputError(
                    f"{field}.counts[{index}]: cumulative count {values[index]:g} is below the "
                    f"previous {values[index - 1]:g} (cumulative buckets never decrease)"
                )
            whole = np.rint(values)
            per_bucket = np.diff(whole, prepend=0.0)
        else:
            per_bucket = np.rint(values)
        return cls(bounds, per_bucket)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def ranked(self) -> Points:
        """One tied position per non-empty bucket (its upper bound), with its count."""
        keep = self.counts > 0
        return Points(self.bounds[keep], self.counts[keep])

    def edges(self) -> tuple[FloatArray, FloatArray]:
        """Each bucket's lower and upper edge, both finite and positive, in log space.

        The first bucket's lower edge is extrapolated geometrically from the next bound;
        a bucket whose bound is 0 (exact zeros) sits at a thousandth of the next bound; the
        ``+Inf`` bucket is a point at the last finite bound, as ``histogram_quantile`` does.
        """
        finite = self.bounds[:-1]
        upper = np.empty(self.bounds.size)
        upper[:-1] = finite
        last = finite[-1] if finite.size else 1.0
        upper[-1] = last
        positive = finite[finite > 0]
        smallest = positive[0] if positive.size else 1.0
        upper = np.maximum(upper, smallest * 1e-3)
        lower = np.empty_like(upper)
        lower[1:] = upper[:-1]
        if positive.size >= 2:
            lower[0] = upper[0] * positive[0] / positive[1]
        else:
            lower[0] = upper[0] / 2.0
        lower[-1] = upper[-1]
        lower = np.minimum(lower, upper)
        return np.log(lower), np.log(upper)

    def logs(self, points: int = INTERPOLATION_POINTS) -> Points:
        """Each bucket spread log-uniformly over ``points`` positions of equal weight."""
        lower, upper = self.edges()
        keep = self.counts > 0
        lower, upper, counts = lower[keep], upper[keep], self.counts[keep]
        fractions = (np.arange(points) + 0.5) / points
        positions = (lower[:, None] + (upper - lower)[:, None] * fractions[None, :]).ravel()
        weights = np.repeat(counts / points, points)
        order = np.argsort(positions, kind="stable")
        positions, weights = positions[order], weights[order]
        unique, inverse = np.unique(positions, return_inverse=True)
        return Points(unique, np.bincount(inverse, weights=weights).astype(np.float64))


LatencyInput = LatencySamples | LatencyHistogram


@dataclass(frozen=True, slots=True)
class ErrorCounts:
    """Failed requests out of all requests in the window."""

    errors: int
    total: int

    @classmethod
    def of(cls, errors: float, total: float, *, field: str = "counts") -> ErrorCounts:
        whole: list[int] = []
        for name, value in (("errors", errors), ("total", total)):
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise JudgeInputError(f"{field}.{name}: {value!r} is not a number")
            number = float(value)
            if not math.isfinite(number):
                raise JudgeInputError(f"{field}.{name}: {value} is not a finite number")
            if number < 0:
                raise JudgeInputError(f"{field}.{name}: {value} is a negative count")
            if number != math.floor(number):
                raise JudgeInputError(f"{field}.{name}: {value} is not a whole count")
            whole.append(int(number))
        if whole[0] > whole[1]:
            raise JudgeInputError(
                f"{field}.errors: {whole[0]} errors is more than the {whole[1]} requests"
            )
        return cls(whole[0], whole[1])

    @property
    def rate(self) -> float | None:
        return self.errors / self.total if self.total else None
