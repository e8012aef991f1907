"""Every statistic against an independent oracle: scipy, or brute force on small samples.

Tolerances: distribution functions 1e-9 relative; p-values that scipy computes the same way
1e-9 relative; Hodges-Lehmann against brute force within the bisection's 1e-6 (log units).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special as sp_special
from scipy import stats

from modelrollout.core import judge
from modelrollout.core.judge import latency, proportions, special
from modelrollout.core.judge.inputs import Points
from support.judging import FINE_BUCKETS, PROMETHEUS_BUCKETS, histogram, lognormal, samples

# -- distribution functions --------------------------------------------------------------


@pytest.mark.parametrize("p", [0.5, 0.3, 0.05, 0.01, 1e-5, 1e-16, 1e-100, 1e-300, 0.999999])
def test_norm_isf(p: float) -> None:
    assert special.norm_isf(p) == pytest.approx(stats.norm.isf(p), rel=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "x"),
    [(2, 3, 0.4), (0.5, 20, 0.01), (1000, 0.5, 0.999), (7000, 3000, 0.7), (1, 1000, 1e-4)],
)
def test_incomplete_beta_both_tails(a: float, b: float, x: float) -> None:
    lower, upper = special.betainc_pair(a, b, x)
    assert lower == pytest.approx(sp_special.betainc(a, b, x), rel=1e-9)
    assert upper == pytest.approx(sp_special.betaincc(a, b, x), rel=1e-9)


@pytest.mark.parametrize(("t", "df"), [(2.3, 5), (2.3, 1000.5), (-1.0, 10), (8.0, 200), (0.01, 3)])
def test_student_t(t: float, df: float) -> None:
    assert special.t_sf(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-9)


@pytest.mark.parametrize(("p", "df"), [(0.01, 10), (1e-10, 500), (0.3, 3.5), (1e-16, 2000.7)])
def test_student_t_quantile(p: float, df: float) -> None:
    assert special.t_isf(p, df) == pytest.approx(stats.t.isf(p, df), rel=1e-10)


@pytest.mark.parametrize(
    ("a", "b", "p"), [(3, 10, 0.01), (3, 10, 0.99), (1, 100, 1e-10), (100, 900, 1e-16)]
)
def test_beta_quantile(a: float, b: float, p: float) -> None:
    assert special.beta_ppf(a, b, p) == pytest.approx(stats.beta.ppf(p, a, b), rel=1e-10)


@pytest.mark.parametrize(("n", "q"), [(1000, 0.99), (24000, 0.99), (100, 0.5), (5, 0.9)])
def test_binomial_quantiles(n: int, q: float) -> None:
    assert special.binom_ppf(0.025, n, q) == stats.binom.ppf(0.025, n, q)
    assert special.binom_isf(0.025, n, q) == stats.binom.isf(0.025, n, q)


# -- shift ------------------------------------------------------------------------------


def _ranked(values: np.ndarray) -> Points:
    return samples(values).ranked()


@pytest.mark.parametrize("shift", [1.0, 1.02, 1.1])
@pytest.mark.parametrize("rounded", [False, True], ids=["continuous", "integer-ms"])
def test_rank_test_matches_scipy_mannwhitneyu(shift: float, rounded: bool) -> None:
    b, c = lognormal(1, 700), lognormal(2, 900) * shift
    if rounded:  # heavy ties, as latencies logged in whole milliseconds have
        b, c = np.round(b), np.round(c)
    expected = stats.mannwhitneyu(c, b, alternative="greater", method="asymptotic").pvalue
    assert latency.rank_test_p(_ranked(b), _ranked(c)) == pytest.approx(expected, rel=1e-9)


def test_shift_p_value_is_mann_whitney_against_the_tolerance() -> None:
    b, c = lognormal(1, 800), lognormal(2, 800) * 1.09
    settings = judge.JudgeSettings(tolerance=0.05)
    check = judge.judge_latency(samples(b), samples(c), settings).checks[0]
    expected = stats.mannwhitneyu(
        np.log(c) - math.log(1.05), np.log(b), alternative="greater", method="asymptotic"
    ).pvalue
    assert check.p_value == pytest.approx(expected, rel=1e-9)


def test_histogram_rank_test_treats_each_bucket_as_one_tied_value() -> None:
    """Exact for binned data: the same as scipy on the requests' bucket numbers."""
    b, c = lognormal(1, 3000, median=60), lognormal(2, 3000, median=60) * 1.05
    bounds = np.asarray(PROMETHEUS_BUCKETS)
    codes_b = np.searchsorted(bounds, b, side="left").astype(float)
    codes_c = np.searchsorted(bounds, c, side="left").astype(float)
    expected = stats.mannwhitneyu(codes_c, codes_b, alternative="greater").pvalue
    hb, hc = histogram(b, PROMETHEUS_BUCKETS), histogram(c, PROMETHEUS_BUCKETS)
    assert latency.rank_test_p(hb.ranked(), hc.ranked()) == pytest.approx(expected, rel=1e-9)


def _brute_hl(b: np.ndarray, c: np.ndarray, z: float) -> tuple[float, float, float]:
    """The same definitions, on all m*n pairwise differences."""
    d = np.sort((np.log(c)[None, :] - np.log(b)[:, None]).ravel())
    mn = d.size
    sigma = math.sqrt(b.size * c.size * (b.size + c.size + 1) / 12)
    k = [
        math.ceil(mn / 2),
        math.ceil(mn / 2 + 0.5 + z * sigma),
        math.ceil(mn / 2 - 0.5 - z * sigma),
    ]
    return d[mn - k[0]], d[mn - k[1]], d[mn - k[2]]


@pytest.mark.parametrize(("nb", "nc", "factor"), [(60, 80, 1.0), (200, 150, 1.2), (31, 29, 0.8)])
def test_hodges_lehmann_and_its_interval_match_brute_force(nb: int, nc: int, factor: float) -> None:
    b, c = lognormal(5, nb), lognormal(6, nc) * factor
    z = stats.norm.isf(0.01)
    got = latency.hodges_lehmann(samples(b).logs(), samples(c).logs(), z)
    for value, expected in zip(got, _brute_hl(b, c, z), strict=True):
        assert value == pytest.approx(expected, abs=2e-6)


def test_hodges_lehmann_interval_covers_the_true_shift() -> None:
    """95 % one-sided ends: the true shift falls outside on each side ~5 % of the time."""
    misses = [0, 0]
    true_shift = math.log(1.1)
    for seed in range(300):
        b, c = lognormal(seed, 200), lognormal(10_000 + seed, 200) * 1.1
        _, lower, upper = latency.hodges_lehmann(
            samples(b).logs(), samples(c).logs(), stats.norm.isf(0.05)
        )
        misses[0] += lower > true_shift
        misses[1] += upper < true_shift
    assert 3 <= misses[0] <= 30, misses
    assert 3 <= misses[1] <= 30, misses


# -- tail -------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "q"), [(1000, 0.99), (5000, 0.99), (400, 0.95), (301, 0.5)])
def test_quantile_bracket_matches_scipy_quantile_test(n: int, q: float) -> None:
    values = np.sort(lognormal(n, n))
    low, high = latency.bracket_ranks(n, q)
    ci = stats.quantile_test(values, q=0, p=q).confidence_interval(0.95)
    assert (values[low], values[high]) == (ci.low, ci.high)
    quantile = latency.log_quantile(samples(values), q)
    assert quantile.estimate == pytest.approx(math.log(np.quantile(values, q)), rel=1e-12)


def test_histogram_quantile_bracket_contains_the_samples_bracket() -> None:
    """Bucket edges only ever widen the order-statistic bracket."""
    for seed in range(20):
        values = lognormal(seed, 3000, median=60)
        for bounds in (PROMETHEUS_BUCKETS, FINE_BUCKETS):
            exact = latency.log_quantile(samples(values), 0.99)
            binned = latency.log_quantile(histogram(values, bounds), 0.99)
            assert binned.lower <= exact.lower + 1e-12
            assert binned.upper >= exact.upper - 1e-12


def test_tail_bracket_covers_the_true_p99() -> None:
    """The 95 % order-statistic bracket holds the population p99 at least 95 % of the time."""
    true_p99 = math.log(20.0) + 0.4 * stats.norm.ppf(0.99)
    covered = 0
    for seed in range(400):
        quantile = latency.log_quantile(samples(lognormal(seed, 1000)), 0.99)
        covered += quantile.lower <= true_p99 <= quantile.upper
    assert covered >= 0.93 * 400


# -- spread -----------------------------------------------------------------------------


def _deviations(values: np.ndarray) -> np.ndarray:
    logs = np.log(values)
    return np.abs(logs - np.median(logs))


@pytest.mark.parametrize("tolerance", [0.0, 0.05, 0.2])
@pytest.mark.parametrize("factor", [1.0, 1.3])
def test_spread_p_value_is_welch_t_on_deviations(tolerance: float, factor: float) -> None:
    b = lognormal(1, 900)
    c = np.exp(np.log(20.0) + factor * (np.log(lognormal(2, 700)) - np.log(20.0)))
    settings = judge.JudgeSettings(tolerance=tolerance)
    check = judge.judge_latency(samples(b), samples(c), settings).checks[2]
    expected = stats.ttest_ind(
        _deviations(c), (1 + tolerance) * _deviations(b), equal_var=False, alternative="greater"
    ).pvalue
    assert check.p_value == pytest.approx(expected, rel=1e-8)


def test_deviations_are_brown_forsythe_levene() -> None:
    """For two groups, Levene's F with median centring is the pooled t of the deviations
    squared: the deviations computed here are the ones scipy's Brown-Forsythe test uses."""
    b, c = lognormal(1, 500), lognormal(2, 400, sigma=0.5)
    db = latency.deviations(samples(b).logs())
    dc = latency.deviations(samples(c).logs())
    nb, nc = db.count, dc.count
    pooled = ((nb - 1) * db.variance + (nc - 1) * dc.variance) / (nb + nc - 2)
    t = (dc.mean - db.mean) / math.sqrt(pooled * (1 / nb + 1 / nc))
    f = stats.levene(np.log(c), np.log(b), center="median").statistic
    assert t * t == pytest.approx(f, rel=1e-9)


def test_fieller_interval_inverts_the_ratio_test() -> None:
    b, c = lognormal(1, 900), lognormal(2, 900, sigma=0.5)
    db = latency.deviations(samples(b).logs())
    dc = latency.deviations(samples(c).logs())
    critical = 2.5
    low, high = latency.fieller_interval(db, dc, critical)
    for ratio in (low, high):  # at each end the t statistic is exactly the critical value
        t, _, _ = latency.welch_ratio_test(db, dc, ratio)
        assert abs(t) == pytest.approx(critical, rel=1e-9)


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xb", "nb", "xc", "nc", "tolerance"),
    [
        (3, 2000, 9, 2000, 0.0),
        (3, 2000, 9, 2000, 0.05),
        (0, 1000, 5, 1000, 0.05),
        (40, 9000, 20, 3000, 0.2),
    ],
)
def test_error_p_value_is_the_exact_conditional_binomial(
    xb: int, nb: int, xc: int, nc: int, tolerance: float
) -> None:
    verdict = judge.judge_errors(
        judge.ErrorCounts.of(xb, nb),
        judge.ErrorCounts.of(xc, nc),
        judge.JudgeSettings(tolerance=tolerance),
    )
    share = nc * (1 + tolerance) / (nc * (1 + tolerance) + nb)
    expected = stats.binomtest(xc, xb + xc, share, alternative="greater").pvalue
    assert verdict.p_value == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("xb", "xc"), [(3, 9), (1, 0), (12, 14), (50, 80)])
def test_error_ratio_interval_is_clopper_pearson_on_the_share(xb: int, xc: int) -> None:
    nb, nc = 5000, 4000
    verdict = judge.judge_errors(judge.ErrorCounts.of(xb, nb), judge.ErrorCounts.of(xc, nc))
    ci = stats.binomtest(xc, xb + xc).proportion_ci(confidence_level=0.98, method="exact")
    assert verdict.interval is not None
    to_ratio = lambda share: share * nb / ((1 - share) * nc) - 1  # noqa: E731
    assert verdict.interval[0] == pytest.approx(to_ratio(ci.low), rel=1e-9, abs=1e-12)
    assert verdict.interval[1] == pytest.approx(to_ratio(ci.high), rel=1e-9)


@pytest.mark.parametrize(("xb", "xc"), [(2, 9), (0, 6), (10, 25), (30, 45), (30, 55), (5, 12)])
def test_error_test_is_never_bolder_than_fisher_at_low_rates(xb: int, xc: int) -> None:
    """Where decisions are made (the upper tail), the binomial-conditional test is slightly
    conservative against Fisher's exact test (hypergeometric) for binomial counts, and
    within 10 % of it at rates of 3 % and below."""
    n = 2000
    verdict = judge.judge_errors(
        judge.ErrorCounts.of(xb, n), judge.ErrorCounts.of(xc, n), judge.JudgeSettings(tolerance=0)
    )
    fisher = stats.fisher_exact([[xc, n - xc], [xb, n - xb]], alternative="greater").pvalue
    assert verdict.p_value is not None
    assert verdict.p_value >= fisher * (1 - 1e-9)
    assert verdict.p_value <= fisher * 1.1 + 1e-6


@pytest.mark.parametrize(("x", "n"), [(0, 1000), (5, 1000), (999, 1000), (37, 120)])
def test_wilson_interval(x: int, n: int) -> None:
    ci = stats.binomtest(x, n).proportion_ci(confidence_level=0.98, method="wilson")
    low, high = proportions.wilson_interval(x, n, stats.norm.isf(0.01))
    assert (low, high) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))


def test_newcombe_interval_matches_the_published_example() -> None:
    """Newcombe (1998), Statistics in Medicine 17, 873-890, table II, example (a):
    56/70 against 48/80, method 10: 0.0524 to 0.3339."""
    low, high = proportions.newcombe_interval(
        judge.ErrorCounts.of(56, 70), judge.ErrorCounts.of(48, 80), stats.norm.isf(0.025)
    )
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


# -- sequential looks --------------------------------------------------------------------


@pytest.mark.parametrize("looks", [1, 4, 10])
@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
def test_look_confidences_spend_exactly_the_budget(looks: int, spending: str) -> None:
    spent = sum(
        1 - judge.look_confidence(0.99, k, looks, spending)  # type: ignore[arg-type]
        for k in range(1, looks + 1)
    )
    assert spent == pytest.approx(0.01, abs=looks * 1e-15)


def test_obrien_fleming_spending_function() -> None:
    z = stats.norm.isf(0.005)
    for k in range(1, 11):
        expected = (
            2
            - 2 * stats.norm.cdf(z / math.sqrt(k / 10))
            - (2 - 2 * stats.norm.cdf(z / math.sqrt((k - 1) / 10)) if k > 1 else 0)
        )
        assert 1 - judge.look_confidence(0.99, k, 10) == pytest.approx(
            max(expected, 1e-15), rel=1e-6
        )
    assert judge.look_confidence(0.99, 1, 10) > 0.999999  # the first look is strict
