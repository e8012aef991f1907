"""Conditions with Kubernetes semantics.

``lastTransitionTime`` records when ``status`` last changed, not when the condition was
last written: rewriting a condition with the same status keeps the old time even when the
reason or message change. This is what ``kubectl wait --for=condition`` and every
dashboard expect, and it keeps a reconcile that changes nothing from producing a status
patch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from modelrollout.core.api.common import Condition, ConditionStatus
from modelrollout.core.clock import rfc3339


def set_condition(
    conditions: Sequence[Condition],
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """A new list with the condition of ``type`` set; other conditions are kept in order."""
    previous = get_condition(conditions, type)
    keep_time = previous is not None and previous.status == status
    updated = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=previous.last_transition_time
        if keep_time and previous
        else rfc3339(now),
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type else c for c in conditions]


def get_condition(conditions: Iterable[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)


def is_true(conditions: Iterable[Condition], type: str) -> bool:
    found = get_condition(conditions, type)
    return found is not None and found.status == "True"


EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class EventRecord:
    """An Event a decision asks for."""

    type: EventType
    reason: str
    message: str


@dataclass
class Recorder:
    """The conditions and Events one decision writes, for one generation at one instant.

    Both kinds' decisions record through it, so a condition is always set the same way
    (``lastTransitionTime`` kept while the status stays, ``observedGeneration`` set)."""

    conditions: list[Condition]
    generation: int | None
    now: datetime
    events: list[EventRecord] = field(default_factory=list)

    def condition(self, type_: str, ok: bool | None, reason: str, message: str) -> None:
        """Set a condition: True, False, or Unknown when ``ok`` is None."""
        status: ConditionStatus = "Unknown" if ok is None else ("True" if ok else "False")
        self.conditions = set_condition(
            self.conditions,
            type=type_,
            status=status,
            reason=reason,
            message=message,
            generation=self.generation,
            now=self.now,
        )

    def event(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append(EventRecord(type_, reason, message))

    def changed(self, type_: str, message: str) -> bool:
        """Whether the condition of ``type_`` says something else than ``message`` now."""
        current = get_condition(self.conditions, type_)
        return current is None or current.message != message
