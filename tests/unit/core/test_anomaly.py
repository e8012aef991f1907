"""Anomaly bands learned from a metric's own history."""

from __future__ import annotations

import math

import pytest

from modelrollout.core.anomaly import DAY, BandSettings, comparable, learn

NOW = 100 * DAY + 14 * 3600.0  # 14:00 on some day


def daily(peak: float, trough: float, days: int = 7, step: float = 300.0):
    """A metric with a daily cycle: `peak` at 14:00, `trough` at 02:00, sampled every `step`."""
    points = []
    t = NOW - days * DAY
    while t < NOW:
        phase = 2 * math.pi * ((t % DAY) - 14 * 3600) / DAY
        points.append((t, trough + (peak - trough) * (1 + math.cos(phase)) / 2))
        t += step
    return points


def flat(value: float, n: int = 100, step: float = 60.0):
    return [(NOW - (n - i) * step, value) for i in range(n)]


@pytest.mark.parametrize(
    ("name", "history", "settings", "value", "inside"),
    [
        ("the daily peak is normal at the peak hour", daily(20, 5), BandSettings(), 20.0, True),
        ("a shift at the peak hour is not", daily(20, 5), BandSettings(), 30.0, False),
        ("the trough's value at the peak hour is not", daily(20, 5), BandSettings(), 5.0, False),
        ("without seasonality the whole cycle is normal", daily(20, 5),
         BandSettings(seasonality="None"), 5.0, True),
        ("a flat history keeps a minimum width", flat(10.0), BandSettings(seasonality="None"),
         11.0, True),
        ("beyond the minimum width", flat(10.0), BandSettings(seasonality="None"), 12.0, False),
        ("an absolute floor for a metric near zero", flat(0.0),
         BandSettings(seasonality="None", absolute_width=0.01), 0.02, True),
        ("an outlier in the history does not widen the band",
         [*flat(10.0, n=99), (NOW - 30, 1000.0)], BandSettings(seasonality="None"), 13.0, False),
    ],
)  # fmt: skip
def test_band(name, history, settings, value, inside):
    band = learn(history, NOW, settings)
    assert band is not None, name
    assert band.contains(value) == inside, (name, band.describe())


@pytest.mark.parametrize(
    ("history", "settings"),
    [
        (daily(20, 5, days=0), BandSettings()),  # nothing yet
        (flat(10.0, n=200), BandSettings()),  # 200 minutes: no earlier day to compare with
        (flat(10.0, n=11), BandSettings(seasonality="None")),  # under minSamples
        ([(NOW - 60 * i, math.nan) for i in range(50)], BandSettings(seasonality="None")),
    ],
)
def test_too_little_history_gives_no_band(history, settings):
    assert learn(history, NOW, settings) is None


def test_comparable_values_are_the_same_time_of_day_on_earlier_days():
    history = daily(20, 5, days=3, step=600.0)
    picked = comparable(history, NOW, BandSettings(window_seconds=1800))
    # one sample per 10 min, 30 min either side: 7 a day on the last two days, and 4 on the
    # day the history starts (it begins exactly at that day's 14:00)
    assert len(picked) == 18
    assert min(picked) > 19.5


def test_future_samples_are_ignored():
    band = learn([*flat(10.0), (NOW + 60, 500.0)], NOW, BandSettings(seasonality="None"))
    assert band is not None
    assert band.center == 10.0
