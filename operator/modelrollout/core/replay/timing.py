"""How long the replay spins before a send: sized from the wake-ups it has seen.

A send is due at an exact instant. The scheduler sleeps most of the wait and spins (yields
to the event loop in a tight loop) for the last part, the *spin window*, because a
sleeping thread wakes up late: by the kernel's timer slack, by the time the operating
system (and, in a virtual machine, the hypervisor) takes to run it again, and by the
event loop's own work in between. A window shorter than that lateness leaves sends late;
a longer one burns CPU for nothing.

So the window is not fixed: it covers a high quantile of the lateness of the recent
wake-ups, plus a margin, between a floor and a ceiling. On a quiet machine with quick
wake-ups it shrinks to the floor; where wake-ups are slow it grows, up to the ceiling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SPIN_DEFAULT = 0.0002
"""The window, in seconds, before enough wake-ups have been seen to size it."""

SPIN_FLOOR = 0.0001
SPIN_CEILING = 0.001
"""Bounds of the window: a wake-up later than the ceiling is a stall (the machine was
busy elsewhere), which no affordable spin covers; it is left to show as send lag."""

SPIN_MARGIN = 0.00002
SPIN_QUANTILE = 0.99
SPIN_MIN_SAMPLES = 32
"""The window covers this quantile of the lateness seen, plus the margin, once at least
this many wake-ups have been seen."""


def spin_window(lateness: Sequence[float]) -> float:
    """The spin window, in seconds, for wake-ups that came ``lateness`` seconds late."""
    if len(lateness) < SPIN_MIN_SAMPLES:
        return SPIN_DEFAULT
    ordered = sorted(lateness)
    rank = min(len(ordered), max(1, math.ceil(SPIN_QUANTILE * len(ordered))))
    late = max(ordered[rank - 1], 0.0)
    return min(max(late + SPIN_MARGIN, SPIN_FLOOR), SPIN_CEILING)


__all__ = [
    "SPIN_CEILING",
    "SPIN_DEFAULT",
    "SPIN_FLOOR",
    "SPIN_MARGIN",
    "SPIN_MIN_SAMPLES",
    "SPIN_QUANTILE",
    "spin_window",
]
