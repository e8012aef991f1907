"""What the commands' parsers share: argument types, flag names and the environment.

Every error an argument type raises names the value and what it must be; argparse adds
the flag, so the user reads ``--count: '0' must be at least 1``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import math
import os
from collections.abc import Callable

from modelrollout.core.api.base import parse_duration

EVENT_LOOPS = ("asyncio", "uvloop")
"""``--event-loop`` choices: Python's own event loop, or uvloop (libuv) where installed."""


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for ``asyncio.Runner``: None for Python's own loop.

    Raises ValueError when uvloop is asked for and not installed (it is not a dependency).
    """
    if name != "uvloop":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        raise ValueError("uvloop is not installed (pip install uvloop)") from None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def int_at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than ``minimum`` (nor above ``maximum``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"in [{minimum}, {maximum}]" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}")
        return value

    return parse


def float_between(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[low, high]``, either end open on request."""
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if not math.isfinite(value) or below or above:
            raise argparse.ArgumentTypeError(f"{text!r} must be in {shown}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def positive_seconds(text: str) -> float:
    """An argparse type: a positive duration (``30s``, ``10m``, ``1h30m``) in seconds."""
    try:
        value = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive duration")
    return value


def non_negative_seconds(text: str) -> float:
    """An argparse type: a duration of zero or more (``0``, ``30s``) in seconds."""
    try:
        value = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def flag(field_name: str) -> str:
    """The flag of a model field: ``max_p99_ms`` → ``--max-p99-ms``."""
    return "--" + field_name.replace("_", "-")


def env_int(name: str, default: int) -> int:
    """An integer from the environment (``JOB_COMPLETION_INDEX``), or ``default`` when it
    is unset, blank or not an integer."""
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        return default
