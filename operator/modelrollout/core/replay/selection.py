"""Choosing which recorded events take part in a replay, and accounting for every line.

Selection is a pure, deterministic function of the dataset and the :class:`EventSelection`:
a time window, attribute filters (all must match), a sampling fraction and a cap. Sampling
hashes the line number with the seed instead of drawing random numbers, so the same
selection on the same file picks the same events in every run and in every shard, which
is what makes shard results add up to a single run.

:func:`select_events` is a generator over ``(line_number, raw_line)`` pairs. It yields the
selected events and tallies everything else into a :class:`DatasetTally`: malformed lines
(with the first few reasons), well-formed events left out by the selection, and the time
span of the selected events (needed to replay at the original pace). The I/O layer feeds
it lines from a file; the pure core never opens anything.

Sharding is also accounted here: with ``shard_count`` N, shard I "owns" the dataset lines
whose number is I modulo N (for the malformed and filtered counts) and the selected
events whose ordinal is I modulo N (for the selected count). Each shard reads the whole
file, but the owned counts of all shards add up exactly to the single-run counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydantic import Field, field_validator

from modelrollout.core.api.base import ApiModel
from modelrollout.core.replay.events import Event, EventError, parse_event, parse_timestamp

MALFORMED_SAMPLES = 10
"""How many malformed lines are reported with their line number and reason."""

_MASK64 = (1 << 64) - 1


class EventSelection(ApiModel):
    """Which recorded events to replay."""

    since: str | None = Field(
        default=None,
        description=(
            "Only events at or after this time (RFC 3339, e.g. 2024-05-01T00:00:00Z, or "
            "epoch seconds). Events without a timestamp are then counted as malformed."
        ),
    )
    until: str | None = Field(
        default=None,
        description="Only events strictly before this time (RFC 3339 or epoch seconds).",
    )
    filters: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Attribute filters: an event is kept only if, for every key, its attributes hold "
            "exactly that value (e.g. region: eu-west-1)."
        ),
    )
    sample: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description=(
            "Keep this fraction of the events that pass the window and filters (0 < f <= 1). "
            "Deterministic: decided by hashing the line number with the seed."
        ),
    )
    seed: int = Field(default=0, ge=0, description="Seed of the deterministic sampling.")
    max_events: int | None = Field(
        default=None,
        ge=1,
        description="Keep at most this many events (the first ones, in file order).",
    )

    @field_validator("since", "until")
    @classmethod
    def _valid_time(cls, value: str | None) -> str | None:
        if value is not None:
            parse_timestamp(value)
        return value

    @property
    def since_seconds(self) -> float | None:
        return None if self.since is None else parse_timestamp(self.since)

    @property
    def until_seconds(self) -> float | None:
        return None if self.until is None else parse_timestamp(self.until)

    @property
    def needs_timestamps(self) -> bool:
        return self.since is not None or self.until is not None


def sample_key(seed: int, line: int) -> float:
    """A uniform number in [0, 1) derived from seed and line (splitmix64 finaliser)."""
    z = (seed * 0x9E3779B97F4A7C15 + line * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return (z >> 11) / float(1 << 53)


@dataclass(slots=True)
class MalformedSample:
    line: int
    reason: str


@dataclass(slots=True)
class DatasetTally:
    """What one pass over the dataset found; counts are this shard's owned share."""

    shard_index: int = 0
    shard_count: int = 1
    lines: int = 0
    selected_total: int = 0
    selected: int = 0
    filtered: int = 0
    malformed: int = 0
    malformed_samples: list[MalformedSample] = field(default_factory=list)
    first_timestamp: float | None = None
    last_timestamp: float | None = None

    def owns_line(self, line: int) -> bool:
        return line % self.shard_count == self.shard_index

    def add_malformed(self, line: int, reason: str) -> None:
        if self.owns_line(line):
            self.malformed += 1
            if len(self.malformed_samples) < MALFORMED_SAMPLES:
                self.malformed_samples.append(MalformedSample(line, reason))


@dataclass(slots=True)
class EventReader:
    """Settings for turning raw lines into events."""

    selection: EventSelection = field(default_factory=EventSelection)
    label_field: str = "label"
    require_timestamp: bool = False


def select_events(
    lines: Iterable[tuple[int, bytes | str]],
    reader: EventReader,
    tally: DatasetTally,
) -> Iterator[Event]:
    """Yield the selected events in file order, tallying malformed and filtered lines."""
    selection = reader.selection
    since = selection.since_seconds
    until = selection.until_seconds
    filters = selection.filters
    sample = selection.sample
    limit = selection.max_events
    need_ts = reader.require_timestamp or selection.needs_timestamps
    for number, raw in lines:
        if not raw.strip():
            continue
        if tally.owns_line(number):
            tally.lines += 1
        try:
            event = parse_event(
                raw, number, label_field=reader.label_field, require_timestamp=need_ts
            )
        except EventError as error:
            tally.add_malformed(number, error.reason)
            continue
        ts = event.timestamp
        keep = _matches(event, since, until, filters) and (
            sample is None or sample >= 1 or sample_key(selection.seed, number) < sample
        )
        if keep and limit is not None and tally.selected_total >= limit:
            keep = False
        if not keep:
            if tally.owns_line(number):
                tally.filtered += 1
            continue
        if tally.selected_total % tally.shard_count == tally.shard_index:
            tally.selected += 1
        tally.selected_total += 1
        if ts is not None:
            if tally.first_timestamp is None:
                tally.first_timestamp = ts
            if tally.last_timestamp is None or ts > tally.last_timestamp:
                tally.last_timestamp = ts
        yield event


def _matches(
    event: Event, since: float | None, until: float | None, filters: dict[str, str]
) -> bool:
    ts = event.timestamp
    if since is not None and ts is not None and ts < since:
        return False
    if until is not None and ts is not None and ts >= until:
        return False
    return all(event.attributes.get(k) == v for k, v in filters.items())
