"""Rate control: when each request is meant to leave.

A replay is an *open-loop* load test: requests are sent on a schedule fixed in advance,
whatever the target's response times. A closed loop (send the next request when the
previous one returns) slows down exactly when the target does and so hides the latency a
real client population would see. Here every send ``k`` gets an intended time ``t_k``
computed from the rate specification alone; the sender measures latency from ``t_k``.

Modes (exactly one):

``rate``
    Constant: ``t_k = k / rate``.
``speed``
    The recorded pace: event ``j`` is sent at ``(timestamp_j - timestamp_0) / speed`` in
    file order (``speed: 10`` is ten times faster). See :mod:`.plan` for looping.
``pattern``
    A time-varying rate ``r(t)``; the cumulative count ``L(t) = integral of r`` is
    piecewise quadratic and ``t_k`` solves ``L(t_k) = k`` in closed form, so the
    schedule is exact and needs no random numbers:

    * ``ramp``: linear from ``startRate`` to ``endRate`` over the run;
    * ``steps``: a list of (rate, duration) held in turn, repeated if the run is longer;
    * ``daily``: a 24-hour shape compressed into the run length: hour ``h`` of the day is
      reached at ``t = (h - startHour) / 24 * duration``; the rate moves linearly between
      hourly points from ``trough`` to ``peak``. The default shape is a cosine with its
      minimum at 04:00 and its maximum at 16:00; ``hourly`` gives 24 custom relative
      values (scaled so that their minimum maps to ``trough`` and maximum to ``peak``).

The CLI spells patterns as text (:func:`parse_pattern`)::

    ramp:FROM:TO                     ramp:10:200
    steps:RATE@DURATION,...          steps:50@30s,100@1m,20@30s
    daily:peak=P,trough=T[,start=H][,shape=v0/v1/.../v23]
                                     daily:peak=200,trough=20,start=6
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from modelrollout.core.api.base import (
    DURATION_PATTERN,
    ApiModel,
    cel,
    parse_duration,
    validations,
)

RateMode = Literal["constant", "speed", "ramp", "steps", "daily"]
PatternShape = Literal["ramp", "steps", "daily"]

PATTERN_SYNTAX = (
    "use ramp:FROM:TO (e.g. ramp:10:200), steps:RATE@DURATION,... (e.g. steps:50@30s,100@30s) "
    "or daily:peak=P,trough=T[,start=HOUR][,shape=v0/v1/.../v23]"
)


class RateStep(ApiModel):
    """One step of a ``steps`` pattern."""

    rate: float = Field(ge=0, description="Requests per second during this step (0 pauses).")
    duration: str = Field(
        pattern=DURATION_PATTERN, description="How long the step lasts, e.g. 30s or 2m."
    )

    @property
    def seconds(self) -> float:
        return parse_duration(self.duration)


class RatePattern(ApiModel):
    """A time-varying request rate."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.shape != 'ramp' || (has(self.startRate) && has(self.endRate))",
                "a ramp needs startRate and endRate",
            ),
            cel(
                "self.shape != 'steps' || (has(self.steps) && size(self.steps) > 0)",
                "a steps pattern needs at least one step",
            ),
            cel(
                "self.shape != 'daily' || (has(self.peak) && has(self.trough))",
                "a daily pattern needs peak and trough",
            ),
        )
    )

    shape: PatternShape = Field(
        description="ramp (linear change), steps (held rates in turn) or daily (24 h shape)."
    )
    start_rate: float | None = Field(
        default=None, ge=0, description="ramp: requests per second at the start of the run."
    )
    end_rate: float | None = Field(
        default=None, ge=0, description="ramp: requests per second at the end of the run."
    )
    steps: list[RateStep] | None = Field(
        default=None,
        description="steps: rates held in turn; the list repeats if the run is longer.",
    )
    peak: float | None = Field(
        default=None, ge=0, description="daily: the highest rate of the day (requests/s)."
    )
    trough: float | None = Field(
        default=None, ge=0, description="daily: the lowest rate of the day (requests/s)."
    )
    start_hour: float = Field(
        default=0, ge=0, lt=24, description="daily: the hour of the day at which the run starts."
    )
    hourly: list[float] | None = Field(
        default=None,
        min_length=24,
        max_length=24,
        description=(
            "daily: 24 relative values for hours 0..23 (any scale); the smallest maps to "
            "trough, the largest to peak. Default: a cosine, lowest at 04:00, highest at 16:00."
        ),
    )

    @model_validator(mode="after")
    def _complete(self) -> RatePattern:
        if self.shape == "ramp":
            if self.start_rate is None or self.end_rate is None:
                raise ValueError("a ramp needs startRate and endRate")
            if self.start_rate + self.end_rate <= 0:
                raise ValueError("a ramp needs a positive startRate or endRate")
        elif self.shape == "steps":
            if not self.steps:
                raise ValueError("a steps pattern needs at least one step")
            if sum(s.rate * s.seconds for s in self.steps) <= 0:
                raise ValueError("a steps pattern needs a step with a positive rate and duration")
        else:
            if self.peak is None or self.trough is None:
                raise ValueError("a daily pattern needs peak and trough")
            if self.trough > self.peak:
                raise ValueError("daily: trough must not exceed peak")
            if self.peak <= 0:
                raise ValueError("daily: peak must be positive")
        return self

    def to_spec(self) -> str:
        """The CLI text of this pattern (inverse of :func:`parse_pattern`)."""
        if self.shape == "ramp":
            return f"ramp:{_num(self.start_rate)}:{_num(self.end_rate)}"
        if self.shape == "steps":
            assert self.steps is not None
            return "steps:" + ",".join(f"{_num(s.rate)}@{s.duration}" for s in self.steps)
        text = f"daily:peak={_num(self.peak)},trough={_num(self.trough)}"
        if self.start_hour:
            text += f",start={_num(self.start_hour)}"
        if self.hourly is not None:
            text += ",shape=" + "/".join(_num(v) for v in self.hourly)
        return text


class RateSpec(ApiModel):
    """How fast events are replayed and for how long."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "[has(self.rate), has(self.speed), has(self.pattern)].filter(x, x).size() == 1",
                "set exactly one of rate, speed or pattern",
            ),
            cel(
                "!(has(self.duration) && has(self.count))",
                "set at most one of duration or count",
            ),
        )
    )

    rate: float | None = Field(
        default=None, gt=0, description="Constant rate in requests per second."
    )
    speed: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Replay at the recorded pace scaled by this factor (2 = twice as fast); needs "
            "event timestamps."
        ),
    )
    pattern: RatePattern | None = Field(
        default=None, description="A time-varying rate: ramp, steps or daily."
    )
    duration: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description=(
            "Run length (e.g. 5m). Events are looped if the dataset is exhausted first and "
            "left out if the time is up first. Mutually exclusive with count."
        ),
    )
    count: int | None = Field(
        default=None,
        ge=1,
        description="Number of requests to send instead of a duration (events loop if needed).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> RateSpec:
        chosen = [self.rate is not None, self.speed is not None, self.pattern is not None]
        if sum(chosen) != 1:
            raise ValueError("set exactly one of rate, speed or pattern")
        if self.duration is not None and self.count is not None:
            raise ValueError("set at most one of duration or count")
        if self.duration is not None and parse_duration(self.duration) <= 0:
            raise ValueError("duration must be positive")
        return self

    @property
    def mode(self) -> RateMode:
        if self.rate is not None:
            return "constant"
        if self.speed is not None:
            return "speed"
        assert self.pattern is not None
        return self.pattern.shape

    @property
    def duration_seconds(self) -> float | None:
        return None if self.duration is None else parse_duration(self.duration)

    def describe(self) -> str:
        """A short human description, e.g. ``100 req/s for 30s``."""
        if self.rate is not None:
            head = f"{_num(self.rate)} req/s"
        elif self.speed is not None:
            head = f"{_num(self.speed)}x recorded pace"
        else:
            assert self.pattern is not None
            head = self.pattern.to_spec()
        if self.duration is not None:
            return f"{head} for {self.duration}"
        if self.count is not None:
            return f"{head}, {self.count} requests"
        return head


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _positive_number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number; {PATTERN_SYNTAX}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} {text!r} must be a non-negative number")
    return value


def parse_pattern(spec: str) -> RatePattern:
    """Parse the CLI pattern syntax; raises :class:`ValueError` with a usage hint."""
    text = spec.strip()
    shape, sep, rest = text.partition(":")
    shape = shape.strip().lower()
    if not sep or not rest.strip():
        raise ValueError(f"pattern {spec!r} is incomplete; {PATTERN_SYNTAX}")
    try:
        if shape == "ramp":
            parts = rest.split(":")
            if len(parts) != 2:
                raise ValueError(f"pattern {spec!r}: a ramp is ramp:FROM:TO, e.g. ramp:10:200")
            return RatePattern(
                shape="ramp",
                start_rate=_positive_number(parts[0], "ramp start rate"),
                end_rate=_positive_number(parts[1], "ramp end rate"),
            )
        if shape == "steps":
            steps = []
            for item in rest.split(","):
                rate_text, at, duration = item.partition("@")
                if not at:
                    raise ValueError(
                        f"pattern {spec!r}: step {item!r} must be RATE@DURATION, e.g. 50@30s"
                    )
                seconds = parse_duration(duration)
                if seconds <= 0:
                    raise ValueError(f"pattern {spec!r}: step {item!r} has no duration")
                steps.append(
                    RateStep(
                        rate=_positive_number(rate_text, "step rate"), duration=duration.strip()
                    )
                )
            return RatePattern(shape="steps", steps=steps)
        if shape == "daily":
            options: dict[str, str] = {}
            for item in rest.split(","):
                key, eq, value = item.partition("=")
                key = key.strip().lower()
                if not eq or key not in {"peak", "trough", "start", "shape"}:
                    raise ValueError(
                        f"pattern {spec!r}: {item!r} is not peak=, trough=, start= or shape="
                    )
                options[key] = value.strip()
            if "peak" not in options or "trough" not in options:
                raise ValueError(f"pattern {spec!r}: daily needs peak= and trough=")
            hourly = None
            if "shape" in options:
                hourly = [_positive_number(v, "shape value") for v in options["shape"].split("/")]
                if len(hourly) != 24:
                    raise ValueError(
                        f"pattern {spec!r}: shape needs 24 values separated by /, got {len(hourly)}"
                    )
            return RatePattern(
                shape="daily",
                peak=_positive_number(options["peak"], "peak"),
                trough=_positive_number(options["trough"], "trough"),
                start_hour=_positive_number(options.get("start", "0"), "start hour"),
                hourly=hourly,
            )
    except ValidationError as error:
        message = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ValueError(f"pattern {spec!r}: {message}") from None
    except ValueError as error:
        message = str(error)
        if not message.startswith("pattern "):
            message = f"pattern {spec!r}: {message}"
        raise ValueError(message) from None
    raise ValueError(f"pattern {spec!r}: unknown shape {shape!r}; {PATTERN_SYNTAX}")


# -- schedules ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """Rate moving linearly from ``r0`` to ``r1`` over ``[t0, t1)``; ``n0`` sends before it."""

    t0: float
    t1: float
    r0: float
    r1: float
    n0: float

    @property
    def count(self) -> float:
        return (self.t1 - self.t0) * (self.r0 + self.r1) / 2.0

    def time_of(self, n: float) -> float:
        """The time at which the cumulative count reaches ``n`` (``n0 <= n <= n0+count``)."""
        delta = n - self.n0
        if delta <= 0:
            return self.t0
        width = self.t1 - self.t0
        slope = (self.r1 - self.r0) / width if width > 0 else 0.0
        if slope == 0.0:
            return self.t0 + delta / self.r0
        root = math.sqrt(max(self.r0 * self.r0 + 2.0 * slope * delta, 0.0))
        denominator = self.r0 + root
        if denominator <= 0:  # only at the very end of a ramp down to zero
            return self.t1
        return min(self.t0 + 2.0 * delta / denominator, self.t1)


class PiecewiseRate:
    """A piecewise linear rate over ``[0, period)``, optionally repeated forever."""

    def __init__(self, knots: Sequence[tuple[float, float, float]], *, cyclic: bool) -> None:
        """``knots`` are ``(duration, rate_at_start, rate_at_end)`` pieces in order."""
        segments: list[Segment] = []
        t = 0.0
        n = 0.0
        for width, r0, r1 in knots:
            if width <= 0:
                continue
            segment = Segment(t, t + width, r0, r1, n)
            segments.append(segment)
            t += width
            n += segment.count
        if not segments or n <= 0:
            raise ValueError("the rate pattern never sends a request")
        self.segments = segments
        self.period = t
        self.count_per_period = n
        self.cyclic = cyclic

    @property
    def mean_rate(self) -> float:
        return self.count_per_period / self.period

    def times(self) -> Iterator[float]:
        """Intended send times ``t_k`` solving ``L(t_k) = k`` for ``k = 0, 1, 2, ...``."""
        cycle = 0
        k = 0
        while True:
            base_t = cycle * self.period
            base_n = cycle * self.count_per_period
            for segment in self.segments:
                # A count within rounding error of the end belongs to the next segment (or
                # to no segment at all at the end of a pattern).
                end = segment.n0 + segment.count - 1e-9 * max(1.0, self.count_per_period)
                while k - base_n < end:
                    yield base_t + segment.time_of(k - base_n)
                    k += 1
            if not self.cyclic:
                return
            cycle += 1


def _daily_knots(pattern: RatePattern, duration: float) -> list[tuple[float, float, float]]:
    assert pattern.peak is not None
    assert pattern.trough is not None
    if pattern.hourly is not None:
        shape = list(pattern.hourly)
    else:
        shape = [0.5 - 0.5 * math.cos(2 * math.pi * (h - 4) / 24) for h in range(24)]
    low, high = min(shape), max(shape)
    span = high - low

    def rate_at_hour(hour: float) -> float:
        h = hour % 24
        i = math.floor(h)
        frac = h - i
        v = shape[i % 24] * (1 - frac) + shape[(i + 1) % 24] * frac
        rel = (v - low) / span if span > 0 else 1.0
        return pattern.trough + (pattern.peak - pattern.trough) * rel  # type: ignore[operator]

    # Knots at every whole hour crossed during the run (24 hours in all).
    start = pattern.start_hour
    hours = [start] + [float(h) for h in range(math.floor(start) + 1, math.floor(start) + 25)]
    hours = [h for h in hours if h < start + 24] + [start + 24]
    knots = []
    for a, b in itertools.pairwise(hours):
        knots.append(((b - a) / 24 * duration, rate_at_hour(a), rate_at_hour(b)))
    return knots


def pattern_mean_rate(pattern: RatePattern) -> float:
    """Average rate of a pattern over one run (ramp, daily) or one cycle (steps)."""
    if pattern.shape == "ramp":
        assert pattern.start_rate is not None
        assert pattern.end_rate is not None
        return (pattern.start_rate + pattern.end_rate) / 2
    return build_pattern_rate(pattern, 1.0).mean_rate


def build_pattern_rate(pattern: RatePattern, duration: float) -> PiecewiseRate:
    """The piecewise rate of a pattern for a run of ``duration`` seconds.

    ``steps`` ignore ``duration`` (their own durations define one cycle, repeated).
    """
    if pattern.shape == "ramp":
        assert pattern.start_rate is not None
        assert pattern.end_rate is not None
        return PiecewiseRate([(duration, pattern.start_rate, pattern.end_rate)], cyclic=False)
    if pattern.shape == "steps":
        assert pattern.steps is not None
        return PiecewiseRate([(s.seconds, s.rate, s.rate) for s in pattern.steps], cyclic=True)
    return PiecewiseRate(_daily_knots(pattern, duration), cyclic=False)


def constant_times(rate: float) -> Iterator[float]:
    """``k / rate`` for ``k = 0, 1, 2, ...`` (computed, not accumulated: no drift)."""
    k = 0
    while True:
        yield k / rate
        k += 1
