"""Conditions with Kubernetes semantics.

``lastTransitionTime`` records when ``status`` last changed, not when the condition was
last written: rewriting a condition with the same status keeps the old time even when the
reason or message change. This is what ``kubectl wait --for=condition`` and every
dashboard expect, and it keeps a reconcile that changes nothing from producing a status
patch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

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
