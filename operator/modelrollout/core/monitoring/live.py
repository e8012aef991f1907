"""The live window a capture sidecar keeps: what its pod answered recently, mergeable.

Every captured request (the same event document the capture files hold) goes into the
profile of its time slot (``slot`` seconds long): the request's features, flattened as a
baseline profile flattens them, and the prediction read from the answer. Its prediction is
also kept by inference id, for a while, waiting for its label. A label that arrives joins
its prediction, and the pair counts in the quality of the slot the request was answered in.

A window is the merge of the slots it covers, so asking for the last five minutes reads
the last ten 30-second slots; slots older than ``keep`` seconds are dropped, and so are
predictions waiting longer than that for a label. Memory is bounded by the number of slots
(each a sketch per feature) and by ``max_pending`` predictions.

All of it is pure: the sidecar's server feeds it and serves :meth:`LiveWindow.answer`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelrollout.core.monitoring.builder import ProfileBuilder
from modelrollout.core.monitoring.profile import Profile, ProfileSource, merge_profiles
from modelrollout.core.monitoring.rows import DEFAULT_PREDICTION_PATH, EventRows, RowError
from modelrollout.core.replay.events import normalize_label
from modelrollout.core.replay.quality import (
    InvalidPrediction,
    Prediction,
    PredictionReader,
    QualityAccumulator,
)

DEFAULT_SLOT = 30.0
DEFAULT_KEEP = 3600.0
DEFAULT_MAX_PENDING = 200_000


@dataclass
class _Slot:
    profile: ProfileBuilder
    quality: QualityAccumulator
    events: int = 0


class LiveWindow:
    """Time slots of profiles and quality counts, and predictions waiting for labels."""

    def __init__(
        self,
        *,
        prediction_path: str = DEFAULT_PREDICTION_PATH,
        slot: float = DEFAULT_SLOT,
        keep: float = DEFAULT_KEEP,
        max_pending: int = DEFAULT_MAX_PENDING,
        reader: PredictionReader | None = None,
    ) -> None:
        self.slot = slot
        self.keep = keep
        self.max_pending = max_pending
        self.source = ProfileSource(format="jsonl", prediction_field=prediction_path)
        self.rows = EventRows(prediction_path=prediction_path, label_field=None)
        self.reader = reader or PredictionReader.create(prediction_path.removeprefix("response."))
        self.slots: dict[int, _Slot] = {}
        self.pending: OrderedDict[str, tuple[int, Prediction, float]] = OrderedDict()
        self.unprofiled = 0
        self.labels_unmatched = 0

    def _slot(self, now: float) -> tuple[int, _Slot]:
        index = int(now // self.slot)
        found = self.slots.get(index)
        if found is None:
            found = self.slots[index] = _Slot(ProfileBuilder(self.source), QualityAccumulator())
            oldest = index - int(self.keep // self.slot)
            for old in [i for i in self.slots if i < oldest]:
                del self.slots[old]
        return index, found

    def record(self, now: float, event: Mapping[str, Any], inference_id: str | None) -> None:
        """One answered request, as a capture event (``payload``/``body`` and ``response``)."""
        index, slot = self._slot(now)
        slot.events += 1
        try:
            row = self.rows.row(event)
        except RowError:
            self.unprofiled += 1
            return
        slot.profile.add(row)
        if inference_id is None or "@prediction" not in row:
            return
        try:
            prediction = self.reader.interpret(row["@prediction"])
        except InvalidPrediction:
            return
        self.pending[inference_id] = (index, prediction, now)
        self.pending.move_to_end(inference_id)
        while len(self.pending) > self.max_pending:
            self.pending.popitem(last=False)

    def label(self, now: float, inference_id: str, label: object) -> bool:
        """Join a label with the prediction of its request; False when none is waiting."""
        self._expire(now)
        waiting = self.pending.pop(inference_id, None)
        if waiting is None:
            self.labels_unmatched += 1
            return False
        index, prediction, _ = waiting
        slot = self.slots.get(index)
        if slot is not None:
            slot.quality.add(normalize_label(label), prediction, self.reader.positive_label)
        return True

    def _expire(self, now: float) -> None:
        while self.pending:
            _, (_, _, at) = next(iter(self.pending.items()))
            if now - at <= self.keep:
                break
            self.pending.popitem(last=False)

    def answer(self, now: float, seconds: float) -> dict[str, Any]:
        """The window of the last ``seconds`` (whole slots), as the sidecar serves it."""
        first = int((now - seconds) // self.slot) + 1
        covered = [s for i, s in self.slots.items() if i >= first]
        profiles: list[Profile] = [s.profile.profile() for s in covered if s.profile.rows]
        quality = QualityAccumulator()
        for slot in covered:
            quality.merge(slot.quality)
        profile = merge_profiles(profiles) if profiles else None
        return {
            "seconds": seconds,
            "events": sum(s.events for s in covered),
            "profile": profile.model_dump(by_alias=True, mode="json") if profile else None,
            "quality": quality.to_state().model_dump(by_alias=True, mode="json"),
        }
