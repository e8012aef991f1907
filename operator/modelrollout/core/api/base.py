"""Base class and helpers shared by every API model.

Every model mirrors a part of a CRD schema, so a few rules hold for all of them:

* field names are snake_case in Python and camelCase on the wire (``alias_generator``);
* unknown fields are rejected (``extra="forbid"``), because a typo in a manifest must
  surface as an error, never as a silently ignored setting;
* every field carries a description, because the CRD generator copies it into the
  schema and ``kubectl explain`` prints it. A test enforces this.

Cross-field rules that the apiserver can check are written as CEL expressions with
:func:`cel`; the CRD generator places them under ``x-kubernetes-validations``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from modelrollout.core import reasons


class ApiModel(BaseModel):
    """A part of a CRD schema, camelCase on the wire."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=False,
        validate_default=True,
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """Serialise as the apiserver expects: camelCase, without unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def readable(
    raw: dict[str, Any], status_model: type[BaseModel], *, drop_invalid: bool = True
) -> dict[str, Any]:
    """The object as the API models read it. The status keeps only the fields this version
    knows (one written by another version of the operator is still read), without kopf's
    stanza and, unless ``drop_invalid`` is False, without an earlier Invalid condition (to
    the operator, a body that is read is valid)."""
    body: dict[str, Any] = {
        k: raw[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in raw
    }
    status = raw.get("status") or {}
    known = {f.alias or n for n, f in status_model.model_fields.items()} - {"kopf"}
    kept = {k: v for k, v in status.items() if k in known}
    if drop_invalid and "conditions" in kept:
        kept["conditions"] = [
            c for c in kept["conditions"] or [] if c.get("type") != reasons.INVALID
        ]
    if kept:
        body["status"] = kept
    return body


def cel(
    rule: str, message: str, *, field_path: str | None = None, reason: str | None = None
) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry."""
    entry = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules, for a model or a field."""
    return {"x-kubernetes-validations": list(rules)}


DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h)?)+$"
"""Durations accept ``30s``, ``10m``, ``1h30m``, ``250ms`` or plain seconds (``45``)."""

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | float | int) -> float:
    """Parse a duration into seconds.

    ``30s``, ``10m``, ``1h30m``, ``250ms`` and plain numbers (seconds) are accepted.
    Anything else raises :class:`ValueError` naming the bad text.
    """
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"duration {text!r} is negative")
        return float(text)
    value = text.strip()
    if not value:
        raise ValueError("duration is empty")
    pos = 0
    total = 0.0
    while pos < len(value):
        match = _DURATION_PART.match(value, pos)
        if match is None:
            raise ValueError(
                f"duration {text!r} is not valid: use forms like 30s, 10m, 1h30m, 250ms or 45"
            )
        number, unit = match.groups()
        total += float(number) * _UNIT_SECONDS[unit]
        pos = match.end()
    return total
