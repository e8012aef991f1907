"""The statistical judge: is the candidate worse than stable, in the same window?

Fixed SLO thresholds answer a different question ("is the candidate under 300 ms?"). They
miss a regression that stays under the threshold, and they roll back a healthy candidate
on an interval that is noisy or simply busier, since the threshold ignores that stable was
just as slow at that moment. The judge compares the two tracks over the same window, so
what they share (the time of day, the load, a slow dependency) cancels, and it answers
with a test: a p-value, an effect with its interval, and one of Pass, Fail or
Inconclusive, never a bare boolean.

Design choices, and why:

* **Tolerance and confidence.** A candidate fails only when it is worse by more than the
  tolerance with the given one-sided confidence. With large samples, a 0.5 % slowdown is
  significant but harmless; the tolerance keeps it from failing. With small samples, an
  apparent 30 % slowdown may be noise; the confidence keeps it from failing. Pass means
  "enough samples and not shown to be worse"; the message says when the interval also
  shows the candidate within the tolerance (equivalence).
* **Three latency checks** (shift, tail, spread) because a regression can move the median,
  only the slowest requests, or only the variability, and each test is blind to the others'
  shapes. **One exact error check** that works at zero and low counts.
* **Histograms and samples.** Prometheus keeps histograms, not requests; every test here
  is correct for binned data, and says how (:mod:`.latency`).
* **Pure.** numpy and the standard library only; no scipy at run time (an import-linter
  contract holds that), with scipy used by the tests as the oracle.
* **Repeated looks.** :func:`look_confidence` splits the false-rollback budget over the
  intervals of a rollout (O'Brien-Fleming-type alpha spending).

The public face is this module: the inputs (:class:`LatencySamples`,
:class:`LatencyHistogram`, :class:`ErrorCounts`), :class:`JudgeSettings`,
:func:`judge_latency`, :func:`judge_errors`, :func:`look_confidence`, :class:`Verdict` and
:class:`JudgeInputError`.
"""

from __future__ import annotations

from modelrollout.core.judge.inputs import (
    ErrorCounts,
    JudgeInputError,
    LatencyHistogram,
    LatencyInput,
    LatencySamples,
)
from modelrollout.core.judge.latency import judge_latency
from modelrollout.core.judge.proportions import judge_errors
from modelrollout.core.judge.verdict import (
    JudgeSettings,
    Outcome,
    SampleSizes,
    Verdict,
    look_confidence,
)

__all__ = [
    "ErrorCounts",
    "JudgeInputError",
    "JudgeSettings",
    "LatencyHistogram",
    "LatencyInput",
    "LatencySamples",
    "Outcome",
    "SampleSizes",
    "Verdict",
    "judge_errors",
    "judge_latency",
    "look_confidence",
]
