"""Monitoring triggers: a live window (merged from the capture sidecars) to one measurement."""

from __future__ import annotations

import numpy as np
import pytest

from factories import labelled
from modelrollout.core.monitoring.builder import ProfileBuilder
from modelrollout.core.monitoring.checks import feature_drift, prediction_drift, quality
from modelrollout.core.monitoring.profile import Profile, ProfileSource
from modelrollout.core.monitoring.verdict import DriftThresholds

SOURCE = ProfileSource(format="jsonl", prediction_field="response.score", label_field="label")
THRESHOLDS = DriftThresholds()


def profile(
    n: int, *, amount_shift: float = 0.0, score_shift: float = 0.0, seed: int = 0
) -> Profile:
    rng = np.random.default_rng(seed)
    builder = ProfileBuilder(SOURCE)
    builder.add_arrays(
        {
            "amount": rng.normal(100 + amount_shift, 10, n),
            "age": rng.normal(40, 5, n),
            "@prediction": rng.beta(2, 5, n) + score_shift,
        }
    )
    return builder.profile()


BASELINE = profile(20_000, seed=1)


@pytest.mark.parametrize(
    ("name", "window", "features", "value", "basis"),
    [
        ("the same data drifts nowhere", profile(5_000, seed=2), [], 0.0, "no feature drifted"),
        ("a shifted feature", profile(5_000, amount_shift=8, seed=3), [], 1.0, "drifted: amount"),
        ("an unwatched feature is ignored", profile(5_000, amount_shift=8, seed=4), ["age"],
         0.0, "no feature drifted"),
        ("a small window is no data", profile(150, amount_shift=8, seed=5), [], None,
         "150 events in the window, 200 needed"),
        ("an unknown feature is no data", profile(5_000, seed=6), ["nope"], None,
         "not in the baseline profile: nope"),
    ],
)  # fmt: skip
def test_feature_drift(name, window, features, value, basis):
    reading = feature_drift(
        BASELINE, window, features=features, min_count=200, thresholds=THRESHOLDS
    )
    assert reading.value == value, (name, reading.basis)
    assert basis in reading.basis, name


def test_the_prediction_is_never_a_feature():
    window = profile(5_000, score_shift=0.3, seed=7)
    assert (
        feature_drift(BASELINE, window, features=[], min_count=200, thresholds=THRESHOLDS).value
        == 0
    )


@pytest.mark.parametrize(("shift", "value"), [(0.0, 0.0), (0.3, 1.0)])
def test_prediction_drift_against_stable_in_the_same_window(shift, value):
    stable = profile(5_000, seed=8)
    candidate = profile(5_000, score_shift=shift, seed=9)
    reading = prediction_drift(stable, candidate, min_count=200, thresholds=THRESHOLDS)
    assert reading.value == value, reading.basis


def test_prediction_drift_needs_enough_on_both_sides():
    reading = prediction_drift(profile(100), profile(5_000), min_count=200, thresholds=THRESHOLDS)
    assert reading.value is None
    assert "200 needed on each side" in reading.basis


@pytest.mark.parametrize(
    ("name", "candidate", "stable", "minimum", "drop", "value", "floor"),
    [
        ("absolute floor", labelled(90, 10), None, 0.8, None, 0.9, 0.8),
        ("relative to stable", labelled(80, 20), labelled(95, 5), None, 0.05, 0.8, 0.9),
        ("the higher floor wins", labelled(80, 20), labelled(95, 5), 0.5, 0.05, 0.8, 0.9),
        ("too few labels yet", labelled(30, 10), None, 0.8, None, None, None),
        ("stable has too few to compare", labelled(90, 10), labelled(5, 0), None, 0.05, None, None),
    ],
)  # fmt: skip
def test_quality(name, candidate, stable, minimum, drop, value, floor):
    reading = quality(
        candidate, stable, metric="Accuracy", min_count=50, minimum=minimum,
        max_drop_from_stable=drop,
    )  # fmt: skip
    assert reading.value == (pytest.approx(value) if value is not None else None), name
    assert reading.min == (pytest.approx(floor) if floor is not None else None), name
