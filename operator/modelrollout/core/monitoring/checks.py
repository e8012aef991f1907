"""Monitoring triggers, the pure part: one live window becomes one measurement.

The capture sidecars keep the recent window of what each model pod answered, as mergeable
state: a profile of the requests' features and the predictions (quantile sketches and
category counts), and the quality counts of the answers whose labels have arrived. The
operator merges the windows of a track's pods and turns them into a :class:`Reading`, the
value the analysis judges, with what it was computed from:

* **feature drift**: the number of drifted features of the candidate's window against the
  baseline profile (a trigger allows ``maxDrifted``);
* **prediction drift**: whether the candidate's predictions drifted from stable's in the
  same window (1) or not (0), so that the time of day cancels out; or from the baseline's;
* **quality**: accuracy, AUC, precision or recall of the labelled answers, against an
  absolute floor and/or stable's value in the same window less ``maxDropFromStable``.

A window with fewer than ``minCount`` events (or labels) gives no value: the measurement
is Inconclusive, never a pass and never a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelrollout.core.monitoring.profile import Profile
from modelrollout.core.monitoring.verdict import Comparison, DriftThresholds, compare
from modelrollout.core.replay.quality import QualityAccumulator, QualityState

PREDICTION = "@prediction"
LABEL = "@label"
SHOWN = 3


@dataclass(frozen=True)
class Reading:
    """One measurement: the value (None: too little data) and the range it must stay in
    when that range is learned with it (quality relative to stable)."""

    value: float | None
    basis: str
    min: float | None = None
    max: float | None = None


def _only(profile: Profile, names: Sequence[str]) -> Profile:
    kept = {name: column for name, column in profile.features.items() if name in names}
    return profile.model_copy(update={"features": kept})


def _describe(comparison: Comparison) -> str:
    drifted = [f for f in comparison.features if f.status == "drifted"]
    parts = []
    for feature in drifted[:SHOWN]:
        why = "; ".join(feature.reasons[:2])
        parts.append(f"{feature.name} ({why})" if why else feature.name)
    if len(drifted) > SHOWN:
        parts.append(f"{len(drifted) - SHOWN} more")
    stable = sum(f.status == "stable" for f in comparison.features)
    insufficient = len(comparison.insufficient)
    head = f"drifted: {', '.join(parts)}" if parts else "no feature drifted"
    return f"{head}; {stable} stable, {insufficient} with too few values"


def feature_drift(
    baseline: Profile,
    window: Profile,
    *,
    features: Sequence[str],
    min_count: int,
    thresholds: DriftThresholds,
) -> Reading:
    """How many of the watched features (all of the baseline's when ``features`` is
    empty; never the prediction or the label) drifted in the window."""
    if window.rows < min_count:
        return Reading(None, f"{window.rows} events in the window, {min_count} needed")
    names = list(features) or [n for n in baseline.features if n not in (PREDICTION, LABEL)]
    missing = [n for n in names if n not in baseline.features]
    if missing:
        return Reading(None, f"not in the baseline profile: {', '.join(missing[:SHOWN])}")
    comparison = compare(_only(baseline, names), window, thresholds)
    if not comparison.drifted and len(comparison.insufficient) == len(comparison.features):
        return Reading(None, f"every watched feature has too few values: {_describe(comparison)}")
    return Reading(float(len(comparison.drifted)), _describe(comparison))


def prediction_drift(
    reference: Profile, window: Profile, *, min_count: int, thresholds: DriftThresholds
) -> Reading:
    """1 when the window's predictions drifted from the reference's, else 0."""
    if window.rows < min_count or reference.rows < min_count:
        return Reading(
            None,
            f"{window.rows} events in the window and {reference.rows} in the reference, "
            f"{min_count} needed on each side",
        )
    if PREDICTION not in reference.features or PREDICTION not in window.features:
        return Reading(None, "no predictions captured (is capture on for both tracks?)")
    comparison = compare(_only(reference, [PREDICTION]), window, thresholds)
    (feature,) = comparison.features
    if feature.status == "insufficient":
        return Reading(None, f"predictions: {'; '.join(feature.reasons) or 'too few values'}")
    return Reading(1.0 if feature.status == "drifted" else 0.0, _describe(comparison))


QualityMetric = str
_METRICS: dict[QualityMetric, Callable[[QualityAccumulator], float | None]] = {
    "Accuracy": lambda q: q.accuracy,
    "AUC": lambda q: q.auc,
    "Precision": lambda q: q.precision,
    "Recall": lambda q: q.recall,
}


def quality(
    candidate: QualityState,
    stable: QualityState | None,
    *,
    metric: QualityMetric,
    min_count: int,
    minimum: float | None,
    max_drop_from_stable: float | None,
) -> Reading:
    """The metric of the candidate's labelled answers, and the floor it must stay above:
    ``minimum``, and stable's value in the same window less ``max_drop_from_stable``."""
    measure = _METRICS[metric]
    mine = QualityAccumulator.from_state(candidate)
    if mine.labeled < min_count:
        return Reading(None, f"{mine.labeled} labelled answers in the window, {min_count} needed")
    value = measure(mine)
    if value is None:
        return Reading(None, f"{metric} undefined for these labels")
    floors = [] if minimum is None else [minimum]
    basis = f"{metric.lower()} {value:.4g} of {mine.labeled} labelled answers"
    if max_drop_from_stable is not None:
        theirs = QualityAccumulator.from_state(stable) if stable is not None else None
        reference = measure(theirs) if theirs is not None and theirs.labeled >= min_count else None
        if reference is None:
            return Reading(None, f"{basis}; stable has too few labelled answers to compare")
        floors.append(reference - max_drop_from_stable)
        basis += f"; stable {reference:.4g} of {theirs.labeled if theirs else 0}"
    return Reading(value, basis, min=max(floors) if floors else None)
