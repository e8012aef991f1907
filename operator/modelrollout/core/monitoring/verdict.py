"""Thresholds, verdicts and the drift report (``drift.json``).

A drift check that fires on every large window is worse than none: people learn to
ignore it. With enough data every test is significant (a KS test on a million values
rejects a difference of 0.2 %), so a p-value alone says nothing about whether a
difference matters. A feature is therefore judged on three things:

1. **Enough data.** Fewer than ``minSamples`` values on either side is *insufficient*
   (``"drifted": null``), never drifted.
2. **A distance over its threshold.** At least one of the configured distances
   (``maxWasserstein``, ``maxLinf``, ``maxJensenShannon``, ``maxPsi`` by default; ``maxKs``
   and ``maxCdfDistance`` on request) exceeds its limit. Distances measure how much the
   distribution moved, and they do not grow with the sample size: identical distributions
   stay below every default threshold at any size.
3. **Significance.** The difference is unlikely to be noise: the KS test (numbers) or
   the chi-square test (categories) has ``p < alpha``. With sketches, the KS p-value is
   computed after subtracting the sketches' rank errors from the statistic. This guards
   the distances where they are noisy, in small windows.

The defaults follow the tools people already calibrate against: Wasserstein normalised
by the standard deviation at 0.1 and Jensen-Shannon at 0.1 (Evidently), L∞ with the
sample-size correction at 0.1 (SageMaker Model Monitor, for numbers and categories), PSI
at 0.25 (the usual "significant shift"), ``alpha`` = 0.05 and ``minSamples`` = 1,000.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from modelrollout.core.api.base import ApiModel
from modelrollout.core.monitoring import drift
from modelrollout.core.monitoring.builder import WindowSample
from modelrollout.core.monitoring.drift import (
    CategoricalStatistics,
    CategoryCounts,
    NumericStatistics,
)
from modelrollout.core.monitoring.profile import (
    CategoricalProfile,
    NumericProfile,
    Profile,
)


class DriftThresholds(ApiModel):
    """When a feature counts as drifted; a limit of null turns that distance off."""

    min_samples: int = Field(
        default=1000,
        ge=1,
        description="Fewest values on each side for a verdict; fewer is insufficient.",
    )
    alpha: float | None = Field(
        default=0.05,
        gt=0,
        le=1,
        description="A distance over its limit counts only if the KS (numbers) or "
        "chi-square (categories) p-value is below this; null: distances alone.",
    )
    max_wasserstein: float | None = Field(
        default=0.1, gt=0, description="Wasserstein distance over the baseline's std."
    )
    max_linf: float | None = Field(
        default=0.1, gt=0, description="L-infinity distance with the sample-size correction."
    )
    max_jensen_shannon: float | None = Field(
        default=0.1, gt=0, description="Jensen-Shannon distance (bits, 0 to 1)."
    )
    max_psi: float | None = Field(default=0.25, gt=0, description="Population stability index.")
    max_ks: float | None = Field(
        default=None, gt=0, description="Kolmogorov-Smirnov statistic (off by default)."
    )
    max_cdf_distance: float | None = Field(
        default=None,
        gt=0,
        description="Area between the CDFs over the area they cover (off by default).",
    )


# -- the report ------------------------------------------------------------------------------


class SignificanceTest(ApiModel):
    """A test statistic and its p-value."""

    statistic: float = Field(description="The test statistic.")
    p_value: float = Field(description="Its p-value.")


class NumericDrift(ApiModel):
    """A numeric feature's statistics; null when a side has no value."""

    ks: SignificanceTest | None = Field(description="Kolmogorov-Smirnov test.")
    psi: float | None = Field(description="Population stability index over baseline deciles.")
    jensen_shannon: float | None = Field(
        description="Jensen-Shannon distance in bits over baseline deciles."
    )
    wasserstein: float | None = Field(description="Wasserstein distance over the baseline's std.")
    cdf_distance: float | None = Field(
        description="Area between the CDFs over the area they cover (0 same, 1 disjoint)."
    )
    linf: float | None = Field(description="L-infinity with the sample-size correction.")
    drifted: bool | None = Field(description="The verdict; null when the data is insufficient.")


class CategoricalDrift(ApiModel):
    """A categorical feature's statistics; null when a side has no value."""

    chi_square: SignificanceTest | None = Field(description="Pearson's chi-square test.")
    linf: float | None = Field(description="Largest share difference, sample-size corrected.")
    jensen_shannon: float | None = Field(description="Jensen-Shannon distance in bits.")
    drifted: bool | None = Field(description="The verdict; null when the data is insufficient.")


class DriftReport(ApiModel):
    """drift.json: every feature's statistics and verdict, and the drifted features."""

    features: dict[str, NumericDrift | CategoricalDrift] = Field(
        description="Each feature of the baseline by name."
    )
    drifted: list[str] = Field(description="The names of the drifted features, sorted.")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


# -- comparing ---------------------------------------------------------------------------------

Status = Literal["drifted", "stable", "insufficient"]


@dataclass
class FeatureComparison:
    """One feature compared: the statistics, the verdict and why."""

    name: str
    kind: Literal["numeric", "categorical"]
    baseline_count: int
    window_count: int
    statistics: NumericStatistics | CategoricalStatistics | None
    status: Status
    reasons: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool | None:
        return None if self.status == "insufficient" else self.status == "drifted"

    def report(self) -> NumericDrift | CategoricalDrift:
        s = self.statistics
        if self.kind == "numeric":
            assert s is None or isinstance(s, NumericStatistics)
            return NumericDrift(
                ks=_test(s.ks) if s else None,
                psi=s.psi if s else None,
                jensen_shannon=s.jensen_shannon if s else None,
                wasserstein=s.wasserstein if s else None,
                cdf_distance=s.cdf_distance if s else None,
                linf=s.linf if s else None,
                drifted=self.drifted,
            )
        assert s is None or isinstance(s, CategoricalStatistics)
        return CategoricalDrift(
            chi_square=_test(s.chi_square) if s else None,
            linf=s.linf if s else None,
            jensen_shannon=s.jensen_shannon if s else None,
            drifted=self.drifted,
        )


def _test(result: drift.TwoSampleTest) -> SignificanceTest:
    return SignificanceTest(statistic=result.statistic, p_value=result.p_value)


@dataclass
class Comparison:
    """A window compared with a baseline, feature by feature."""

    features: list[FeatureComparison]
    window_rows: int
    ignored: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        return sorted(f.name for f in self.features if f.status == "drifted")

    @property
    def insufficient(self) -> list[str]:
        return sorted(f.name for f in self.features if f.status == "insufficient")

    def report(self) -> DriftReport:
        return DriftReport(
            features={f.name: f.report() for f in self.features}, drifted=self.drifted
        )


class ComparisonError(ValueError):
    """The window cannot be compared with the baseline; the message names the feature."""


def compare(
    baseline: Profile, window: Profile | WindowSample, thresholds: DriftThresholds
) -> Comparison:
    """Compare every feature of ``baseline`` with the same feature of ``window``."""
    features = []
    for name, column in baseline.features.items():
        if isinstance(column, NumericProfile):
            features.append(_numeric(name, column, window, thresholds))
        else:
            features.append(_categorical(name, column, window, thresholds))
    if isinstance(window, Profile):
        ignored = sorted(set(window.features) - set(baseline.features))
        rows = window.rows
    else:
        ignored, rows = window.ignored, window.rows
    return Comparison(features, rows, ignored)


def _numeric(
    name: str, column: NumericProfile, window: Profile | WindowSample, thresholds: DriftThresholds
) -> FeatureComparison:
    baseline = drift.ecdf_of_sketch(column.quantile_sketch())
    if isinstance(window, Profile):
        other = window.features.get(name)
        if other is not None and not isinstance(other, NumericProfile):
            raise ComparisonError(f"feature {name}: numeric in the baseline, categorical in --data")
        current = (
            drift.ecdf_of_sketch(other.quantile_sketch())
            if other is not None
            else drift.ecdf_of_samples([])
        )
    else:
        current = drift.ecdf_of_samples(window.numeric.get(name, []))
    n, m = column.count, current.n
    statistics = None
    if n and m:
        scale = drift.wasserstein_scale(column.std or 0.0, column.mean or 0.0)
        statistics = drift.numeric_statistics(baseline, current, scale=scale)
    return _judge(name, "numeric", n, m, statistics, thresholds)


def _categorical(
    name: str,
    column: CategoricalProfile,
    window: Profile | WindowSample,
    thresholds: DriftThresholds,
) -> FeatureComparison:
    baseline = CategoryCounts(column.frequencies, column.other)
    if isinstance(window, Profile):
        other = window.features.get(name)
        if other is not None and not isinstance(other, CategoricalProfile):
            raise ComparisonError(f"feature {name}: categorical in the baseline, numeric in --data")
        current = CategoryCounts(other.frequencies, other.other) if other else CategoryCounts()
    else:
        current = window.categorical.get(name, CategoryCounts())
    n, m = baseline.n, current.n
    statistics = drift.categorical_statistics(baseline, current) if n and m else None
    return _judge(name, "categorical", n, m, statistics, thresholds)


def _judge(
    name: str,
    kind: Literal["numeric", "categorical"],
    n: int,
    m: int,
    statistics: NumericStatistics | CategoricalStatistics | None,
    thresholds: DriftThresholds,
) -> FeatureComparison:
    def result(status: Status, reasons: list[str]) -> FeatureComparison:
        return FeatureComparison(name, kind, n, m, statistics, status, reasons)

    if statistics is None or min(n, m) < thresholds.min_samples:
        side = "window" if m < n else "baseline"
        return result(
            "insufficient",
            [f"{side} has {min(n, m)} values, fewer than minSamples {thresholds.min_samples}"],
        )
    over = [
        f"{label} {value:.4g} > {limit:g}"
        for label, value, limit in _distances(statistics, thresholds)
        if limit is not None and value > limit
    ]
    if not over:
        return result("stable", [])
    test = statistics.ks if isinstance(statistics, NumericStatistics) else statistics.chi_square
    if thresholds.alpha is not None and not test.p_value < thresholds.alpha:
        note = f"not significant: p {test.p_value:.3g} >= alpha {thresholds.alpha:g}"
        return result("stable", [*over, note])
    return result("drifted", over)


def _distances(
    statistics: NumericStatistics | CategoricalStatistics, t: DriftThresholds
) -> list[tuple[str, float, float | None]]:
    if isinstance(statistics, NumericStatistics):
        return [
            ("wasserstein", statistics.wasserstein, t.max_wasserstein),
            ("linf", statistics.linf, t.max_linf),
            ("jensenShannon", statistics.jensen_shannon, t.max_jensen_shannon),
            ("psi", statistics.psi, t.max_psi),
            ("ks", statistics.ks.statistic, t.max_ks),
            ("cdfDistance", statistics.cdf_distance, t.max_cdf_distance),
        ]
    return [
        ("linf", statistics.linf, t.max_linf),
        ("jensenShannon", statistics.jensen_shannon, t.max_jensen_shannon),
    ]
