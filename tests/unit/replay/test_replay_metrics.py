"""Histogram accuracy and merging, quality metrics, prediction paths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelrollout.core.replay.histogram import (
    LogHistogram,
    decode_counts,
    encode_counts,
)
from modelrollout.core.replay.jsonpath import compile_path, extract, format_path
from modelrollout.core.replay.quality import (
    InvalidPrediction,
    Prediction,
    PredictionReader,
    QualityAccumulator,
    binned_auc,
    exact_auc,
    score_bin,
)

QUANTILES = [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]


def _distributions() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(42)
    return [
        ("lognormal", rng.lognormal(mean=1.5, sigma=1.0, size=20_000)),
        ("exponential", rng.exponential(scale=20.0, size=20_000) + 0.05),
        ("uniform", rng.uniform(0.5, 5000.0, size=5_000)),
        ("bimodal", np.concatenate([rng.normal(5, 0.2, 9000), rng.normal(400, 30, 1000)])),
        ("tiny", rng.uniform(0.002, 0.02, size=1000)),
        ("single", np.array([12.5])),
    ]


@pytest.mark.parametrize(("name", "values"), _distributions())
@pytest.mark.parametrize("alpha", [0.005, 0.01])
def test_quantiles_are_within_the_relative_error_bound(
    name: str, values: np.ndarray, alpha: float
) -> None:
    histogram = LogHistogram(alpha)
    histogram.add_many(values)
    one_by_one = LogHistogram(alpha)
    for value in values[:500]:
        one_by_one.add(float(value))
    reference = LogHistogram(alpha)
    reference.add_many(values[:500])
    assert one_by_one.counts == reference.counts
    truth = np.quantile(values, QUANTILES, method="lower")
    got = histogram.quantiles(QUANTILES)
    for q, t, g in zip(QUANTILES, truth, got, strict=True):
        assert g is not None
        assert abs(g - t) <= alpha * t + 1e-12, (name, q, g, t)
    assert histogram.mean == pytest.approx(float(values.mean()))
    assert histogram.max == float(values.max())
    assert histogram.count == len(values)


def test_empty_and_zero_values() -> None:
    histogram = LogHistogram()
    assert histogram.quantile(0.5) is None
    assert histogram.mean is None
    histogram.add(0.0)
    histogram.add(0.0)
    histogram.add(10.0)
    assert histogram.quantile(0.5) == 0.0
    assert histogram.quantile(1.0) == 10.0
    with pytest.raises(ValueError, match="quantile"):
        histogram.quantile(1.5)


def test_merge_is_exact() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(2, 1.2, 30_000)
    whole = LogHistogram()
    whole.add_many(values)
    merged = LogHistogram()
    for part in np.array_split(values, 7):
        shard = LogHistogram()
        shard.add_many(part)
        merged.merge(LogHistogram.from_state(shard.to_state()))
    assert merged.counts == whole.counts
    assert merged.zero_count == whole.zero_count
    assert merged.quantiles(QUANTILES) == whole.quantiles(QUANTILES)
    assert merged.sum == pytest.approx(whole.sum)
    with pytest.raises(ValueError, match="different accuracy"):
        merged.merge(LogHistogram(0.02))


@pytest.mark.parametrize(
    "counts",
    [{}, {5: 1}, {-3: 2, -2: 1, 4: 7}, {0: 1, 1: 2, 2: 3, 100: 4}, {i: i + 1 for i in range(50)}],
)
def test_run_encoding_round_trips(counts: dict[int, int]) -> None:
    encoded = encode_counts(counts)
    assert decode_counts(encoded) == counts
    assert 0 not in encoded[1:]


def test_state_round_trip_and_validation() -> None:
    histogram = LogHistogram()
    histogram.add_many([0.5, 1.0, 2.0, 2.0, 1000.0])
    state = histogram.to_state()
    again = LogHistogram.from_state(state)
    assert again.counts == histogram.counts
    assert again.quantiles(QUANTILES) == histogram.quantiles(QUANTILES)
    broken = state.model_copy(update={"count": 99})
    with pytest.raises(ValueError, match="add up"):
        LogHistogram.from_state(broken)


@pytest.mark.parametrize(
    ("path", "document", "found", "value"),
    [
        ("predictions[0]", {"predictions": [0.7, 0.1]}, True, 0.7),
        ("$.predictions.0.score", {"predictions": [{"score": 0.2}]}, True, 0.2),
        ("$.predictions[-1]", {"predictions": [1, 2, 3]}, True, 3),
        ("outputs[0].data[1]", {"outputs": [{"data": [5, 6]}]}, True, 6),
        ('["a.b"].c', {"a.b": {"c": "x"}}, True, "x"),
        ("scores.0", {"scores": {"0": 9}}, True, 9),
        ("predictions[3]", {"predictions": [1]}, False, None),
        ("predictions.x", {"predictions": [1]}, False, None),
        ("a.b", {"a": 1}, False, None),
    ],
)
def test_prediction_paths(path: str, document: object, found: bool, value: object) -> None:
    steps = compile_path(path)
    assert extract(document, steps) == (found, value)
    assert compile_path(format_path(steps)) == steps


@pytest.mark.parametrize("path", ["", "$", "a..b", "a.", "a[x]", "a[0", ".a"])
def test_bad_prediction_paths(path: str) -> None:
    with pytest.raises(ValueError, match="prediction path"):
        compile_path(path)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("auto", 0.7, Prediction(positive=True, score=0.7)),
        ("auto", 0.2, Prediction(positive=False, score=0.2)),
        ("auto", 1, Prediction(positive=True, score=1.0)),
        ("auto", "1", Prediction(positive=True, label="1")),
        ("auto", "cat", Prediction(positive=False, label="cat")),
        ("auto", True, Prediction(positive=True, label="1")),
        ("class", 1, Prediction(positive=True, label="1")),
        ("class", 2, Prediction(positive=False, label="2")),
    ],
)
def test_prediction_interpretation(kind: str, value: object, expected: Prediction) -> None:
    reader = PredictionReader.create("p", kind=kind)  # type: ignore[arg-type]
    assert reader.interpret(value) == expected


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("auto", b"not json"),
        ("auto", b'{"q": 1}'),
        ("auto", b'{"p": [1]}'),
        ("auto", b'{"p": null}'),
        ("score", b'{"p": "x"}'),
    ],
)
def test_invalid_predictions(kind: str, body: bytes) -> None:
    reader = PredictionReader.create("p", kind=kind)  # type: ignore[arg-type]
    with pytest.raises(InvalidPrediction):
        reader.read(body)


def test_quality_matches_hand_computed_values() -> None:
    # label, score:  threshold 0.5
    data = [
        ("1", 0.9),  # tp
        ("1", 0.6),  # tp
        ("1", 0.4),  # fn
        ("0", 0.7),  # fp
        ("0", 0.1),  # tn
        ("0", 0.2),  # tn
        ("0", 0.3),  # tn
    ]
    quality = QualityAccumulator()
    for label, score in data:
        quality.add(label, Prediction(positive=score >= 0.5, score=score), "1")
    quality.add(None, Prediction(positive=True, score=0.9), "1")
    assert (quality.tp, quality.fp, quality.tn, quality.fn) == (2, 1, 3, 1)
    assert quality.accuracy == pytest.approx(5 / 7)
    assert quality.precision == pytest.approx(2 / 3)
    assert quality.recall == pytest.approx(2 / 3)
    assert quality.f1 == pytest.approx(2 / 3)
    # AUC by hand: positives 0.9, 0.6, 0.4 vs negatives 0.7, 0.1, 0.2, 0.3:
    # 0.9 beats 4, 0.6 beats 3, 0.4 beats 3 -> 10 / 12.
    assert quality.auc == pytest.approx(10 / 12)
    assert quality.unlabeled == 1


def test_class_predictions_are_multiclass_accuracy() -> None:
    quality = QualityAccumulator()
    for label, predicted in [("cat", "cat"), ("dog", "cat"), ("bird", "bird"), ("cat", "dog")]:
        quality.add(label, Prediction(positive=predicted == "cat", label=predicted), "cat")
    assert quality.accuracy == pytest.approx(0.5)
    assert quality.precision == pytest.approx(0.5)  # predicted cat twice, right once
    assert quality.recall == pytest.approx(0.5)  # two cats, found one
    assert quality.auc is None


def test_binned_auc_is_within_its_bound() -> None:
    rng = np.random.default_rng(3)
    actual = rng.random(5000) < 0.3
    scores = np.clip(rng.normal(0.4 + 0.25 * actual, 0.2), 0, 1)
    quality = QualityAccumulator()
    for s, a in zip(scores.tolist(), actual.tolist(), strict=True):
        quality.add("1" if a else "0", Prediction(positive=s >= 0.5, score=s), "1")
    exact = exact_auc(scores.tolist(), actual.tolist())
    assert exact is not None
    # Bound: half the share of positive/negative pairs falling in the same bin.
    same = sum(
        quality.positive_bins.get(b, 0) * quality.negative_bins.get(b, 0)
        for b in quality.positive_bins
    )
    bound = same / (int(actual.sum()) * int((~actual).sum())) / 2
    assert quality.auc is not None
    assert abs(quality.auc - exact) <= bound + 1e-12
    assert bound < 1e-3
    # Scores with three decimals are exact.
    rounded = np.round(scores, 3) + 0.0001
    assert binned_auc(_bins(rounded[actual]), _bins(rounded[~actual])) == pytest.approx(
        exact_auc(rounded.tolist(), actual.tolist()), abs=1e-12
    )


def _bins(scores: np.ndarray) -> dict[int, int]:
    bins: dict[int, int] = {}
    for s in scores.tolist():
        bins[score_bin(s)] = bins.get(score_bin(s), 0) + 1
    return bins


def test_score_bins_and_quality_state_round_trip() -> None:
    assert score_bin(-0.1) == -1
    assert score_bin(0.0) == 0
    assert score_bin(0.0015) == 1
    assert score_bin(1.0) == 1000
    assert score_bin(7.0) == 1000
    quality = QualityAccumulator()
    quality.add("1", Prediction(positive=True, score=0.9), "1")
    quality.add("0", Prediction(positive=True, score=0.8), "1")
    again = QualityAccumulator.from_state(quality.to_state())
    assert again == quality
    assert math.isclose(again.auc or 0, 1.0)
