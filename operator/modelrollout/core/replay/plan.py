"""The replay plan: which event is sent at which intended time, in which shard.

The plan joins three things that are decided independently: the selected events (in
file order), the intended times from the :class:`~.rates.RateSpec`, and the shard.

*Run length.* ``duration`` keeps the sends whose intended time is before it; ``count``
keeps the first ``count`` sends; with neither, the run is one pass over the selected
events (``steps``: one cycle of the steps). When the run needs more sends than there are
events, the events are looped (send ``k`` carries event ``k mod S``); when it needs fewer,
the remaining events are left out. ``speed`` mode loops by repeating the recorded
timeline: pass ``p`` starts at ``p * (span + mean gap) / speed``.

*Recorded pace.* In ``speed`` mode event ``j`` is due at ``(ts_j - ts_0) / speed`` where
``ts_0`` is the first selected event's timestamp. Events are sent in file order, so an
event stamped earlier than its predecessor is sent right after it (never before).

*Sharding.* The global schedule (send ``k`` at ``t_k``) is computed identically in every
shard; shard ``I`` of ``N`` makes the sends with ``k mod N == I``. Each shard thus runs at
``rate / N`` with the same pattern, the event of global send ``k`` is the same as in a
single run, and the union of the shards is exactly the single run: merged counts equal
single-run counts.

*Planned duration.* ``duration`` when given; otherwise the intended time of the first send
that is *not* made (``count / rate`` at a constant rate; one pass of the recorded timeline
at ``speed``). The target rate of a shard is its scheduled sends over this duration, so the
target rates of the shards add up to the single run's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from modelrollout.core.replay.events import Event
from modelrollout.core.replay.rates import (
    RateSpec,
    build_pattern_rate,
    constant_times,
    pattern_mean_rate,
)

SINGLE_TIMESTAMP_PERIOD = 1.0
"""Seconds of recorded time one pass lasts when every selected event has the same timestamp."""


class EmptyDatasetError(ValueError):
    """No usable event: nothing to replay."""


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """What the plan needs to know about the selected events (from a first pass)."""

    selected: int
    first_timestamp: float | None = None
    last_timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class PlannedSend:
    index: int
    """Global send index ``k`` (the same in every shard)."""
    offset: float
    """Intended send time, seconds after the run start."""
    event: Event


class Plan:
    """Intended times and events for one run (or one shard of it)."""

    def __init__(self, rate: RateSpec, info: DatasetInfo) -> None:
        if info.selected <= 0:
            raise EmptyDatasetError("no usable event: every line was malformed or filtered out")
        self.rate = rate
        self.info = info
        self.limit_duration = rate.duration_seconds
        self.limit_count: int | None = rate.count
        if self.limit_duration is None and self.limit_count is None and rate.mode != "steps":
            self.limit_count = info.selected
        self._period = 0.0
        if rate.mode == "speed":
            assert rate.speed is not None
            if info.first_timestamp is None or info.last_timestamp is None:
                raise EmptyDatasetError("--speed needs event timestamps")
            span = max(info.last_timestamp - info.first_timestamp, 0.0)
            if info.selected > 1 and span > 0:
                gap = span / (info.selected - 1)
            else:
                gap = SINGLE_TIMESTAMP_PERIOD
            self._gap = gap / rate.speed
            self._period = (span + gap) / rate.speed
        # The pattern length: a ramp or a daily shape is stretched over the whole run.
        self._pattern_duration = 0.0
        if rate.pattern is not None and rate.pattern.shape != "steps":
            if self.limit_duration is not None:
                self._pattern_duration = self.limit_duration
            else:
                assert self.limit_count is not None
                self._pattern_duration = self.limit_count / pattern_mean_rate(rate.pattern)
        self.scheduled_total: int | None = None
        """Global number of scheduled sends; known once :meth:`sends` is exhausted."""
        self.planned_duration: float | None = self.limit_duration
        """Planned run length in seconds; final once :meth:`sends` is exhausted."""

    # -- estimates for progress reporting --------------------------------------------
    def expected_total(self) -> int | None:
        """Global number of sends expected (exact except in speed mode with a duration)."""
        if self.limit_count is not None:
            return self.limit_count
        d = self._stop_time()
        assert d is not None
        if self.rate.rate is not None:
            return math.ceil(d * self.rate.rate)
        if self.rate.speed is not None:
            return math.ceil(d / self._period * self.info.selected)
        assert self.rate.pattern is not None
        if self.rate.pattern.shape == "steps":
            return math.ceil(d * build_pattern_rate(self.rate.pattern, d).mean_rate)
        return math.ceil(d * pattern_mean_rate(self.rate.pattern))

    def expected_duration(self) -> float:
        stop = self._stop_time()
        if stop is not None:
            return stop
        assert self.limit_count is not None
        if self.rate.rate is not None:
            return self.limit_count / self.rate.rate
        if self.rate.speed is not None:
            return self._period * self.limit_count / self.info.selected
        assert self.rate.pattern is not None
        if self.rate.pattern.shape == "steps":
            return self.limit_count / build_pattern_rate(self.rate.pattern, 1.0).mean_rate
        return self._pattern_duration

    # -- the schedule -----------------------------------------------------------------
    def times(self) -> Iterator[float]:
        """Intended times of the global schedule for the rate modes (not speed)."""
        if self.rate.rate is not None:
            return constant_times(self.rate.rate)
        assert self.rate.pattern is not None
        return build_pattern_rate(self.rate.pattern, self._pattern_duration).times()

    def sends(
        self,
        events: Callable[[], Iterable[Event]],
        shard_index: int = 0,
        shard_count: int = 1,
    ) -> Iterator[PlannedSend]:
        """The sends of shard ``shard_index``; ``events`` opens a fresh pass each call."""
        if not 0 <= shard_index < shard_count:
            raise ValueError(f"shard index {shard_index} is not in [0, {shard_count})")
        stream = _cycle(events)
        speed_times = self._speed_times(stream) if self.rate.speed is not None else None
        rate_times = self.times() if speed_times is None else None
        stop_time = self._stop_time()
        k = 0
        next_time: float | None = None
        while True:
            if self.limit_count is not None and k >= self.limit_count:
                next_time = self._time_after_last(k, rate_times, speed_times)
                break
            event: Event | None = None
            if speed_times is not None:
                item = next(speed_times, None)
                if item is None:  # pragma: no cover - the recorded timeline loops forever
                    break
                offset, event = item
            else:
                assert rate_times is not None
                maybe = next(rate_times, None)
                if maybe is None:
                    break
                offset = maybe
            if stop_time is not None and offset >= stop_time:
                next_time = stop_time
                break
            if event is None:
                event = next(stream)
            if k % shard_count == shard_index:
                yield PlannedSend(k, offset, event)
            k += 1
        self.scheduled_total = k
        if next_time is not None:
            self.planned_duration = next_time
        else:  # a ramp or daily generator ran out at the end of its pattern
            self.planned_duration = self._pattern_duration or self.expected_duration()

    def _stop_time(self) -> float | None:
        if self.limit_duration is not None:
            return self.limit_duration
        if self.limit_count is None:  # steps without a length: one cycle of the steps
            assert self.rate.pattern is not None
            return build_pattern_rate(self.rate.pattern, 0.0).period
        return None

    def _time_after_last(
        self,
        k: int,
        rate_times: Iterator[float] | None,
        speed_times: Iterator[tuple[float, Event]] | None,
    ) -> float:
        if self.rate.rate is not None:
            return k / self.rate.rate
        if self.rate.pattern is not None and self.rate.pattern.shape != "steps":
            return self._pattern_duration
        if rate_times is not None:
            nxt = next(rate_times, None)
            return nxt if nxt is not None else self.expected_duration()
        assert speed_times is not None
        # The next event's time is one more event read: cheap, but avoid it at pass ends.
        if k % self.info.selected == 0:
            return (k // self.info.selected) * self._period
        item = next(speed_times, None)
        return item[0] if item is not None else self.expected_duration()

    def _speed_times(self, stream: Iterator[Event]) -> Iterator[tuple[float, Event]]:
        assert self.rate.speed is not None
        assert self.info.first_timestamp is not None
        speed = self.rate.speed
        first = self.info.first_timestamp
        selected = self.info.selected
        passes = 0
        while True:
            previous = 0.0
            base = passes * self._period
            for _ in range(selected):
                event = next(stream)
                assert event.timestamp is not None
                previous = max(previous, (event.timestamp - first) / speed)
                yield base + previous, event
            passes += 1


def _cycle(events: Callable[[], Iterable[Event]]) -> Iterator[Event]:
    while True:
        produced = False
        for event in events():
            produced = True
            yield event
        if not produced:
            raise EmptyDatasetError("no usable event: every line was malformed or filtered out")
