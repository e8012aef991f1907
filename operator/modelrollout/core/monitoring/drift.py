r"""Drift statistics between a baseline and a window, on sketches or raw samples.

Every numeric statistic here is a functional of two cumulative distribution functions.
A raw sample's CDF is its empirical CDF; a KLL sketch's CDF is the weighted empirical CDF
of the values it retained (:meth:`~.sketches.QuantileSketch.items`). Both become an
:class:`Ecdf` (sorted distinct values and ``F`` at each), and every statistic is computed
exactly on the two step functions. So a raw sample against a raw sample gives exactly
what scipy gives, and a sketch differs from its raw data only by the sketch's rank error.

**Numeric statistics.** ``F`` is the baseline's CDF, ``G`` the window's, ``n`` and ``m``
their sample sizes; both step functions change only at the points of their union ``u``.

* ``ks``: ``D = max |F - G|`` over ``u`` (Kolmogorov-Smirnov), and a p-value from the
  asymptotic Kolmogorov distribution with Stephens' small-sample correction,
  ``p = Q((√N + 0.12 + 0.11/√N) · D')``, ``N = nm/(n + m)``,
  ``Q(λ) = 2 Σ (-1)^(j-1) exp(-2 j² λ²)``. ``D' = max(0, D - ε_F - ε_G)`` removes the
  sketches' rank errors first, so a p-value from sketches never overstates the evidence.
* ``linf``: the L∞ distance with SageMaker Model Monitor's sample-size correction,
  ``max(0, D - 1.8 · √((n + m)/(nm)))``. ``1.8 √(1/n + 1/m)`` is the Kolmogorov-Smirnov
  critical value at a significance of ``2 e^(-2 · 1.8²) ≈ 0.3 %``: only the part of ``D``
  that sampling noise cannot explain counts, so small windows are not flagged.
* ``wasserstein``: ``W = ∫ |F - G| dx`` (the earth mover's distance), divided by the
  baseline's standard deviation, so 0.1 means "the mass moved a tenth of a standard
  deviation on average", whatever the feature's unit (Evidently's normalisation, which
  keeps its 0.1 threshold meaningful). A constant baseline has no spread; the distance is
  then divided by ``|mean|`` (or 1 if the mean is 0).
* ``cdfDistance``: the area between the CDFs over the area they cover,
  ``W / (W + O)`` with ``O = ∫ min(F, G) · (1 - max(F, G)) dx``, the area where both
  distributions are still climbing. 0 for identical distributions, 1 for disjoint ones,
  and independent of the unit.
* ``psi`` and ``jensenShannon`` compare the masses ``p`` and ``q`` of :data:`BINS` bins
  whose edges are the baseline's deciles (each bin holds a tenth of the baseline, so
  every bin is informative whatever the shape). ``psi = Σ (q - p) ln(q/p)`` with masses
  floored at :data:`PSI_FLOOR` so an empty bin is not infinite; ``jensenShannon`` is the
  Jensen-Shannon *distance* in bits, ``√(½ KL(p‖m) + ½ KL(q‖m))``, ``m = (p + q)/2``,
  between 0 (identical) and 1 (disjoint), as ``scipy.spatial.distance.jensenshannon``
  with ``base=2``.

**Categorical statistics** compare the category counts, aligned on the baseline's
categories plus one ``other`` cell (the baseline's folded values, and every window value
the baseline does not know, so a new category shows up as a growing ``other``):

* ``chiSquare``: Pearson's statistic of the 2 x K contingency table without continuity
  correction, with ``K - 1`` degrees of freedom (``scipy.stats.chi2_contingency`` with
  ``correction=False``); cells empty on both sides are left out.
* ``linf``: ``max |p_c - q_c|`` less the same ``1.8 √(1/n + 1/m)``. The share of one
  category has a standard error of at most ``½ √(1/n + 1/m)``, so this removes 3.6
  standard errors: below 1 % false alarms even over a hundred categories.
* ``jensenShannon``: as for numbers, over the category shares.

**Tolerances for sketches.** With 99 % confidence a KLL sketch's CDF is within ``ε`` of
its data's CDF everywhere (``ε = 1.33 %`` at ``k = 200``), and an interval's mass within
``δ`` (``1.65 %``). For a raw window, ``ε_G = δ_G = 0``. Then:

* ``|D̂ - D| ≤ ε_F + ε_G`` for ``ks`` and for ``linf`` (the correction is exact);
* ``|Ŵ - W| ≤ ε_F R_F + ε_G R_G`` (``R`` = max - min), since ``|∫|F̂ - Ĝ| - ∫|F - G|| ≤
  ∫|F̂ - F| + ∫|Ĝ - G|`` and each integrand is at most ``ε`` on the range; divided by
  the spread for ``wasserstein``. This bound is tight only for bounded data; in practice
  the error is an order of magnitude smaller (the test suite reports both);
* ``cdfDistance = A / (A + O)`` is increasing in ``A`` and decreasing in ``O``: with
  ``|Â - A| ≤ e_A`` (as ``W``) and ``|Ô - O| ≤ 2 (ε_F + ε_G) R`` (``R`` the union's range;
  ``min`` and ``max`` move by at most the CDF error and ``|ab - a'b'| ≤ |a - a'| + |b - b'|``
  on ``[0, 1]``), the true value lies between ``(Â - e_A)/(Â - e_A + Ô + e_O)`` and
  ``(Â + e_A)/(Â + e_A + Ô - e_O)``;
* ``psi`` and ``jensenShannon`` are sums of per-bin terms ``t(p, q)`` that are jointly
  convex, zero when ``p = q`` and growing away from it. With every bin mass within
  ``δ_F``/``δ_G`` of the truth, the true value lies between the sum of each term's
  minimum and the sum of its maximum over the box ``[p̂ ± δ_F] x [q̂ ± δ_G]``: the maximum
  sits at a corner, the minimum at the corner nearest the diagonal (or 0 if the box
  crosses it). :func:`term_bounds` computes this, and the tests check scipy's value of
  the raw data lies inside.

p-values use no scipy at run time: :func:`kolmogorov_sf` and :func:`chi2_sf` (the
regularised upper incomplete gamma function, by its series or continued fraction).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from modelrollout.core.monitoring.sketches import FloatArray, QuantileSketch

BINS = 10
"""Bins for psi and jensenShannon on numbers: the baseline's deciles."""
PSI_FLOOR = 1e-4
"""Smallest bin mass in psi, so that a bin empty on one side adds a finite amount."""
LINF_CORRECTION = 1.8
"""SageMaker Model Monitor's constant in the robust L∞ distance."""


# -- distributions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ecdf:
    """A step CDF: ``cdf[i]`` is the fraction of the sample at or below ``values[i]``."""

    values: FloatArray
    cdf: FloatArray
    n: int
    rank_error: float = 0.0
    mass_error: float = 0.0

    @property
    def empty(self) -> bool:
        return self.values.size == 0

    def at(self, x: FloatArray) -> FloatArray:
        """``F(x)``, the fraction at or below each ``x``."""
        index = np.searchsorted(self.values, x, side="right")
        padded = np.concatenate(([0.0], self.cdf))
        return padded[index]

    def below(self, x: FloatArray) -> FloatArray:
        """``F(x-)``, the fraction strictly below each ``x``."""
        index = np.searchsorted(self.values, x, side="left")
        padded = np.concatenate(([0.0], self.cdf))
        return padded[index]

    def quantile(self, q: FloatArray) -> FloatArray:
        """The smallest value with ``F(value) ≥ q`` (the inverse CDF)."""
        index = np.searchsorted(self.cdf, q, side="left")
        return self.values[np.minimum(index, self.values.size - 1)]

    def mean_std(self) -> tuple[float, float]:
        weights = np.diff(np.concatenate(([0.0], self.cdf)))
        mean = float(np.dot(weights, self.values))
        return mean, math.sqrt(max(0.0, float(np.dot(weights, (self.values - mean) ** 2))))


def _from_sorted(values: FloatArray, weights: FloatArray, n: int, rank: float, mass: float) -> Ecdf:
    if values.size == 0:
        return Ecdf(np.empty(0), np.empty(0), n, rank, mass)
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    distinct = values[starts]
    totals = np.add.reduceat(weights, starts)
    cdf = np.cumsum(totals)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return Ecdf(distinct, cdf, n, rank, mass)


def ecdf_of_samples(samples: npt.ArrayLike) -> Ecdf:
    """The empirical CDF of raw values (NaN and infinities are left out)."""
    values = np.asarray(samples, dtype=np.float64).ravel()
    values = np.sort(values[np.isfinite(values)])
    return _from_sorted(values, np.ones(values.size), int(values.size), 0.0, 0.0)


def ecdf_of_sketch(sketch: QuantileSketch) -> Ecdf:
    """The sketch's CDF, with its rank and mass errors."""
    values, weights = sketch.items()
    return _from_sorted(values, weights, sketch.n, sketch.rank_error, sketch.mass_error)


Distribution = Ecdf | QuantileSketch | npt.NDArray[np.float64] | Sequence[float]


def as_ecdf(distribution: Distribution) -> Ecdf:
    if isinstance(distribution, Ecdf):
        return distribution
    if isinstance(distribution, QuantileSketch):
        return ecdf_of_sketch(distribution)
    return ecdf_of_samples(distribution)


# -- p-values -----------------------------------------------------------------------------


def kolmogorov_sf(x: float) -> float:
    """``P(K > x)`` for the Kolmogorov distribution (the limit of ``√n · D``)."""
    if x <= 0:
        return 1.0
    if x < 1.0:
        # For small x the alternating series converges slowly; use the theta form of
        # the CDF, sqrt(2 pi)/x * sum exp(-(2j-1)^2 pi^2 / (8 x^2)).
        total = 0.0
        for j in range(1, 20):
            term = math.exp(-((2 * j - 1) ** 2) * math.pi**2 / (8 * x * x))
            total += term
            if term < 1e-17:
                break
        return min(1.0, max(0.0, 1.0 - math.sqrt(2 * math.pi) / x * total))
    total = 0.0
    for j in range(1, 100):
        term = math.exp(-2.0 * j * j * x * x)
        total += term if j % 2 else -term
        if term < 1e-17:
            break
    return min(1.0, max(0.0, 2.0 * total))


def ks_p_value(statistic: float, n: int, m: int) -> float:
    """Two-sided p-value of a two-sample KS statistic (asymptotic, Stephens-corrected)."""
    if n <= 0 or m <= 0:
        return 1.0
    root = math.sqrt(n * m / (n + m))
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * statistic)


def chi2_sf(x: float, dof: int) -> float:
    """``P(X > x)`` for a chi-square variable with ``dof`` degrees of freedom."""
    if dof <= 0:
        raise ValueError("degrees of freedom must be positive")
    if x <= 0:
        return 1.0
    return _upper_gamma_q(dof / 2.0, x / 2.0)


def _upper_gamma_q(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function ``Q(a, x)``."""
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        # P(a, x) = x^a e^-x / Gamma(a) * sum x^j / (a (a+1) ... (a+j)).
        term = 1.0 / a
        total = term
        denominator = a
        for _ in range(10_000):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return min(1.0, max(0.0, 1.0 - total * math.exp(log_prefix)))
    # Q(a, x) = x^a e^-x / Gamma(a) * 1/(x+1-a- 1(1-a)/(x+3-a- 2(2-a)/(x+5-a- ...))),
    # evaluated with the modified Lentz method.
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    fraction = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        fraction *= step
        if abs(step - 1.0) < 1e-16:
            break
    return min(1.0, max(0.0, math.exp(log_prefix) * fraction))


# -- numeric statistics -------------------------------------------------------------------


@dataclass(frozen=True)
class TwoSampleTest:
    """A test statistic and its p-value."""

    statistic: float
    p_value: float


@dataclass(frozen=True)
class NumericStatistics:
    """Every numeric statistic of one feature; see the module documentation."""

    ks: TwoSampleTest
    psi: float
    jensen_shannon: float
    wasserstein: float
    cdf_distance: float
    linf: float


@dataclass(frozen=True)
class CdfComparison:
    """``F`` and ``G`` on the union of their points, and the integrals built from them."""

    ks: float
    area: float
    overlap: float


def compare_cdfs(baseline: Ecdf, window: Ecdf) -> CdfComparison:
    grid = np.union1d(baseline.values, window.values)
    f = baseline.at(grid)
    g = window.at(grid)
    widths = np.diff(grid)
    gap = np.abs(f - g)
    both = np.minimum(f, g) * (1.0 - np.maximum(f, g))
    return CdfComparison(
        ks=float(gap.max()) if gap.size else 0.0,
        area=float(np.dot(gap[:-1], widths)),
        overlap=float(np.dot(both[:-1], widths)),
    )


def ks(baseline: Distribution, window: Distribution) -> TwoSampleTest:
    """Kolmogorov-Smirnov statistic and (rank-error-discounted) p-value."""
    f, g = _pair(baseline, window)
    return _ks(f, g, compare_cdfs(f, g).ks)


def _ks(f: Ecdf, g: Ecdf, statistic: float) -> TwoSampleTest:
    discounted = max(0.0, statistic - f.rank_error - g.rank_error)
    return TwoSampleTest(statistic, ks_p_value(discounted, f.n, g.n))


def robust_linf(distance: float, n: int, m: int) -> float:
    """SageMaker's L∞ with the sample-size correction: ``max(0, d - 1.8 √((n+m)/(nm)))``."""
    if n <= 0 or m <= 0:
        return 0.0
    return max(0.0, distance - LINF_CORRECTION * math.sqrt((n + m) / (n * m)))


def linf(baseline: Distribution, window: Distribution) -> float:
    f, g = _pair(baseline, window)
    return robust_linf(compare_cdfs(f, g).ks, f.n, g.n)


def wasserstein_scale(std: float, mean: float) -> float:
    """What a Wasserstein distance is divided by: the baseline's standard deviation."""
    if std > 0:
        return std
    return abs(mean) if mean != 0 else 1.0


def wasserstein(baseline: Distribution, window: Distribution, *, scale: float = 1.0) -> float:
    """``∫ |F - G| dx / scale`` (scipy's ``wasserstein_distance`` for ``scale = 1``)."""
    f, g = _pair(baseline, window)
    return float(compare_cdfs(f, g).area / scale)


def cdf_distance(baseline: Distribution, window: Distribution) -> float:
    f, g = _pair(baseline, window)
    return _cdf_distance(compare_cdfs(f, g))


def _cdf_distance(comparison: CdfComparison) -> float:
    total = comparison.area + comparison.overlap
    return comparison.area / total if total > 0 else 0.0


def bin_masses(baseline: Ecdf, window: Ecdf, bins: int = BINS) -> tuple[FloatArray, FloatArray]:
    """Masses of both in the bins cut at the baseline's quantiles ``1/bins … (bins-1)/bins``.

    Bins are ``[e_(j-1), e_j)``; repeated edges (a value holding more than a bin's share)
    are merged, so a discrete feature gets fewer, wider bins.
    """
    edges = np.unique(baseline.quantile(np.arange(1, bins) / bins))
    p = np.diff(np.concatenate(([0.0], baseline.below(edges), [1.0])))
    q = np.diff(np.concatenate(([0.0], window.below(edges), [1.0])))
    return np.maximum(p, 0.0), np.maximum(q, 0.0)


def psi_of_masses(p: FloatArray, q: FloatArray) -> float:
    pp = np.maximum(p, PSI_FLOOR)
    qq = np.maximum(q, PSI_FLOOR)
    return float(np.sum((qq - pp) * np.log(qq / pp)))


def js_of_masses(p: FloatArray, q: FloatArray) -> float:
    """Jensen-Shannon distance in bits between two mass vectors (each normalised)."""
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2
    divergence = 0.5 * _kl_bits(p, m) + 0.5 * _kl_bits(q, m)
    return math.sqrt(max(0.0, divergence))


def _kl_bits(p: FloatArray, m: FloatArray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / m[mask])))


def psi(baseline: Distribution, window: Distribution, bins: int = BINS) -> float:
    f, g = _pair(baseline, window)
    return psi_of_masses(*bin_masses(f, g, bins))


def jensen_shannon(baseline: Distribution, window: Distribution, bins: int = BINS) -> float:
    f, g = _pair(baseline, window)
    return js_of_masses(*bin_masses(f, g, bins))


def numeric_statistics(
    baseline: Distribution,
    window: Distribution,
    *,
    scale: float | None = None,
    bins: int = BINS,
) -> NumericStatistics:
    """All numeric statistics at once; ``scale`` defaults to the baseline's std."""
    f, g = _pair(baseline, window)
    if scale is None:
        mean, std = f.mean_std()
        scale = wasserstein_scale(std, mean)
    comparison = compare_cdfs(f, g)
    p, q = bin_masses(f, g, bins)
    return NumericStatistics(
        ks=_ks(f, g, comparison.ks),
        psi=psi_of_masses(p, q),
        jensen_shannon=js_of_masses(p, q),
        wasserstein=float(comparison.area / scale),
        cdf_distance=_cdf_distance(comparison),
        linf=robust_linf(comparison.ks, f.n, g.n),
    )


def _pair(baseline: Distribution, window: Distribution) -> tuple[Ecdf, Ecdf]:
    f = as_ecdf(baseline)
    g = as_ecdf(window)
    if f.empty or g.empty:
        raise ValueError("both distributions need at least one value")
    return f, g


# -- categorical statistics ---------------------------------------------------------------


@dataclass(frozen=True)
class CategoryCounts:
    """Counts per category, and the count of values outside them (``other``)."""

    counts: Mapping[str, int] = field(default_factory=dict)
    other: int = 0

    @property
    def n(self) -> int:
        return sum(self.counts.values()) + self.other

    @classmethod
    def of_samples(cls, samples: Sequence[object] | npt.NDArray[np.object_]) -> CategoryCounts:
        values, counts = np.unique(np.asarray([str(s) for s in samples]), return_counts=True)
        return cls({str(v): int(c) for v, c in zip(values, counts, strict=True)})


@dataclass(frozen=True)
class CategoricalStatistics:
    chi_square: TwoSampleTest
    linf: float
    jensen_shannon: float


def aligned_counts(
    baseline: CategoryCounts, window: CategoryCounts
) -> tuple[list[str], FloatArray, FloatArray]:
    """Both counts on the baseline's categories plus ``other``; empty cells left out."""
    names = sorted(baseline.counts)
    b = [float(baseline.counts[name]) for name in names]
    w = [float(window.counts.get(name, 0)) for name in names]
    known = set(names)
    window_other = window.other + sum(c for k, c in window.counts.items() if k not in known)
    names.append("")
    b.append(float(baseline.other))
    w.append(float(window_other))
    keep = [i for i in range(len(names)) if b[i] > 0 or w[i] > 0]
    return (
        [names[i] for i in keep],
        np.asarray([b[i] for i in keep]),
        np.asarray([w[i] for i in keep]),
    )


def chi_square(baseline: CategoryCounts, window: CategoryCounts) -> TwoSampleTest:
    """Pearson's chi-square test of the 2 x K table (no continuity correction)."""
    _, b, w = aligned_counts(baseline, window)
    return _chi_square(b, w)


def _chi_square(b: FloatArray, w: FloatArray) -> TwoSampleTest:
    n, m = b.sum(), w.sum()
    if b.size < 2 or n == 0 or m == 0:
        return TwoSampleTest(0.0, 1.0)
    columns = b + w
    total = n + m
    expected_b = n * columns / total
    expected_w = m * columns / total
    statistic = float(
        np.sum((b - expected_b) ** 2 / expected_b) + np.sum((w - expected_w) ** 2 / expected_w)
    )
    return TwoSampleTest(statistic, chi2_sf(statistic, int(b.size) - 1))


def categorical_statistics(
    baseline: CategoryCounts | Sequence[object],
    window: CategoryCounts | Sequence[object],
) -> CategoricalStatistics:
    base = baseline if isinstance(baseline, CategoryCounts) else CategoryCounts.of_samples(baseline)
    win = window if isinstance(window, CategoryCounts) else CategoryCounts.of_samples(window)
    _, b, w = aligned_counts(base, win)
    n, m = int(b.sum()), int(w.sum())
    if n == 0 or m == 0:
        raise ValueError("both sides need at least one value")
    p, q = b / n, w / m
    return CategoricalStatistics(
        chi_square=_chi_square(b, w),
        linf=robust_linf(float(np.max(np.abs(p - q))), n, m),
        jensen_shannon=js_of_masses(p, q),
    )


# -- tolerance bounds -----------------------------------------------------------------------


Term = Callable[[float, float], float]


def psi_term(p: float, q: float) -> float:
    p, q = max(p, PSI_FLOOR), max(q, PSI_FLOOR)
    return (q - p) * math.log(q / p)


def js_term(p: float, q: float) -> float:
    """One bin's share of the Jensen-Shannon divergence, in bits."""
    m = (p + q) / 2
    total = 0.0
    if p > 0:
        total += 0.5 * p * math.log2(p / m)
    if q > 0:
        total += 0.5 * q * math.log2(q / m)
    return total


def term_bounds(
    term: Term, p: FloatArray, q: FloatArray, dp: float, dq: float
) -> tuple[float, float]:
    """Bounds of ``Σ term(p_i, q_i)`` when each ``p_i`` may be off by ``dp`` and each
    ``q_i`` by ``dq`` (masses kept in [0, 1]); see the module documentation."""
    low = high = 0.0
    for pi, qi in zip(p.tolist(), q.tolist(), strict=True):
        p_lo, p_hi = max(0.0, pi - dp), min(1.0, pi + dp)
        q_lo, q_hi = max(0.0, qi - dq), min(1.0, qi + dq)
        high += max(term(a, b) for a in (p_lo, p_hi) for b in (q_lo, q_hi))
        if p_hi < q_lo:
            low += term(p_hi, q_lo)
        elif q_hi < p_lo:
            low += term(p_lo, q_hi)
    return low, high
