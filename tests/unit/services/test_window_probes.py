"""Live-window triggers, measured from the merged windows of a track's capture sidecars."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from factories import build_md, labelled
from modelrollout.core.monitoring.builder import ProfileBuilder
from modelrollout.core.monitoring.profile import Profile, ProfileSource
from modelrollout.core.replay.quality import QualityAccumulator, QualityState
from modelrollout.services import baking
from modelrollout.services.monitoring.windows import (
    Window,
    WindowAnswer,
    WindowError,
    merge_windows,
)
from rollout_helpers import NOW

SOURCE = ProfileSource(format="jsonl", prediction_field="response.score", label_field="label")


def scores(n: int, shift: float = 0.0, seed: int = 0) -> Profile:
    builder = ProfileBuilder(SOURCE)
    builder.add_arrays({"@prediction": np.random.default_rng(seed).beta(2, 5, n) + shift})
    return builder.profile()


class Windows:
    """Windows by track, as the sidecars would answer."""

    def __init__(self, **tracks: Window | Exception) -> None:
        self.tracks = tracks

    def window(self, namespace: str, md_name: str, track: str, seconds: float) -> Window:
        found = self.tracks[track]
        if isinstance(found, Exception):
            raise found
        return found


def window(profile: Profile | None = None, quality: QualityState | None = None) -> Window:
    return Window(
        pods=2,
        events=profile.rows if profile else 0,
        profile=profile,
        quality=quality or QualityState(),
    )


def md_with(trigger: dict[str, Any]) -> Any:
    return build_md(
        {
            "spec": {
                "monitoring": {
                    "capture": {"enabled": True},
                    "labels": {"url": "http://labels.example/l.jsonl"},
                },
                "rollback": {"triggers": [{"name": "t", **trigger}]},
            }
        }
    )


PREDICTIONS = {"type": "PredictionDrift", "predictionDrift": {}}
QUALITY = {"type": "QualityDrop", "qualityDrop": {"maxDropFromStable": 0.05}}


@pytest.mark.parametrize(
    ("trigger", "windows", "value", "bounds", "error"),
    [
        (PREDICTIONS, Windows(candidate=window(scores(3000, 0.3, 1)), stable=window(scores(3000))),
         1.0, (None, 0.0), None),
        (PREDICTIONS, Windows(candidate=window(scores(3000, 0, 1)), stable=window(scores(3000))),
         0.0, (None, 0.0), None),
        (PREDICTIONS, Windows(candidate=window(None), stable=window(scores(3000))),
         None, None, None),
        (PREDICTIONS, Windows(candidate=WindowError("pod p: no answer"), stable=window()),
         None, None, "pod p: no answer"),
        (QUALITY, Windows(candidate=window(quality=labelled(160, 40)),
                          stable=window(quality=labelled(190, 10))),
         0.8, (0.9, None), None),
    ],
)  # fmt: skip
def test_window_triggers(trigger, windows, value, bounds, error):
    (probe,) = baking.window_probes(None, md_with(trigger), NOW, windows).values()  # type: ignore[arg-type]
    assert probe.value == (pytest.approx(value) if value is not None else None), probe.basis
    assert probe.error == error
    if bounds is not None:
        assert probe.bounds is not None
        low, high = bounds
        assert probe.bounds.min == (pytest.approx(low) if low is not None else None)
        assert probe.bounds.max == high


def test_a_window_is_the_merge_of_its_pods():
    answers = [
        WindowAnswer(seconds=60, events=3000, profile=scores(3000, seed=1), quality=labelled(9, 1)),
        WindowAnswer(seconds=60, events=1000, profile=scores(1000, seed=2), quality=labelled(1, 9)),
        WindowAnswer(seconds=60, events=0),
    ]
    merged = merge_windows(answers)
    assert (merged.pods, merged.events) == (3, 4000)
    assert merged.profile is not None
    assert merged.profile.rows == 4000
    assert QualityAccumulator.from_state(merged.quality).accuracy == pytest.approx(0.5)


def test_each_window_is_read_once_per_round_whatever_uses_it():
    reads = []

    class Counting(Windows):
        def window(self, namespace: str, md_name: str, track: str, seconds: float) -> Window:
            reads.append(track)
            return super().window(namespace, md_name, track, seconds)

    md = build_md(
        {
            "spec": {
                "monitoring": {"capture": {"enabled": True}, "labels": {"url": "http://l/x"}},
                "rollback": {
                    "triggers": [
                        {"name": "a", **PREDICTIONS},
                        {"name": "b", "type": "PredictionDrift",
                         "predictionDrift": {"window": {"size": "5m", "minCount": 50}}},
                    ]
                },
            }
        }
    )  # fmt: skip
    source = Counting(candidate=window(scores(3000, 0, 1)), stable=window(scores(3000)))
    probes = baking.window_probes(None, md, NOW, source)  # type: ignore[arg-type]
    assert set(probes) == {"a", "b"}
    assert sorted(reads) == ["candidate", "stable"]
