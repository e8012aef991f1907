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
    result: list[Condition] = []
    found = False
    for existing in conditions:
        if existing.type != type:
            result.append(existing)
            continue
        found = True
        when = existing.last_transition_time if existing.status == status else rfc3339(now)
        result.append(
            Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                observed_generation=generation,
                last_transition_time=when,
            )
        )
    if not found:
        result.append(
            Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                observed_generation=generation,
                last_transition_time=rfc3339(now),
            )
        )
    return result


def get_condition(conditions: Iterable[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)


def is_true(conditions: Iterable[Condition], type: str) -> bool:
    found = get_condition(conditions, type)
    return found is not None and found.status == "True"
