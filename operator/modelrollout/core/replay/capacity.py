"""Capacity: the highest rate at which a model kept its p99 latency within a target.

A ramp (or steps) replay offers a rising rate. Its per-second timeline is cut into windows
of ``window`` seconds; a window *holds* when its p99 latency (from the intended send time,
so queueing counts) is at or below the target, at most 1 % of its sends failed and none was
dropped. Windows with fewer than ``MIN_WINDOW_OK`` answers and no failure are not evidence
either way and are skipped.

The capacity is the highest served rate (answers per second) among the windows that held,
counting only windows offered less than the lowest offered rate of any window that broke:
one slow window at a low rate caps it, so the figure is never an optimistic outlier. When
no window broke, ``reached`` is false: the model held up to the highest rate replayed, and
the figure is a lower bound.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from modelrollout.core.api.base import ApiModel
from modelrollout.core.replay.accumulator import TimelineBucket

MIN_WINDOW_OK = 10
MAX_ERROR_SHARE = 0.01


class CapacityReport(ApiModel):
    """The highest rate at which p99 latency stayed within the target."""

    p99_target_ms: float = Field(description="The p99 latency target, milliseconds.")
    window_seconds: int = Field(ge=1, description="Length of the windows compared, seconds.")
    rate: float | None = Field(
        default=None,
        description="Highest served rate (answers per second) of a window that held, below "
        "every window that broke; unset when no window held.",
    )
    reached: bool = Field(
        description="True when a window at a higher offered rate broke the target; false "
        "when the run never pushed the model past it (rate is then a lower bound)."
    )
    windows: int = Field(ge=0, description="Windows with enough answers to judge.")
    message: str = Field(description="What limited the capacity, in words.")


def _holds(window: TimelineBucket, target_ms: float) -> tuple[bool, str]:
    p99 = window.latency.quantile(0.99, clamp=False)  # a timeline keeps no min or max
    if window.dropped:
        return False, f"{window.dropped} sends dropped"
    if window.sent and window.errors / window.sent > MAX_ERROR_SHARE:
        return False, f"{window.errors} of {window.sent} sends failed"
    if p99 is not None and p99 > target_ms:
        return False, f"p99 {p99:.1f} ms > {target_ms:g} ms"
    return True, f"p99 {p99:.1f} ms" if p99 is not None else "no answer"


def assess(
    windows: Sequence[tuple[TimelineBucket, float]], target_ms: float, window_seconds: int
) -> CapacityReport:
    """The capacity shown by ``windows``, each with the seconds it covers (the last one of a
    run may be shorter than ``window_seconds``); see the module's docstring."""
    judged: list[tuple[float, float, bool, str]] = []  # offered, served, held, why
    for window, seconds in windows:
        failed = window.errors + window.dropped
        if window.ok < MIN_WINDOW_OK and not failed:
            continue
        held, why = _holds(window, target_ms)
        offered = (window.sent + window.dropped) / seconds
        judged.append((offered, window.ok / seconds, held, why))
    broke = [(offered, why) for offered, _, held, why in judged if not held]
    ceiling = min(broke)[0] if broke else float("inf")
    served = [s for offered, s, held, _ in judged if held and offered < ceiling]
    rate = max(served) if served else None
    if broke:
        offered, why = min(broke)
        message = f"at an offered {offered:.1f} req/s the window broke: {why}"
    elif judged:
        message = (
            f"p99 stayed within {target_ms:g} ms up to the highest rate replayed; "
            "the capacity is at least this"
        )
    else:
        message = f"no window of {window_seconds} s had {MIN_WINDOW_OK} answers"
    return CapacityReport(
        p99_target_ms=target_ms,
        window_seconds=window_seconds,
        rate=rate,
        reached=bool(broke),
        windows=len(judged),
        message=message,
    )
