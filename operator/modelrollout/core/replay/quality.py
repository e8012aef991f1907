"""Prediction quality against ground truth, kept in mergeable form.

A prediction is either a *score* (a JSON number, e.g. a fraud probability) or a *class*
(a JSON string or boolean, or any value when the prediction kind is ``class``). Ground
truth labels are normalised text (:func:`~.events.normalize_label`). With a positive label
``P`` (default ``"1"``) and a threshold ``T`` (default 0.5):

* a score predicts positive when ``score >= T``; it is correct when that matches
  ``label == P``;
* a class prediction is correct when it equals the label (multi-class accuracy); it
  predicts positive when it equals ``P``.

Accuracy, precision and recall come from exact counts (``correct`` and the confusion
matrix of the positive class), which merge by addition.

ROC AUC needs the score ranking. Keeping every score would make shard results grow with
the run, so scores are binned: ``AUC_BINS`` (1000) equal-width bins on [0, 1] per class, plus one
bin below 0 and one at or above 1. The AUC is computed from the bins treating two scores
in the same bin as a tie (counted 1/2). The only error is therefore on positive/negative
pairs whose scores fall in the same bin: ``|AUC_binned - AUC_exact| <= s / 2`` where ``s``
is the fraction of positive/negative pairs whose scores are in the same 0.001-wide bin. For
a model whose scores are spread over [0, 1], ``s`` is of the order of 1e-3, so the AUC is
exact to about 5e-4 (and exact outright when scores have at most three decimals). Scores outside
[0, 1] (logits) are all tied in the two outer bins: use probabilities for AUC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from modelrollout.core.api.base import ApiModel
from modelrollout.core.replay.events import normalize_label
from modelrollout.core.replay.histogram import decode_counts, encode_counts
from modelrollout.core.replay.jsonpath import Step, compile_path, extract

PredictionKind = Literal["auto", "score", "class"]

AUC_BINS = 1000
"""Score bins per unit interval for ROC AUC (bin width 0.001)."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """One prediction read from a response."""

    positive: bool
    """Whether it predicts the positive class (score >= threshold, or class == positive)."""
    score: float | None = None
    label: str | None = None
    """The predicted class, for class predictions."""


class InvalidPrediction(ValueError):
    """The response did not hold a usable prediction."""


@dataclass(frozen=True, slots=True)
class PredictionReader:
    """Reads the prediction out of a response body."""

    path: tuple[Step, ...]
    kind: PredictionKind = "auto"
    threshold: float = 0.5
    positive_label: str = "1"

    @classmethod
    def create(
        cls,
        path: str,
        kind: PredictionKind = "auto",
        threshold: float = 0.5,
        positive_label: str = "1",
    ) -> PredictionReader:
        return cls(compile_path(path), kind, threshold, positive_label)

    def read(self, body: bytes) -> Prediction:
        """Parse ``body`` and interpret the value at the path; raises InvalidPrediction."""
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InvalidPrediction("response is not JSON") from None
        found, value = extract(document, self.path)
        if not found:
            raise InvalidPrediction("no prediction at the prediction path")
        return self.interpret(value)

    def interpret(self, value: object) -> Prediction:
        if isinstance(value, dict | list) or value is None:
            raise InvalidPrediction("prediction is not a number, string or boolean")
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if self.kind == "score" or (self.kind == "auto" and is_number):
            if not is_number:
                raise InvalidPrediction("prediction is not a number")
            score = float(value)  # type: ignore[arg-type]
            if score != score:  # NaN
                raise InvalidPrediction("prediction is NaN")
            return Prediction(positive=score >= self.threshold, score=score)
        label = normalize_label(value)
        return Prediction(positive=label == self.positive_label, label=label)

    def agree(self, a: Prediction, b: Prediction) -> bool:
        """Whether two predictions agree: same side of the threshold, or same class."""
        if a.label is not None and b.label is not None:
            return a.label == b.label
        return a.positive == b.positive


def score_bin(score: float) -> int:
    """AUC bin of a score: -1 below 0, ``AUC_BINS`` at or above 1."""
    if score < 0:
        return -1
    if score >= 1:
        return AUC_BINS
    return int(score * AUC_BINS)


class QualityState(ApiModel):
    """Mergeable quality counts."""

    labeled: int = Field(default=0, ge=0, description="Predictions with a ground-truth label.")
    unlabeled: int = Field(default=0, ge=0, description="Predictions without a label.")
    correct: int = Field(default=0, ge=0, description="Labeled predictions that were right.")
    true_positives: int = Field(default=0, ge=0, description="Predicted and actually positive.")
    false_positives: int = Field(default=0, ge=0, description="Predicted positive, negative.")
    true_negatives: int = Field(default=0, ge=0, description="Predicted and actually negative.")
    false_negatives: int = Field(default=0, ge=0, description="Predicted negative, positive.")
    positive_bins: list[int] = Field(
        default_factory=list,
        description="Score bins (0.001 wide, -1 below 0) of positive examples, run-encoded.",
    )
    negative_bins: list[int] = Field(
        default_factory=list,
        description="Score bins (0.001 wide, -1 below 0) of negative examples, run-encoded.",
    )


@dataclass(slots=True)
class QualityAccumulator:
    """Counts for accuracy, precision, recall and binned scores for AUC."""

    labeled: int = 0
    unlabeled: int = 0
    correct: int = 0
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    positive_bins: dict[int, int] = field(default_factory=dict)
    negative_bins: dict[int, int] = field(default_factory=dict)

    def add(self, label: str | None, prediction: Prediction, positive_label: str) -> None:
        if label is None:
            self.unlabeled += 1
            return
        self.labeled += 1
        actual = label == positive_label
        if prediction.label is not None:
            self.correct += prediction.label == label
        else:
            self.correct += prediction.positive == actual
        if prediction.positive:
            if actual:
                self.tp += 1
            else:
                self.fp += 1
        elif actual:
            self.fn += 1
        else:
            self.tn += 1
        if prediction.score is not None:
            bins = self.positive_bins if actual else self.negative_bins
            index = score_bin(prediction.score)
            bins[index] = bins.get(index, 0) + 1

    def merge(self, other: QualityAccumulator) -> None:
        self.labeled += other.labeled
        self.unlabeled += other.unlabeled
        self.correct += other.correct
        self.tp += other.tp
        self.fp += other.fp
        self.tn += other.tn
        self.fn += other.fn
        for mine, theirs in (
            (self.positive_bins, other.positive_bins),
            (self.negative_bins, other.negative_bins),
        ):
            for index, count in theirs.items():
                mine[index] = mine.get(index, 0) + count

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labeled if self.labeled else None

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)

    @property
    def auc(self) -> float | None:
        return binned_auc(self.positive_bins, self.negative_bins)

    def to_state(self) -> QualityState:
        return QualityState(
            labeled=self.labeled,
            unlabeled=self.unlabeled,
            correct=self.correct,
            true_positives=self.tp,
            false_positives=self.fp,
            true_negatives=self.tn,
            false_negatives=self.fn,
            positive_bins=encode_counts(self.positive_bins),
            negative_bins=encode_counts(self.negative_bins),
        )

    @classmethod
    def from_state(cls, state: QualityState) -> QualityAccumulator:
        return cls(
            labeled=state.labeled,
            unlabeled=state.unlabeled,
            correct=state.correct,
            tp=state.true_positives,
            fp=state.false_positives,
            tn=state.true_negatives,
            fn=state.false_negatives,
            positive_bins=decode_counts(state.positive_bins),
            negative_bins=decode_counts(state.negative_bins),
        )


def binned_auc(positive: dict[int, int], negative: dict[int, int]) -> float | None:
    """ROC AUC from per-class score bins; ties within a bin count 1/2."""
    total_pos = sum(positive.values())
    total_neg = sum(negative.values())
    if total_pos == 0 or total_neg == 0:
        return None
    below = 0
    area = 0.0
    for index in sorted(set(positive) | set(negative)):
        pos = positive.get(index, 0)
        neg = negative.get(index, 0)
        area += pos * (below + neg / 2.0)
        below += neg
    return area / (total_pos * total_neg)


def exact_auc(scores: list[float], actual: list[bool]) -> float | None:
    """ROC AUC by pairwise ranking (ties 1/2); a reference for tests and small data."""
    pos = sorted(s for s, a in zip(scores, actual, strict=True) if a)
    neg = sorted(s for s, a in zip(scores, actual, strict=True) if not a)
    if not pos or not neg:
        return None
    import bisect

    area = 0.0
    for s in pos:
        lo = bisect.bisect_left(neg, s)
        hi = bisect.bisect_right(neg, s)
        area += lo + (hi - lo) / 2.0
    return area / (len(pos) * len(neg))
