"""What both kinds' reconciles share: the shape of a reconcile, and its common steps.

Each reconcile reads its object, validates it, resolves its references, runs a pure
``decide``, carries out the actions and writes the status once. The shared steps are here:
:func:`mark_invalid` (a body the models refuse; what they can read of a body is
:func:`modelrollout.core.api.base.readable`), :func:`find_missing` (references to
ConfigMaps and Secrets), :func:`status_payload` (the one status write).

A reconcile ends in one of three results:

* :class:`Done`: nothing to do until something changes; the object is looked at again
  after the resync period, unless ``resync`` is False (an invalid object waits for an edit);
* :class:`Requeue`: run again after ``after`` seconds (a bake step ends, a Job is polled);
* :class:`Gone`: the object is deleted; the scheduler forgets it, and events of the objects
  it owned (which the garbage collector deletes next) do not bring it back.

A body that the API models refuse (the CRDs in the cluster are older or newer than the
operator, say) is not retried in a loop: it gets an ``Invalid`` condition that names the
field, one Warning Event, and no reconcile until the object changes. Errors of the API
server are mapped onto temporary and permanent ones in :mod:`modelrollout.services.kube`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from modelrollout.core import reasons
from modelrollout.core.api.common import Condition
from modelrollout.core.clock import utcnow
from modelrollout.core.conditions import EventRecord, get_condition, set_condition
from modelrollout.core.references import Reference
from modelrollout.services.kube import Kube


@dataclass(frozen=True)
class Done:
    resync: bool = True


@dataclass(frozen=True)
class Requeue:
    after: float


@dataclass(frozen=True)
class Gone:
    pass


Result = Done | Requeue | Gone


def after(seconds: float | None) -> Result:
    """`Requeue` after `seconds`, or `Done` when no time is set."""
    return Done() if seconds is None else Requeue(seconds)


def describe(error: ValidationError) -> str:
    """A validation error as one line naming each field: ``spec.stages.baking: ...``."""
    parts = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "the object"
        parts.append(f"{path}: {item['msg']}")
    return "; ".join(parts)


def mark_invalid(
    kube: Kube, plural: str, raw: dict[str, Any], message: str, now: datetime
) -> Result:
    """Record that the object cannot be read: an Invalid condition and one Warning Event,
    once per generation; then wait for the object to change."""
    meta = raw["metadata"]
    generation = int(meta.get("generation") or 1)
    status = raw.get("status") or {}
    conditions = []
    for item in status.get("conditions") or []:
        try:
            conditions.append(Condition.model_validate(item))
        except ValidationError:
            continue  # a condition this version cannot read is replaced below
    current = get_condition(conditions, reasons.INVALID)
    unchanged = (
        current is not None
        and current.status == "True"
        and current.message == message
        and status.get("observedGeneration") == generation
    )
    if not unchanged:
        conditions = set_condition(
            conditions,
            type=reasons.INVALID,
            status="True",
            reason=reasons.INVALID_SPEC,
            message=message,
            generation=generation,
            now=now,
        )
        patch = {
            "observedGeneration": generation,
            "conditions": [c.model_dump(by_alias=True, mode="json") for c in conditions],
        }
        kube.patch_status(plural, meta["namespace"], meta["name"], patch)
        kube.event(raw, type_="Warning", reason=reasons.INVALID_SPEC, message=message, now=now)
    return Done(resync=False)


def find_missing(kube: Kube, namespace: str, refs: list[Reference]) -> list[Reference]:
    """The references whose object (or key) does not exist."""
    missing: list[Reference] = []
    cache: dict[tuple[str, str], dict[str, Any] | None] = {}
    for ref in refs:
        key = (ref.kind, ref.name)
        if key not in cache:
            getter = kube.get_config_map if ref.kind == "ConfigMap" else kube.get_secret
            cache[key] = getter(namespace, ref.name)
        obj = cache[key]
        if obj is None or (
            ref.key is not None
            and ref.key not in (obj.get("data") or {})
            and ref.key not in (obj.get("binaryData") or {})
        ):
            missing.append(ref)
    return missing


def conclude(
    kube: Kube,
    plural: str,
    raw: dict[str, Any],
    status: BaseModel,
    events: Sequence[EventRecord],
    requeue_after: float | None,
    user_fields: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> Result:
    """The end of every reconcile: record the decision's Events, write the status once (not
    at all when nothing changed) and say when to look again."""
    stamp = now or utcnow()
    for event in events:
        kube.event(raw, type_=event.type, reason=event.reason, message=event.message, now=stamp)
    patch = status_payload(status, raw.get("status"), user_fields)
    if patch is not None:
        meta = raw["metadata"]
        kube.patch_status(plural, meta["namespace"], meta["name"], patch)
    return after(requeue_after)


def status_payload(
    status: BaseModel, old: dict[str, Any] | None, user_fields: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The merge patch for a status, or None when nothing changed.

    Keys the model knows but leaves unset are sent as null so they are removed; the
    framework's own ``kopf`` stanza is never touched.
    """
    new = status.model_dump(by_alias=True, mode="json", exclude={"kopf"})
    current = {k: v for k, v in (old or {}).items() if k != "kopf"}
    # Fields that kubectl modelrollout writes (`user_fields`, with their defaults) are sent
    # only when the decision changed them, so a command given meanwhile is not overwritten;
    # one the decision left as it was does not count as a change either.
    for key, default in (user_fields or {}).items():
        if new.get(key) == current.get(key, default):
            new.pop(key, None)
            current.pop(key, None)
    # The stored status has no nulls (a merge patch null removes the field), at any depth.
    if _without_nulls(new) == current:
        return None
    return new


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
