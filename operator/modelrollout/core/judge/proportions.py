r"""Errors: did the candidate's error rate rise, in the same window?

Error counts at a canary are small and often zero: 0.1 % of 2,000 requests is two errors.
Normal approximations and plain risk ratios break there (Kayenta's judge returns NaN when a
side has no errors, kayenta#426 and #674). This check is exact at any count:

**Test.** Given the total number of errors ``T = x_b + x_c``, the candidate's share of them
is binomial, ``x_c | T ~ Binomial(T, pi)``, ``pi = n_c r / (n_c r + n_b)``, where ``r`` is the
ratio of the error rates (exact for Poisson counts, and for binomial ones the conditional
variance is slightly smaller than this, so the test errs towards Pass). The null hypothesis
"the rate rose by at most the tolerance", ``r <= 1 + tolerance``, is tested with the exact
one-sided binomial tail ``P(X >= x_c; T, pi_0)`` (``scipy.stats.binomtest(x_c, T, pi_0,
alternative="greater")``). With no errors on either side, ``T = 0`` and ``p = 1``.

**Effect.** The risk ratio minus 1, ``(x_c/n_c) / (x_b/n_b) - 1`` (+1.0 = the error rate
doubled), with the interval from the same conditional model: Clopper-Pearson's exact
bounds for ``pi`` mapped to ``r``. The test and the interval agree: Fail exactly when the
lower end is above the tolerance.

**When the baseline has no errors** the ratio is unbounded above, so the effect falls back
to the **risk difference**, ``x_c/n_c - 0``, with Newcombe's hybrid score interval (each
rate's Wilson interval, combined), and the ``measure`` says so; the test is unchanged.
Nothing is ever NaN.
"""

from __future__ import annotations

import math

from modelrollout.core.judge import special
from modelrollout.core.judge.inputs import ErrorCounts
from modelrollout.core.judge.verdict import JudgeSettings, Outcome, SampleSizes, Verdict

TEST = "exact conditional binomial test of the error-rate ratio (given the total errors)"
RATIO = "error-rate ratio, candidate over baseline, minus 1"
DIFFERENCE = (
    "error-rate difference, candidate minus baseline (the baseline had no errors, so no ratio)"
)


def wilson_interval(errors: int, total: int, z: float) -> tuple[float, float]:
    """Wilson's score interval for a proportion, each end at critical value ``z``."""
    if total == 0:
        return 0.0, 1.0
    p = errors / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2.0 * total)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / total + z * z / (4.0 * total * total)) / denominator
    return max(centre - half, 0.0), min(centre + half, 1.0)


def newcombe_interval(
    candidate: ErrorCounts, baseline: ErrorCounts, z: float
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``p_c - p_b`` (his method 10)."""
    pc = candidate.errors / candidate.total
    pb = baseline.errors / baseline.total
    lc, uc = wilson_interval(candidate.errors, candidate.total, z)
    lb, ub = wilson_interval(baseline.errors, baseline.total, z)
    difference = pc - pb
    lower = difference - math.sqrt((pc - lc) ** 2 + (ub - pb) ** 2)
    upper = difference + math.sqrt((uc - pc) ** 2 + (pb - lb) ** 2)
    return lower, upper


def _share_to_ratio(share: float, baseline_total: int, candidate_total: int) -> float:
    """pi = n_c r / (n_c r + n_b)  <=>  r = pi n_b / ((1 - pi) n_c)."""
    if share >= 1.0:
        return math.inf
    return share * baseline_total / ((1.0 - share) * candidate_total)


def _rate(counts: ErrorCounts) -> str:
    return f"{counts.errors}/{counts.total} ({counts.errors / counts.total * 100:.3g}%)"


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"


def judge_errors(
    baseline: ErrorCounts, candidate: ErrorCounts, settings: JudgeSettings | None = None
) -> Verdict:
    """Judge the candidate's error rate against the baseline's in the same window."""
    settings = settings or JudgeSettings()
    sizes = SampleSizes(baseline.total, candidate.total)
    if min(baseline.total, candidate.total) < settings.min_samples:
        return Verdict(
            verdict=Outcome.INCONCLUSIVE,
            name="errors",
            test=TEST,
            measure=RATIO,
            n=sizes,
            confidence=settings.confidence,
            message=(
                f"too few requests: need at least {settings.min_samples} per side, have "
                f"{baseline.total} (baseline) and {candidate.total} (candidate)"
            ),
        )
    alpha = settings.alpha
    tolerance = settings.tolerance
    xb, xc = baseline.errors, candidate.errors
    nb, nc = baseline.total, candidate.total
    total = xb + xc
    limit = 1.0 + tolerance
    share = nc * limit / (nc * limit + nb)
    p_value = special.binom_sf_at_least(xc, total, share) if total else 1.0
    if xb > 0:
        measure = RATIO
        effect = (xc / nc) / (xb / nb) - 1.0
        low_share = special.beta_ppf(xc, total - xc + 1, alpha) if xc > 0 else 0.0
        high_share = special.beta_ppf(xc + 1, total - xc, 1.0 - alpha)
        interval = (
            _share_to_ratio(low_share, nb, nc) - 1.0,
            _share_to_ratio(high_share, nb, nc) - 1.0,
        )
        shown = (
            f"error rate {_rate(candidate)} against {_rate(baseline)}: "
            f"{effect * 100:+.1f}% [{interval[0] * 100:+.1f}%, {interval[1] * 100:+.1f}%]"
        )
    else:
        measure = DIFFERENCE
        effect = xc / nc
        interval = newcombe_interval(candidate, baseline, special.norm_isf(alpha))
        shown = (
            f"error rate {_rate(candidate)} against {_rate(baseline)}: difference "
            f"{effect * 100:+.3g} points [{interval[0] * 100:+.3g}, {interval[1] * 100:+.3g}]"
        )
    if p_value < alpha:
        outcome = Outcome.FAIL
        message = (
            f"{shown}: rose more than the {tolerance * 100:+.1f}% tolerance with "
            f"{settings.confidence:.6g} confidence (p = {_p(p_value)})"
        )
    elif total == 0:
        outcome = Outcome.PASS
        message = f"no errors on either side in {nb} and {nc} requests"
    else:
        outcome = Outcome.PASS
        message = (
            f"{shown}: not shown to rise more than the {tolerance * 100:+.1f}% tolerance "
            f"(p = {_p(p_value)})"
        )
    return Verdict(
        verdict=outcome,
        name="errors",
        test=TEST,
        measure=measure,
        n=sizes,
        p_value=p_value,
        effect=effect,
        interval=interval,
        confidence=settings.confidence,
        message=message,
    )
