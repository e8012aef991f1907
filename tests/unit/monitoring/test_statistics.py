"""Drift statistics against scipy: exact on raw samples, within the derived tolerances on
sketches (see the docstring of modelrollout.core.monitoring.drift)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from scipy import spatial, special, stats

from modelrollout.core.monitoring import drift
from modelrollout.core.monitoring.drift import CategoryCounts, Ecdf
from modelrollout.core.monitoring.sketches import QuantileSketch

Sampler = Callable[[np.random.Generator, int], np.ndarray]

PAIRS: dict[str, tuple[Sampler, Sampler]] = {
    "same normal": (lambda r, n: r.normal(size=n), lambda r, n: r.normal(size=n)),
    "shifted normal": (lambda r, n: r.normal(size=n), lambda r, n: r.normal(0.3, 1, size=n)),
    "wider normal": (lambda r, n: r.normal(size=n), lambda r, n: r.normal(0, 1.5, size=n)),
    "lognormal vs gamma": (
        lambda r, n: r.lognormal(0, 0.5, size=n),
        lambda r, n: r.gamma(4, 0.3, size=n),
    ),
    "uniform shifted": (lambda r, n: r.random(n), lambda r, n: r.random(n) + 0.1),
    "discrete poisson": (
        lambda r, n: r.poisson(3, size=n).astype(float),
        lambda r, n: r.poisson(3.4, size=n).astype(float),
    ),
}


def _samples(name: str, n: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base, window = PAIRS[name]
    return base(rng, n), window(rng, m)


def _exact_masses(a: np.ndarray, b: np.ndarray, f: Ecdf) -> tuple[np.ndarray, np.ndarray]:
    """Masses of the raw data in the bins drift.bin_masses cuts at ``f``'s deciles."""
    edges = np.unique(f.quantile(np.arange(1, drift.BINS) / drift.BINS))
    cuts = np.concatenate(([-np.inf], edges, [np.inf]))

    def masses(x: np.ndarray) -> np.ndarray:
        below = np.searchsorted(np.sort(x), cuts, side="left")
        return np.diff(below) / x.size

    return masses(a), masses(b)


def _p_tolerance(n: int, m: int) -> float:
    return 0.15 / np.sqrt(n * m / (n + m))


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.maximum(p, drift.PSI_FLOOR), np.maximum(q, drift.PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


# -- raw against raw: the formulas are scipy's --------------------------------------------


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize(("n", "m"), [(2000, 1500), (300, 5000)])
def test_raw_samples_give_scipys_values(name: str, n: int, m: int) -> None:
    a, b = _samples(name, n, m)
    s = drift.numeric_statistics(a, b, scale=float(np.std(a)))
    ks = stats.ks_2samp(a, b, method="asymp")
    assert s.ks.statistic == pytest.approx(ks.statistic, abs=1e-12)
    # Stephens' asymptotic formula against scipy's (the one-sample distribution at
    # round(nm/(n+m))): both approximate the two-sample law and differ by < 0.15/sqrt(N).
    assert s.ks.p_value == pytest.approx(ks.pvalue, abs=_p_tolerance(n, m))
    assert s.wasserstein == pytest.approx(
        stats.wasserstein_distance(a, b) / np.std(a), rel=1e-9, abs=1e-12
    )
    f = drift.ecdf_of_samples(a)
    p, q = _exact_masses(a, b, f)
    assert s.jensen_shannon == pytest.approx(spatial.distance.jensenshannon(p, q, base=2), abs=1e-9)
    assert s.psi == pytest.approx(_psi(p, q), abs=1e-12)
    d = ks.statistic
    assert s.linf == pytest.approx(max(0.0, d - 1.8 * np.sqrt((n + m) / (n * m))), abs=1e-12)


def test_ks_p_value_is_monotone_and_bounded() -> None:
    values = [drift.ks_p_value(d, 1000, 1000) for d in np.linspace(0, 1, 101)]
    assert values[0] == 1.0
    assert all(x >= y for x, y in itertools.pairwise(values))
    assert values[-1] == pytest.approx(0.0, abs=1e-300)


@pytest.mark.parametrize("x", [0.05, 0.3, 0.5, 0.8, 0.99, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0])
def test_kolmogorov_sf_is_scipys(x: float) -> None:
    assert drift.kolmogorov_sf(x) == pytest.approx(special.kolmogorov(x), abs=1e-12)


@pytest.mark.parametrize(
    ("x", "dof"),
    [(0.001, 1), (0.5, 1), (3.0, 2), (10.0, 3), (50.0, 30), (120.0, 99), (30.0, 99), (700, 5)],
)
def test_chi2_sf_is_scipys(x: float, dof: int) -> None:
    assert drift.chi2_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


CATEGORY_TABLES = {
    "same shares": ({"a": 500, "b": 300, "c": 200}, {"a": 250, "b": 150, "c": 100}),
    "moved shares": ({"a": 500, "b": 300, "c": 200}, {"a": 200, "b": 300, "c": 500}),
    "two cells": ({"yes": 900, "no": 100}, {"yes": 850, "no": 150}),
    "sparse cells": ({"a": 5, "b": 1, "c": 994}, {"a": 0, "b": 3, "c": 400}),
}


@pytest.mark.parametrize("name", sorted(CATEGORY_TABLES))
def test_categorical_statistics_are_scipys(name: str) -> None:
    base, window = CATEGORY_TABLES[name]
    s = drift.categorical_statistics(CategoryCounts(base), CategoryCounts(window))
    keys = sorted(base)
    table = np.array([[base[k] for k in keys], [window[k] for k in keys]])
    table = table[:, table.sum(axis=0) > 0]
    chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    assert s.chi_square.statistic == pytest.approx(chi2, rel=1e-12)
    assert s.chi_square.p_value == pytest.approx(p_value, rel=1e-9, abs=1e-300)
    shares = table / table.sum(axis=1, keepdims=True)
    assert s.jensen_shannon == pytest.approx(
        spatial.distance.jensenshannon(shares[0], shares[1], base=2), abs=1e-12
    )
    n, m = table.sum(axis=1)
    expected_linf = np.abs(shares[0] - shares[1]).max() - 1.8 * np.sqrt((n + m) / (n * m))
    assert s.linf == pytest.approx(max(0.0, expected_linf), abs=1e-12)


def test_unknown_window_categories_count_as_other() -> None:
    base = CategoryCounts({"eu": 600, "us": 400})
    window = CategoryCounts({"eu": 300, "us": 200, "apac": 500})
    names, b, w = drift.aligned_counts(base, window)
    assert names == ["eu", "us", ""]
    assert b.tolist() == [600, 400, 0]
    assert w.tolist() == [300, 200, 500]
    s = drift.categorical_statistics(base, window)
    assert s.chi_square.p_value < 1e-100
    assert s.linf > 0.4


def test_raw_categorical_samples_are_counted() -> None:
    s = drift.categorical_statistics(["a"] * 60 + ["b"] * 40, ["a"] * 40 + ["b"] * 60)
    chi2, p_value, _, _ = stats.chi2_contingency([[60, 40], [40, 60]], correction=False)
    assert (s.chi_square.statistic, s.chi_square.p_value) == pytest.approx((chi2, p_value))


# -- shapes with known answers -------------------------------------------------------------


def test_cdf_distance_is_zero_for_identical_and_one_for_disjoint() -> None:
    x = np.random.default_rng(1).random(1000)
    assert drift.cdf_distance(x, x.copy()) == 0.0
    assert drift.cdf_distance(x, x + 5) == pytest.approx(1.0)
    assert drift.cdf_distance([3.0, 3.0], [3.0]) == 0.0  # one point: nothing covered


@pytest.mark.parametrize("shift", [0.05, 0.2, 0.5, 0.9])
def test_cdf_distance_of_shifted_uniforms(shift: float) -> None:
    # U[0,1] against U[a,1+a]: area a, overlap (1-a)^3/6.
    grid = (np.arange(200_000) + 0.5) / 200_000
    expected = shift / (shift + (1 - shift) ** 3 / 6)
    assert drift.cdf_distance(grid, grid + shift) == pytest.approx(expected, rel=1e-3)


def test_constant_baseline_scales_by_its_magnitude() -> None:
    assert drift.wasserstein_scale(0.0, -4.0) == 4.0
    assert drift.wasserstein_scale(0.0, 0.0) == 1.0
    s = drift.numeric_statistics(np.full(100, 10.0), np.full(100, 11.0))
    assert s.wasserstein == pytest.approx(0.1)
    assert s.ks.statistic == 1.0


def test_empty_sides_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        drift.numeric_statistics([1.0, 2.0], [])
    with pytest.raises(ValueError, match="at least one value"):
        drift.categorical_statistics(CategoryCounts({"a": 1}), CategoryCounts())


# -- sketches: within the tolerances derived from the rank error ------------------------------


def _bracket(lo_hi: tuple[float, float], value: float, slack: float = 1e-9) -> bool:
    return lo_hi[0] - slack <= value <= lo_hi[1] + slack


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("window_kind", ["raw", "sketch"])
def test_sketch_statistics_are_within_the_rank_error_bounds(name: str, window_kind: str) -> None:
    a, b = _samples(name, 200_000, 100_000, seed=3)
    sa = QuantileSketch.of(a)
    window: QuantileSketch | np.ndarray = QuantileSketch.of(b) if window_kind == "sketch" else b
    f = drift.ecdf_of_sketch(sa)
    g = drift.as_ecdf(window)
    eps = f.rank_error + g.rank_error
    assert f.rank_error == pytest.approx(0.0133, abs=1e-4)
    assert g.rank_error == (0.0 if window_kind == "raw" else f.rank_error)
    scale = float(np.std(a))
    s = drift.numeric_statistics(f, g, scale=scale)
    exact = stats.ks_2samp(a, b, method="asymp")

    # KS and linf: |D^ - D| <= eps_F + eps_G.
    assert abs(s.ks.statistic - exact.statistic) <= eps
    exact_linf = drift.robust_linf(exact.statistic, a.size, b.size)
    assert abs(s.linf - exact_linf) <= eps
    # The p-value never claims more evidence than the raw data holds, nor much less than
    # the largest statistic the raw data can have.
    p_floor = drift.ks_p_value(s.ks.statistic + eps, a.size, b.size)
    tolerance = _p_tolerance(a.size, b.size)
    assert p_floor - tolerance <= exact.pvalue <= s.ks.p_value + tolerance

    # Wasserstein: |W^ - W| <= eps_F R_F + eps_G R_G, over the scale.
    exact_w = stats.wasserstein_distance(a, b)
    error_w = f.rank_error * np.ptp(a) + g.rank_error * np.ptp(b)
    assert abs(s.wasserstein * scale - exact_w) <= error_w

    # cdfDistance: A / (A + O) within the corners of the error box.
    c = drift.compare_cdfs(f, g)
    union = max(a.max(), b.max()) - min(a.min(), b.min())
    e_a, e_o = error_w, 2 * eps * union
    low = max(0.0, c.area - e_a) / (max(0.0, c.area - e_a) + c.overlap + e_o)
    high_den = c.area + e_a + max(0.0, c.overlap - e_o)
    high = min(1.0, (c.area + e_a) / high_den) if high_den > 0 else 1.0
    exact_c = drift.compare_cdfs(drift.ecdf_of_samples(a), drift.ecdf_of_samples(b))
    assert _bracket((low, high), drift._cdf_distance(exact_c))

    # psi and jensenShannon: bin masses within delta; per-bin convex terms bounded.
    p_hat, q_hat = drift.bin_masses(f, g)
    p, q = _exact_masses(a, b, f)
    assert np.all(np.abs(p_hat - p) <= f.mass_error + 1e-12)
    assert np.all(np.abs(q_hat - q) <= g.mass_error + 1e-12)
    psi_bounds = drift.term_bounds(drift.psi_term, p_hat, q_hat, f.mass_error, g.mass_error)
    assert _bracket(psi_bounds, _psi(p, q))
    assert _bracket(psi_bounds, s.psi)
    js_lo, js_hi = drift.term_bounds(drift.js_term, p_hat, q_hat, f.mass_error, g.mass_error)
    exact_js = spatial.distance.jensenshannon(p, q, base=2)
    assert _bracket((np.sqrt(max(js_lo, 0)), np.sqrt(js_hi)), exact_js)


def test_sketch_cdf_is_the_librarys() -> None:
    x = np.random.default_rng(4).lognormal(size=50_000)
    sketch = QuantileSketch.of(x)
    f = drift.ecdf_of_sketch(sketch)
    points = np.quantile(x, [0.01, 0.1, 0.5, 0.9, 0.99])
    library = sketch._sketch  # the library's own query, as the oracle for our step CDF
    expected = [library.get_rank(float(v), True) for v in points]
    assert f.at(points) == pytest.approx(expected, abs=1e-12)
    assert f.below(points) == pytest.approx(
        [library.get_rank(float(v), False) for v in points], abs=1e-12
    )


def test_term_bounds_contain_every_point_of_the_box() -> None:
    rng = np.random.default_rng(5)
    p = np.array([0.1, 0.3, 0.6])
    q = np.array([0.2, 0.25, 0.55])
    for term in (drift.psi_term, drift.js_term):
        low, high = drift.term_bounds(term, p, q, 0.02, 0.03)
        for _ in range(500):
            pp = np.clip(p + rng.uniform(-0.02, 0.02, 3), 0, 1)
            qq = np.clip(q + rng.uniform(-0.03, 0.03, 3), 0, 1)
            value = sum(term(x, y) for x, y in zip(pp, qq, strict=True))
            assert low - 1e-12 <= value <= high + 1e-12
