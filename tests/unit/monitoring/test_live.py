"""The live window of a capture sidecar: slots of profiles, labels joined by inference id."""

from __future__ import annotations

import json

import pytest

from modelrollout.core.monitoring.live import LiveWindow
from modelrollout.core.monitoring.profile import Profile
from modelrollout.core.replay.quality import QualityAccumulator, QualityState


def event(amount: float, score: float) -> dict:
    return {
        "payload": {"instances": [[amount, 1.0]]},
        "response": {"predictions": [score], "modelVersion": "v2"},
    }


def quality(answer: dict) -> QualityAccumulator:
    return QualityAccumulator.from_state(QualityState.model_validate(answer["quality"]))


def test_a_window_covers_whole_recent_slots():
    live = LiveWindow(slot=30, keep=600)
    for second in range(0, 300):  # one request a second for five minutes
        live.record(float(second), event(second, 0.9), None)
    answer = live.answer(299.0, 60)
    assert answer["events"] == 60  # the last two 30-second slots
    profile = Profile.model_validate(answer["profile"])
    assert profile.rows == 60
    assert set(profile.features) == {"instances.0.0", "instances.0.1", "@prediction"}
    assert live.answer(299.0, 600)["events"] == 300
    json.dumps(answer)  # served as JSON


def test_old_slots_are_dropped():
    live = LiveWindow(slot=30, keep=120)
    for second in range(0, 600, 5):
        live.record(float(second), event(1, 0.9), None)
    assert len(live.slots) <= 5
    assert live.answer(599.0, 3600)["events"] <= 5 * 6


@pytest.mark.parametrize(
    ("labels", "accuracy", "labelled"),
    [
        ({"a": 1, "b": 0}, 1.0, 2),  # 0.9 >= 0.5 is positive; 0.1 is negative
        ({"a": 0, "b": 0}, 0.5, 2),
        ({"a": 1, "zzz": 1}, 1.0, 1),  # a label without its request counts nowhere
    ],
)
def test_labels_join_their_predictions(labels, accuracy, labelled):
    live = LiveWindow(slot=30)
    live.record(10.0, event(1, 0.9), "a")
    live.record(11.0, event(2, 0.1), "b")
    for inference_id, label in labels.items():
        live.label(500.0, inference_id, label)
    q = quality(live.answer(500.0, 3600))
    assert q.labeled == labelled
    assert q.accuracy == pytest.approx(accuracy)


def test_predictions_wait_for_labels_only_so_long():
    live = LiveWindow(slot=30, keep=100, max_pending=2)
    live.record(0.0, event(1, 0.9), "a")
    live.record(1.0, event(1, 0.9), "b")
    live.record(2.0, event(1, 0.9), "c")  # over max_pending: "a" is forgotten
    assert not live.label(3.0, "a", 1)
    assert live.label(3.0, "b", 1)
    assert not live.label(500.0, "c", 1)  # waited longer than keep
    assert live.labels_unmatched == 2


def test_a_request_that_cannot_be_profiled_still_counts():
    live = LiveWindow()
    live.record(1.0, {"body": "not json", "contentType": "text/plain"}, None)
    answer = live.answer(1.0, 60)
    assert (answer["events"], answer["profile"]) == (1, None)
    assert live.unprofiled == 1
