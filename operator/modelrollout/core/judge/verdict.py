"""The judge's settings and its answer.

A :class:`Verdict` is one of three outcomes, never a bare boolean:

* ``Fail``: the candidate is worse than the baseline by more than the tolerance, with the
  given confidence (one-sided: the lower end of the effect's interval is above the
  tolerance, equivalently the p-value of "no worse than the tolerance" is below
  ``1 - confidence``);
* ``Pass``: there were enough samples and the candidate was not shown to be worse;
* ``Inconclusive``: too few samples to say either; the message names the minimum.

Every verdict carries the test used, its p-value, the effect with its interval, the sample
sizes and a sentence a person can act on; a latency verdict also carries its sub-checks,
each a verdict of its own. ``to_dict`` gives the JSON form (``verdict``, ``pValue``,
``effect``, ``interval``, ``n``, ``test``, ``message``, ``checks``...), with an unbounded
end of an interval as ``null``; no field is ever NaN.

**Sequential looks.** Judging the same rollout every interval is testing many times: at
99 % confidence per look, ten looks would roll back up to ~10 % of healthy candidates.
:func:`look_confidence` spends the false-rollback budget across the looks with the
Lan-DeMets spending function of O'Brien-Fleming type,
``a(t) = 2 - 2 Phi(z_{1-a/2} / sqrt(t))``, and gives look ``k`` of ``K`` the increment
``a(k/K) - a((k-1)/K)`` (at least 1e-15). The increments add up to ``a``, so by the union
bound the chance of any false rollback over all looks is at most ``1 - confidence``,
whatever the correlation between looks; early looks are strict (they fail only on large
regressions) and later ones nearly as lenient as a single test.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from modelrollout.core.judge import special
from modelrollout.core.judge.inputs import JudgeInputError


class Outcome(StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


@dataclass(frozen=True, slots=True)
class SampleSizes:
    """Requests counted on each side."""

    baseline: int
    candidate: int


def _number(value: float | None) -> float | None:
    """A JSON-safe number: NaN and infinities become ``None`` (unbounded)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one comparison, with the evidence behind it."""

    verdict: Outcome
    test: str
    message: str
    n: SampleSizes
    measure: str
    p_value: float | None = None
    effect: float | None = None
    interval: tuple[float, float] | None = None
    confidence: float | None = None
    name: str = ""
    checks: tuple[Verdict, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return self.verdict is Outcome.PASS

    @property
    def failed(self) -> bool:
        return self.verdict is Outcome.FAIL

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; unbounded interval ends and absent figures are ``None``."""
        data: dict[str, Any] = {}
        if self.name:
            data["name"] = self.name
        data |= {
            "verdict": self.verdict.value,
            "pValue": None if self.p_value is None else float(f"{self.p_value:.6g}"),
            "effect": _number(self.effect),
            "interval": None
            if self.interval is None
            else [_number(self.interval[0]), _number(self.interval[1])],
            "n": {"baseline": self.n.baseline, "candidate": self.n.candidate},
            "test": self.test,
            "measure": self.measure,
            "confidence": self.confidence,
            "message": self.message,
            "checks": [check.to_dict() for check in self.checks],
        }
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    """How strict the judge is.

    * ``tolerance``: the relative regression that is acceptable, 0.05 = "the median (or
      p99, or spread, or error rate) may rise 5 %"; a candidate fails only beyond it.
    * ``confidence``: how sure the judge must be before failing, one-sided; the chance of
      failing a candidate that is no worse than the tolerance is at most ``1 - confidence``
      (per verdict; a latency verdict shares it between its three checks).
    * ``min_samples``: requests needed on each side before any verdict but Inconclusive.
    * ``tail_quantile``: the quantile the tail check compares (0.99 = p99).
    * ``min_tail_samples``: requests each side needs beyond that quantile for the tail check
      (10 beyond p99 is 1,000 requests).
    """

    tolerance: float = 0.05
    confidence: float = 0.99
    min_samples: int = 100
    tail_quantile: float = 0.99
    min_tail_samples: int = 10

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tolerance) and 0.0 <= self.tolerance <= 10.0):
            raise JudgeInputError(f"tolerance: {self.tolerance} must be in [0, 10]")
        if not (math.isfinite(self.confidence) and 0.5 <= self.confidence < 1.0):
            raise JudgeInputError(f"confidence: {self.confidence} must be in [0.5, 1)")
        if isinstance(self.min_samples, bool) or self.min_samples < 2:
            raise JudgeInputError(f"min_samples: {self.min_samples} must be at least 2")
        if not 0.5 <= self.tail_quantile < 1.0:
            raise JudgeInputError(f"tail_quantile: {self.tail_quantile} must be in [0.5, 1)")
        if self.min_tail_samples < 1:
            raise JudgeInputError(f"min_tail_samples: {self.min_tail_samples} must be at least 1")

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @property
    def tail_label(self) -> str:
        return f"p{self.tail_quantile * 100:g}"

    def tail_minimum(self) -> int:
        """Requests per side the tail check needs."""
        return max(self.min_samples, math.ceil(self.min_tail_samples / (1.0 - self.tail_quantile)))


Spending = Literal["obrien-fleming", "pocock"]

MIN_SPEND = 1e-15
"""The least a look spends: confidences closer to 1 are not representable."""


def spent(alpha: float, fraction: float, spending: Spending = "obrien-fleming") -> float:
    """The false-rollback budget spent by information fraction ``fraction`` in [0, 1]."""
    if fraction <= 0.0:
        return 0.0
    fraction = min(fraction, 1.0)
    if spending == "pocock":
        return alpha * math.log(1.0 + (math.e - 1.0) * fraction)
    return 2.0 * special.norm_sf(special.norm_isf(alpha / 2.0) / math.sqrt(fraction))


def look_confidence(
    confidence: float, look: int, max_looks: int, spending: Spending = "obrien-fleming"
) -> float:
    """The confidence to judge look ``look`` (1-based) of ``max_looks`` with, so that the
    chance of a false Fail over all the looks stays within ``1 - confidence``.

    Looks are assumed equally spaced in information (equal intervals of traffic).
    """
    if not 0.5 <= confidence < 1.0:
        raise JudgeInputError(f"confidence: {confidence} must be in [0.5, 1)")
    if max_looks < 1:
        raise JudgeInputError(f"max_looks: {max_looks} must be at least 1")
    if not 1 <= look <= max_looks:
        raise JudgeInputError(f"look: {look} must be in [1, {max_looks}]")
    alpha = 1.0 - confidence
    increment = spent(alpha, look / max_looks, spending) - spent(
        alpha, (look - 1) / max_looks, spending
    )
    # Floating point cannot tell 1 - 1e-30 from 1: an early look spends at least 1e-15,
    # which adds at most max_looks * 1e-15 to the budget.
    return 1.0 - max(increment, MIN_SPEND)
