"""Quality figures checked against scikit-learn, the reference most users compute them with.

Accuracy, precision, recall and F1 come from exact counts and must equal scikit-learn's.
ROC AUC is computed from 0.001-wide score bins: the documented bound is half the share of
positive/negative pairs whose scores share a bin, and the test measures that share on the
same data. Windows of the live capture (labels joined by inference id after the answers)
must give the same figures as scikit-learn on the joined pairs.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from modelrollout.core.monitoring.live import LiveWindow
from modelrollout.core.replay.quality import (
    AUC_BINS,
    PredictionReader,
    QualityAccumulator,
    QualityState,
    score_bin,
)

READER = PredictionReader.create("predictions[0]")


def scored(n: int, seed: int, separation: float, decimals: int | None = None):
    """Labels, and scores that rank positives higher by ``separation``."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    scores = 1 / (1 + np.exp(-(rng.normal(size=n) + separation * labels)))
    if decimals is not None:
        scores = np.round(scores, decimals)
    return labels, scores


def accumulate(labels: np.ndarray, scores: np.ndarray) -> QualityAccumulator:
    acc = QualityAccumulator()
    for label, score in zip(labels, scores, strict=True):
        acc.add("1" if label else "0", READER.interpret(float(score)), "1")
    return acc


def tied_share(labels: np.ndarray, scores: np.ndarray) -> float:
    """Share of positive/negative pairs whose scores fall in the same AUC bin."""
    bins = np.array([score_bin(float(s)) for s in scores])
    pos = np.bincount(bins[labels] + 1, minlength=AUC_BINS + 3)
    neg = np.bincount(bins[~labels] + 1, minlength=AUC_BINS + 3)
    return float((pos * neg).sum()) / (labels.sum() * (~labels).sum())


@pytest.mark.parametrize(
    ("n", "seed", "separation", "decimals"),
    [
        (2_000, 1, 1.5, None),
        (20_000, 2, 0.3, None),  # a weak model: AUC near 0.58
        (5_000, 3, 3.0, None),  # a strong one: AUC near 0.98
        (5_000, 4, 1.0, 3),  # three decimals: the bins are exact, so the AUC is too
        (300, 5, 0.0, 2),  # no skill, heavy ties
    ],
)
def test_binary_figures_match_scikit_learn(n, seed, separation, decimals):
    labels, scores = scored(n, seed, separation, decimals)
    acc = accumulate(labels, scores)
    predicted = scores >= 0.5
    assert acc.accuracy == pytest.approx(metrics.accuracy_score(labels, predicted), abs=1e-12)
    assert acc.precision == pytest.approx(
        metrics.precision_score(labels, predicted, zero_division=0), abs=1e-12
    )
    assert acc.recall == pytest.approx(metrics.recall_score(labels, predicted), abs=1e-12)
    assert acc.f1 == pytest.approx(metrics.f1_score(labels, predicted), abs=1e-12)
    exact = metrics.roc_auc_score(labels, scores)
    bound = tied_share(labels, scores) / 2
    assert abs(acc.auc - exact) <= bound + 1e-12
    if decimals is not None and decimals <= 3:
        assert acc.auc == pytest.approx(exact, abs=1e-12)


def test_multiclass_accuracy_matches_scikit_learn():
    rng = np.random.default_rng(7)
    classes = np.array(["cat", "dog", "bird"])
    truth = rng.choice(classes, 3_000)
    guess = np.where(rng.random(3_000) < 0.7, truth, rng.choice(classes, 3_000))
    acc = QualityAccumulator()
    for label, predicted in zip(truth, guess, strict=True):
        acc.add(str(label), READER.interpret(str(predicted)), "1")
    assert acc.accuracy == pytest.approx(metrics.accuracy_score(truth, guess), abs=1e-12)


def test_a_live_window_joins_late_labels_and_scores_like_scikit_learn():
    labels, scores = scored(4_000, 11, 1.2, 3)
    window = LiveWindow(slot=30.0, keep=3600.0)
    for i, score in enumerate(scores):
        event = {"payload": {"x": i % 7}, "response": {"predictions": [float(score)]}}
        window.record(1_000.0 + i * 0.01, event, f"id-{i}")
    # labels arrive later and out of order; some never arrive, some are for unknown ids
    order = np.random.default_rng(12).permutation(len(labels))
    arrived = order[:3_500]
    for i in arrived:
        assert window.label(1_100.0, f"id-{i}", int(labels[i]))
    assert not window.label(1_100.0, "id-unknown", 1)
    answer = window.answer(1_100.0, 600.0)
    acc = QualityAccumulator.from_state(QualityState.model_validate(answer["quality"]))
    joined = np.sort(arrived)
    truth, predicted = labels[joined], scores[joined]
    assert acc.labeled == len(joined)
    assert acc.accuracy == pytest.approx(metrics.accuracy_score(truth, predicted >= 0.5))
    assert acc.precision == pytest.approx(metrics.precision_score(truth, predicted >= 0.5))
    assert acc.recall == pytest.approx(metrics.recall_score(truth, predicted >= 0.5))
    assert acc.auc == pytest.approx(metrics.roc_auc_score(truth, predicted), abs=1e-12)
