"""A rollout's timeline: its decisions and measurements, newest first.

Four sources make it up, each a fact with a time: the Kubernetes Events the operator
recorded about the ModelDeployment (its decisions, in words), the SLO and trigger
measurements in ``status.analysis[].measurements``, the outcomes in ``status.history``,
and the shadow run's start and end. Events are read as the API returns them (plain
dicts); everything else comes from the typed status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from modelrollout.core.api.modeldeployment import ModelDeploymentStatus

MAX_ENTRIES = 200
"""The timeline shows this many entries, the newest."""


@dataclass(frozen=True, order=True)
class Entry:
    """One fact of the timeline. ``kind`` styles it (Normal, Warning, Successful, Failed,
    Promoted, ...); ``source`` says where it comes from (event, measurement, ...)."""

    at: str
    source: str
    kind: str
    title: str
    text: str


def event_entry(event: dict[str, Any]) -> Entry | None:
    """A core/v1 Event as an entry; None for one without a time."""
    at = str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )
    if not at:
        return None
    if len(at) > len("2006-01-02T15:04:05Z"):  # eventTime has microseconds
        at = at[:19] + "Z"
    count = int(event.get("count") or 1)
    text = str(event.get("message") or "")
    if count > 1:
        text += f" (x{count})"
    return Entry(
        at=at,
        source="event",
        kind=str(event.get("type") or "Normal"),
        title=str(event.get("reason") or ""),
        text=text,
    )


def status_entries(status: ModelDeploymentStatus) -> list[Entry]:
    """Measurements, outcomes and the shadow run, from the status."""
    found: list[Entry] = []
    for tally in status.analysis:
        for m in tally.measurements:
            value = "no value" if m.value is None else f"{m.value:g}"
            text = f"{tally.name} = {value}" + (f": {m.message}" if m.message else "")
            found.append(Entry(m.started_at, "measurement", m.phase, m.phase, text))
    for h in status.history:
        text = f"{h.version}" + (f": {h.reason}" if h.reason else "")
        found.append(Entry(h.finished_at, "history", h.outcome, h.outcome, text))
    shadow = status.shadow
    if shadow is not None:
        found.append(Entry(shadow.started_at, "shadow", "Normal", "ShadowStarted", shadow.run))
        if shadow.finished_at is not None:
            text = shadow.message or f"{shadow.pairs} pairs"
            found.append(Entry(shadow.finished_at, "shadow", shadow.outcome, shadow.outcome, text))
    return found


def timeline(status: ModelDeploymentStatus, events: Iterable[dict[str, Any]]) -> Sequence[Entry]:
    """Every entry, newest first, at most :data:`MAX_ENTRIES`."""
    entries = [entry for entry in map(event_entry, events) if entry is not None]
    entries += status_entries(status)
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:MAX_ENTRIES]
