"""The spin window covers the wake-ups seen, within its bounds."""

from __future__ import annotations

import pytest

from modelrollout.core.replay.timing import (
    SPIN_CEILING,
    SPIN_DEFAULT,
    SPIN_FLOOR,
    SPIN_MARGIN,
    SPIN_MIN_SAMPLES,
    spin_window,
)

US = 1e-6


@pytest.mark.parametrize(
    ("lateness", "expected"),
    [
        pytest.param([], SPIN_DEFAULT, id="nothing seen yet: the default"),
        pytest.param([900 * US] * (SPIN_MIN_SAMPLES - 1), SPIN_DEFAULT, id="too few to size"),
        pytest.param([10 * US] * 200, SPIN_FLOOR, id="quick wake-ups: the floor"),
        pytest.param([-20 * US] * 200, SPIN_FLOOR, id="early wake-ups count as on time"),
        pytest.param([120 * US] * 200, 120 * US + SPIN_MARGIN, id="steady lateness + margin"),
        pytest.param(
            [20 * US] * 197 + [300 * US] * 3,
            300 * US + SPIN_MARGIN,
            id="1.5 % slow: covered (the 99th percentile)",
        ),
        pytest.param(
            [90 * US] * 254 + [5000 * US] * 2,
            90 * US + SPIN_MARGIN,
            id="two stalls in 256: not chased",
        ),
        pytest.param([5000 * US] * 100, SPIN_CEILING, id="stalls: the ceiling"),
    ],
)
def test_spin_window(lateness: list[float], expected: float) -> None:
    assert spin_window(lateness) == pytest.approx(expected)


def test_bounds_are_ordered() -> None:
    assert SPIN_FLOOR <= SPIN_DEFAULT <= SPIN_CEILING
