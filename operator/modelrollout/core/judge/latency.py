r"""Latency: is the candidate slower than the baseline, in the same window?

Three checks, because a latency regression has three shapes and each hides from the
others' tests:

**Shift** (the typical request got slower). Mann-Whitney U, one-sided, normal
approximation with the tie correction and the continuity correction (exactly what
``scipy.stats.mannwhitneyu(candidate, baseline, alternative="greater")`` computes). The
effect is the Hodges-Lehmann estimate of the shift of *log* latency, the median of all
pairwise differences ``log c_j - log b_i``, reported as ``exp(shift) - 1``: the candidate's
typical latency relative to the baseline's (+0.10 = its median is 10 % above stable's). Its
interval is the test inverted: the shifts ``d`` for which U of ``log c - d`` against
``log b`` is not significant, each end one-sided at the check's confidence, found by
bisection on ``U(d)``, which ``searchsorted`` counts in ``O(m log n)``. The p-value is that
of "the shift is at most ``log(1 + tolerance)``" (U of ``log c - log(1 + tolerance)``), so
Fail (p below ``1 - confidence``) and "the lower end of the interval is above the
tolerance" are the same statement.

**Tail** (only the slowest requests got slower: Mann-Whitney barely moves when 1 % of
requests double). The q-quantile (p99 by default) of each side with a distribution-free
interval from order statistics: the ranks ``binom.ppf(0.025; n, q)`` and
``binom.isf(0.025; n, q)`` bracket the quantile with 95 % confidence (as
``scipy.stats.quantile_test`` computes it). Half the log-width of that bracket over
``z_0.975`` is the standard error of the log quantile (McKean and Schrader's estimator,
carried from the median to any quantile); the two sides combine as
``se = sqrt(se_b^2 + se_c^2)`` around ``log Q_c - log Q_b`` (Price and Bonett's construction
for a ratio of medians). Effect: ``Q_c / Q_b - 1``. It needs ``min_tail_samples`` requests
beyond the quantile on each side (10 beyond p99: 1,000 requests), else it is Inconclusive.

**Spread** (latency got more variable without the median moving: Kayenta's judge misses
it, kayenta#780). The Brown-Forsythe idea: compare the mean absolute deviation of log
latency from each side's median. The test is Welch's t on the deviations, against the
deviations of the baseline scaled by ``1 + tolerance`` (so exactly
``scipy.stats.ttest_ind(dev_c, (1 + tolerance) dev_b, equal_var=False,
alternative="greater")``); at tolerance 0 it is the one-sided form of the Brown-Forsythe
test. Effect: the ratio of the mean deviations minus 1, with Fieller's interval for a ratio
of means, which is the test inverted.

A latency verdict Fails when any check Fails. The three share the confidence (Bonferroni:
each runs at ``1 - (1 - confidence)/3``), so a candidate no worse than the tolerance fails
with probability at most ``1 - confidence`` overall; the verdict's p-value is the smallest
check p-value times 3 (at most 1), and its effect and interval are those of that check.

**Histograms** (what Prometheus has) are binned: a bucket says only that a request took
between its bounds. The tests here stay correct for binned data:

* the shift's rank test at zero shift runs on the buckets themselves, each bucket one tied
  value, with the tie correction: exact for binned data, with no assumption inside a
  bucket. Testing against the tolerance needs the candidate shifted by a fraction of a
  bucket, which a histogram cannot do exactly; for that, the Hodges-Lehmann effect and the
  spread check, each bucket is spread log-uniformly over its width (16 points), the
  assumption ``histogram_quantile`` makes linearly. A Fail needs both the exact test and the
  interpolated one to reject (an intersection-union test; the p-value is the larger), so
  interpolation alone can never fail a candidate whose buckets match the baseline's;
* the tail's quantile bracket uses the lower edge of the bucket holding the lower rank and
  the upper edge of the one holding the upper rank, so the interval is at least as wide as
  the truth needs: coarse buckets make the tail check cautious, never wrong. Requests in the
  ``+Inf`` bucket count at the last finite bound (as ``histogram_quantile`` does), which can
  only understate a regression beyond it;
* both histograms must have the same bounds. Samples compared with a histogram are counted
  into its buckets first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from modelrollout.core.judge import special
from modelrollout.core.judge.inputs import (
    LOG_FLOOR_MS,
    FloatArray,
    JudgeInputError,
    LatencyHistogram,
    LatencyInput,
    LatencySamples,
    Points,
)
from modelrollout.core.judge.verdict import JudgeSettings, Outcome, SampleSizes, Verdict

CHECKS = 3
"""Shift, tail and spread share the confidence (Bonferroni)."""

BRACKET_CONFIDENCE = 0.95
"""The order-statistic bracket from which a quantile's standard error is read."""

_Z_BRACKET = special.norm_isf((1.0 - BRACKET_CONFIDENCE) / 2.0)

SHIFT_TEST = "Mann-Whitney U (one-sided, tie-corrected) with Hodges-Lehmann shift of log latency"
SHIFT_MEASURE = "typical latency relative to the baseline's, minus 1 (Hodges-Lehmann)"
SPREAD_TEST = "Brown-Forsythe: Welch t on absolute deviations of log latency from the median"
SPREAD_MEASURE = "mean absolute deviation of log latency, candidate over baseline, minus 1"


def _tail_test(settings: JudgeSettings) -> str:
    return f"{settings.tail_label} ratio, standard error from order statistics (McKean-Schrader)"


def _tail_measure(settings: JudgeSettings) -> str:
    return f"candidate {settings.tail_label} over baseline {settings.tail_label}, minus 1"


# -- formatting ----------------------------------------------------------------------------


def percent(value: float) -> str:
    """A relative effect as a signed percentage (``+12.3%``); unbounded ends as ``±inf``."""
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value * 100:+.1f}%"


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"


def _conf(confidence: float) -> str:
    text = f"{confidence * 100:.4f}".rstrip("0").rstrip(".")
    return f"{text}%" if len(text) <= 9 else f"1-{1 - confidence:.1e}"


# -- inputs ----------------------------------------------------------------------------------


def _aligned(baseline: LatencyInput, candidate: LatencyInput) -> tuple[LatencyInput, LatencyInput]:
    """Both samples, or both histograms with the same bounds."""
    if isinstance(baseline, LatencyHistogram) and isinstance(candidate, LatencySamples):
        return baseline, candidate.binned(baseline.bounds)
    if isinstance(baseline, LatencySamples) and isinstance(candidate, LatencyHistogram):
        return baseline.binned(candidate.bounds), candidate
    if (
        isinstance(baseline, LatencyHistogram)
        and isinstance(candidate, LatencyHistogram)
        and not np.array_equal(baseline.bounds, candidate.bounds)
    ):
        raise JudgeInputError(
            "candidate.le: the candidate's bucket bounds differ from the baseline's; "
            "compare histograms of the same metric"
        )
    return baseline, candidate


# -- rank statistics -----------------------------------------------------------------------


def rank_test_p(baseline: Points, candidate: Points) -> float:
    """One-sided Mann-Whitney p-value of "the candidate is larger".

    Normal approximation with the tie correction and the continuity correction, as
    ``scipy.stats.mannwhitneyu(candidate, baseline, alternative="greater")``.
    """
    positions = np.concatenate([baseline.positions, candidate.positions])
    weights_b = np.concatenate([baseline.weights, np.zeros(candidate.positions.size)])
    weights_c = np.concatenate([np.zeros(baseline.positions.size), candidate.weights])
    unique, inverse = np.unique(positions, return_inverse=True)
    wb = np.bincount(inverse, weights=weights_b, minlength=unique.size)
    wc = np.bincount(inverse, weights=weights_c, minlength=unique.size)
    tied = wb + wc
    mid_ranks = np.cumsum(tied) - (tied - 1.0) / 2.0
    m, n = float(wc.sum()), float(wb.sum())
    total = m + n
    u = float((wc * mid_ranks).sum()) - m * (m + 1.0) / 2.0
    ties = float((tied**3 - tied).sum())
    variance = m * n / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)))
    if variance <= 0.0:
        return 1.0
    return special.norm_sf((u - m * n / 2.0 - 0.5) / math.sqrt(variance))


def _u_of_shifts(baseline: Points, candidate: Points, shifts: FloatArray) -> FloatArray:
    """U(d) = #{c - d > b} + #{c - d = b}/2 (weighted), for each shift ``d``."""
    cumulative = np.concatenate([[0.0], np.cumsum(baseline.weights)])
    moved = candidate.positions[None, :] - shifts[:, None]
    left = np.searchsorted(baseline.positions, moved, side="left")
    right = np.searchsorted(baseline.positions, moved, side="right")
    below = cumulative[left] + 0.5 * (cumulative[right] - cumulative[left])
    counts: FloatArray = (below * candidate.weights[None, :]).sum(axis=1)
    return counts


def hodges_lehmann(
    baseline: Points, candidate: Points, z: float, *, precision: float = 1e-6
) -> tuple[float, float, float]:
    """The Hodges-Lehmann shift ``candidate - baseline`` and its interval at one-sided
    critical value ``z`` (each end): ``(estimate, lower, upper)``; an end is infinite when
    the samples are too small to bound it."""
    m, n = candidate.total, baseline.total
    half = m * n / 2.0
    sigma = math.sqrt(m * n * (m + n + 1.0) / 12.0)
    targets = np.array([half, half + 0.5 + z * sigma, half - 0.5 - z * sigma])
    # sup{d : U(d) >= target}: U falls from m*n (every c above every b) to 0. First a
    # bracket around the difference of the medians, widened until it holds each root; then
    # regula falsi with the Illinois correction, every third step a bisection (U is a step
    # function: the bracket must keep shrinking where interpolation stalls).
    floor = candidate.positions[0] - baseline.positions[-1] - 1.0
    ceiling = candidate.positions[-1] - baseline.positions[0] + 1.0
    guess = _weighted_centre(candidate) - _weighted_centre(baseline)
    scale = max(_weighted_sd(candidate), _weighted_sd(baseline), precision)
    width = (abs(z) + 3.0) * scale * math.sqrt(1.0 / m + 1.0 / n)
    lo, hi = np.full(3, guess - width), np.full(3, guess + width)
    for _ in range(60):
        f = _u_of_shifts(baseline, candidate, np.concatenate([lo, hi])) - np.tile(targets, 2)
        f_lo, f_hi = f[:3], f[3:]
        low_ok, high_ok = (f_lo >= 0) | (lo <= floor), (f_hi < 0) | (hi >= ceiling)
        if low_ok.all() and high_ok.all():
            break
        width *= 4.0
        lo = np.where(low_ok, lo, np.maximum(lo - width, floor))
        hi = np.where(high_ok, hi, np.minimum(hi + width, ceiling))
    f_lo = np.where(lo <= floor, m * n - targets, f_lo)
    f_hi = np.where(hi >= ceiling, -targets, f_hi)
    kept = np.zeros(3)  # +1: lo moved last time, -1: hi moved last time
    step = 0
    while float((hi - lo).max()) > precision and step < 200:
        step += 1
        if step % 3 == 0:
            mid = (lo + hi) / 2.0
        else:
            span = f_lo - f_hi
            ratio = np.where(span > 0, f_lo / np.where(span > 0, span, 1.0), 0.5)
            mid = lo + (hi - lo) * np.clip(ratio, 0.001, 0.999)
        f_mid = _u_of_shifts(baseline, candidate, mid) - targets
        above = f_mid >= 0
        # Illinois: when the same end moves twice running, halve the other end's value.
        f_hi = np.where(above & (kept > 0), f_hi / 2.0, f_hi)
        f_lo = np.where(~above & (kept < 0), f_lo / 2.0, f_lo)
        lo, f_lo = np.where(above, mid, lo), np.where(above, f_mid, f_lo)
        hi, f_hi = np.where(above, hi, mid), np.where(above, f_hi, f_mid)
        kept = np.where(above, 1.0, -1.0)
    estimate, lower, upper = ((lo + hi) / 2.0).tolist()
    if targets[1] > m * n:
        lower = -math.inf
    if targets[2] < 0.0:
        upper = math.inf
    return estimate, lower, upper


def _weighted_centre(points: Points) -> float:
    cumulative = np.cumsum(points.weights)
    index = int(np.searchsorted(cumulative, cumulative[-1] / 2.0))
    return float(points.positions[min(index, points.positions.size - 1)])


def _weighted_sd(points: Points) -> float:
    mean = float((points.positions * points.weights).sum() / points.total)
    return math.sqrt(float(((points.positions - mean) ** 2 * points.weights).sum() / points.total))


# -- quantiles from order statistics ---------------------------------------------------------


def bracket_ranks(n: int, q: float, confidence: float = BRACKET_CONFIDENCE) -> tuple[int, int]:
    """0-based ranks of the order statistics bracketing the q-quantile with ``confidence``
    (two-sided), as ``scipy.stats.quantile_test(...).confidence_interval`` picks them;
    clipped to the sample."""
    tail = (1.0 - confidence) / 2.0
    low = special.binom_ppf(tail, n, q) - 1
    high = special.binom_isf(tail, n, q)
    return max(low, 0), min(high, n - 1)


@dataclass(frozen=True, slots=True)
class LogQuantile:
    """A log quantile with the log bounds of its order-statistic bracket."""

    estimate: float
    lower: float
    upper: float

    @property
    def standard_error(self) -> float:
        return (self.upper - self.lower) / (2.0 * _Z_BRACKET)


def _log(value: float) -> float:
    return math.log(max(value, LOG_FLOOR_MS))


def log_quantile(data: LatencyInput, q: float) -> LogQuantile:
    """The q-quantile of ``data`` on the log scale, with its 95 % order-statistic bracket.

    Samples: numpy's default (linear) quantile, and the bracket's order statistics.
    Histograms: interpolated log-uniformly inside the bucket, and the bracket widened to the
    outer edges of the buckets holding its ranks.
    """
    n = data.n
    low, high = bracket_ranks(n, q)
    if isinstance(data, LatencySamples):
        values = data.values
        return LogQuantile(
            _log(float(np.quantile(values, q))), _log(float(values[low])), _log(float(values[high]))
        )
    lower_edges, upper_edges = data.edges()
    cumulative = np.cumsum(data.counts)
    bucket_low = int(np.searchsorted(cumulative, low, side="right"))
    bucket_high = int(np.searchsorted(cumulative, high, side="right"))
    rank = q * n
    bucket = min(int(np.searchsorted(cumulative, rank, side="left")), data.counts.size - 1)
    while data.counts[bucket] == 0 and bucket > 0:
        bucket -= 1
    before = float(cumulative[bucket] - data.counts[bucket])
    fraction = min(max((rank - before) / max(float(data.counts[bucket]), 1.0), 0.0), 1.0)
    estimate = lower_edges[bucket] + (upper_edges[bucket] - lower_edges[bucket]) * fraction
    return LogQuantile(
        float(estimate), float(lower_edges[bucket_low]), float(upper_edges[bucket_high])
    )


# -- spread ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deviations:
    """Mean and variance of the absolute deviations of log latency from its median."""

    mean: float
    variance: float
    count: float

    @property
    def variance_of_mean(self) -> float:
        return self.variance / self.count


def weighted_median(points: Points) -> float:
    """The median as numpy computes it (the mean of the two middle values when even)."""
    cumulative = np.cumsum(points.weights)
    total = float(cumulative[-1])
    first = math.floor((total - 1.0) / 2.0)
    second = math.ceil((total - 1.0) / 2.0)
    index = np.searchsorted(cumulative, [first, second], side="right")
    index = np.minimum(index, points.positions.size - 1)
    return float(points.positions[index].mean())


def deviations(points: Points) -> Deviations:
    centre = weighted_median(points)
    distance = np.abs(points.positions - centre)
    total = points.total
    mean = float((distance * points.weights).sum() / total)
    variance = float(((distance - mean) ** 2 * points.weights).sum() / (total - 1.0))
    return Deviations(mean, variance, total)


def welch_ratio_test(
    baseline: Deviations, candidate: Deviations, ratio: float
) -> tuple[float, float, float]:
    """Welch's t of ``candidate.mean - ratio * baseline.mean``: ``(t, df, p greater)``."""
    vc = candidate.variance_of_mean
    vb = ratio * ratio * baseline.variance_of_mean
    difference = candidate.mean - ratio * baseline.mean
    pooled = vc + vb
    if pooled <= 0.0:
        return (
            (math.inf if difference > 0 else -math.inf),
            math.inf,
            (0.0 if difference > 0 else 1.0),
        )
    df = pooled**2 / (vc**2 / (candidate.count - 1.0) + vb**2 / (baseline.count - 1.0))
    t = difference / math.sqrt(pooled)
    return t, df, special.t_sf(t, df)


def fieller_interval(
    baseline: Deviations, candidate: Deviations, critical: float
) -> tuple[float, float]:
    """Fieller's interval for ``candidate.mean / baseline.mean`` (each end one-sided at the
    critical value): the ratios ``r`` with ``(c - r b)^2 <= t^2 (v_c + r^2 v_b)``."""
    b, c = baseline.mean, candidate.mean
    vb, vc = baseline.variance_of_mean, candidate.variance_of_mean
    t2 = critical * critical
    a = b * b - t2 * vb
    half_b = -c * b
    cc = c * c - t2 * vc
    if a <= 0.0:  # the baseline's mean deviation is not clearly above zero: unbounded
        return 0.0, math.inf
    discriminant = half_b * half_b - a * cc
    if discriminant < 0.0:  # pragma: no cover - impossible when a > 0 and variances >= 0
        return c / b, c / b
    root = math.sqrt(discriminant)
    return max((-half_b - root) / a, 0.0), (-half_b + root) / a


# -- the three checks -----------------------------------------------------------------------


def _inconclusive(
    name: str, test: str, measure: str, sizes: SampleSizes, need: int, what: str
) -> Verdict:
    return Verdict(
        verdict=Outcome.INCONCLUSIVE,
        name=name,
        test=test,
        measure=measure,
        n=sizes,
        message=(
            f"too few samples for the {what}: need at least {need} per side, have "
            f"{sizes.baseline} (baseline) and {sizes.candidate} (candidate)"
        ),
    )


def _decide(
    name: str,
    what: str,
    *,
    test: str,
    measure: str,
    sizes: SampleSizes,
    p_value: float,
    effect: float,
    interval: tuple[float, float],
    alpha: float,
    tolerance: float,
) -> Verdict:
    confidence = 1.0 - alpha
    lo, hi = interval
    shown = f"{what} {percent(effect)} [{percent(lo)}, {percent(hi)}]"
    if p_value < alpha:
        outcome = Outcome.FAIL
        message = (
            f"{shown}: above the {percent(tolerance)} tolerance with {_conf(confidence)} "
            f"confidence (p = {_p(p_value)})"
        )
    else:
        outcome = Outcome.PASS
        equivalent = hi <= tolerance
        message = (
            f"{shown}: within the {percent(tolerance)} tolerance"
            if equivalent
            else f"{shown}: not shown above the {percent(tolerance)} tolerance"
        ) + f" (p = {_p(p_value)})"
    return Verdict(
        verdict=outcome,
        name=name,
        test=test,
        measure=measure,
        n=sizes,
        p_value=p_value,
        effect=effect,
        interval=interval,
        confidence=confidence,
        message=message,
    )


def shift_check(
    baseline: LatencyInput, candidate: LatencyInput, settings: JudgeSettings, alpha: float
) -> Verdict:
    sizes = SampleSizes(baseline.n, candidate.n)
    if min(sizes.baseline, sizes.candidate) < settings.min_samples:
        return _inconclusive(
            "shift", SHIFT_TEST, SHIFT_MEASURE, sizes, settings.min_samples, "shift check"
        )
    margin = math.log1p(settings.tolerance)
    logs_b, logs_c = baseline.logs(), candidate.logs()
    p_zero = rank_test_p(baseline.ranked(), candidate.ranked())
    moved = Points(logs_c.positions - margin, logs_c.weights)
    p_margin = rank_test_p(logs_b, moved) if margin > 0 else p_zero
    estimate, lower, upper = hodges_lehmann(logs_b, logs_c, special.norm_isf(alpha))
    return _decide(
        "shift",
        "median",
        test=SHIFT_TEST,
        measure=SHIFT_MEASURE,
        sizes=sizes,
        p_value=max(p_zero, p_margin),
        effect=math.expm1(estimate),
        interval=(math.expm1(lower), math.expm1(upper)),
        alpha=alpha,
        tolerance=settings.tolerance,
    )


def tail_check(
    baseline: LatencyInput, candidate: LatencyInput, settings: JudgeSettings, alpha: float
) -> Verdict:
    sizes = SampleSizes(baseline.n, candidate.n)
    test, measure = _tail_test(settings), _tail_measure(settings)
    need = settings.tail_minimum()
    if min(sizes.baseline, sizes.candidate) < need:
        what = (
            f"{settings.tail_label} check ({settings.min_tail_samples} beyond "
            f"{settings.tail_label})"
        )
        return _inconclusive("tail", test, measure, sizes, need, what)
    q = settings.tail_quantile
    qb, qc = log_quantile(baseline, q), log_quantile(candidate, q)
    difference = qc.estimate - qb.estimate
    se = math.hypot(qb.standard_error, qc.standard_error)
    margin = math.log1p(settings.tolerance)
    if se > 0.0:
        p_value = special.norm_sf((difference - margin) / se)
        z = special.norm_isf(alpha)
        lower, upper = difference - z * se, difference + z * se
    else:  # every bracket is one value on both sides: the quantiles are known exactly
        p_value = 0.0 if difference > margin else 1.0
        lower = upper = difference
    return _decide(
        "tail",
        settings.tail_label,
        test=test,
        measure=measure,
        sizes=sizes,
        p_value=p_value,
        effect=math.expm1(difference),
        interval=(math.expm1(lower), math.expm1(upper)),
        alpha=alpha,
        tolerance=settings.tolerance,
    )


def spread_check(
    baseline: LatencyInput, candidate: LatencyInput, settings: JudgeSettings, alpha: float
) -> Verdict:
    sizes = SampleSizes(baseline.n, candidate.n)
    if min(sizes.baseline, sizes.candidate) < settings.min_samples:
        return _inconclusive(
            "spread", SPREAD_TEST, SPREAD_MEASURE, sizes, settings.min_samples, "spread check"
        )
    db, dc = deviations(baseline.logs()), deviations(candidate.logs())
    _, df, p_value = welch_ratio_test(db, dc, 1.0 + settings.tolerance)
    if db.mean > 0.0:
        effect = dc.mean / db.mean - 1.0
        critical = special.t_isf(alpha, df) if math.isfinite(df) else special.norm_isf(alpha)
        low, high = fieller_interval(db, dc, critical)
        interval = (low - 1.0, high - 1.0)
    elif dc.mean > 0.0:  # a constant baseline against a varying candidate
        effect, interval = math.inf, (math.inf, math.inf)
    else:
        effect, interval = 0.0, (0.0, 0.0)
    return _decide(
        "spread",
        "spread",
        test=SPREAD_TEST,
        measure=SPREAD_MEASURE,
        sizes=sizes,
        p_value=p_value,
        effect=effect,
        interval=interval,
        alpha=alpha,
        tolerance=settings.tolerance,
    )


# -- the verdict ------------------------------------------------------------------------------


def judge_latency(
    baseline: LatencyInput, candidate: LatencyInput, settings: JudgeSettings | None = None
) -> Verdict:
    """Judge the candidate's latency against the baseline's in the same window.

    Fail when the shift, the tail or the spread check fails; Inconclusive when none fails
    and one lacks samples; Pass otherwise. See the module documentation for the tests.
    """
    settings = settings or JudgeSettings()
    baseline, candidate = _aligned(baseline, candidate)
    sizes = SampleSizes(baseline.n, candidate.n)
    alpha = settings.alpha / CHECKS
    checks = (
        shift_check(baseline, candidate, settings, alpha),
        tail_check(baseline, candidate, settings, alpha),
        spread_check(baseline, candidate, settings, alpha),
    )
    decided = [check for check in checks if check.p_value is not None]
    p_value = (
        min(1.0, CHECKS * min(c.p_value for c in decided if c.p_value is not None))
        if (decided)
        else None
    )
    failed = [check for check in checks if check.failed]
    undecided = [check for check in checks if check.verdict is Outcome.INCONCLUSIVE]
    test = f"latency: shift, {settings.tail_label} and spread checks (Bonferroni over {CHECKS})"
    if failed:
        lead = min(failed, key=lambda check: check.p_value or 0.0)
        outcome = Outcome.FAIL
        message = "latency regressed: " + "; ".join(check.message for check in failed)
    elif undecided:
        lead = undecided[0]
        outcome = Outcome.INCONCLUSIVE
        message = "; ".join(check.message for check in undecided)
    else:
        lead = min(decided, key=lambda check: check.p_value or 0.0)
        outcome = Outcome.PASS
        message = "no latency regression shown: " + "; ".join(check.message for check in checks)
    return Verdict(
        verdict=outcome,
        name="latency",
        test=test,
        measure=f"{lead.name}: {lead.measure}",
        n=sizes,
        p_value=p_value if outcome is not Outcome.INCONCLUSIVE else None,
        effect=lead.effect if outcome is not Outcome.INCONCLUSIVE else None,
        interval=lead.interval if outcome is not Outcome.INCONCLUSIVE else None,
        confidence=settings.confidence,
        message=message,
        checks=checks,
    )
