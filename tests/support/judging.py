"""Data for the judge's tests: seeded lognormal latencies, Prometheus buckets, histograms."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from modelrollout.core import judge

PROMETHEUS_BUCKETS = [5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, np.inf]
"""Prometheus client libraries' default buckets, in milliseconds."""

FINE_BUCKETS = [*np.geomspace(1.0, 2000.0, 200).tolist(), np.inf]
"""About 3.9 % wide: finer than any tolerance the tests use."""


def lognormal(
    seed: int, n: int, *, median: float = 20.0, sigma: float = 0.4
) -> npt.NDArray[np.float64]:
    return np.random.default_rng(seed).lognormal(np.log(median), sigma, n)


def cumulative(values: npt.ArrayLike, bounds: list[float]) -> list[float]:
    """Prometheus's cumulative bucket counts of ``values`` for each ``le``."""
    data = np.sort(np.asarray(values, dtype=np.float64))
    return [float(np.searchsorted(data, le, side="right")) for le in bounds]


def histogram(values: npt.ArrayLike, bounds: list[float]) -> judge.LatencyHistogram:
    return judge.LatencyHistogram.of(bounds, cumulative(values, bounds))


def samples(values: npt.ArrayLike) -> judge.LatencySamples:
    return judge.LatencySamples.of(np.asarray(values, dtype=np.float64))
