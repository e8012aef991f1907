"""The shape of JSON documents, inferred from examples: what the catalog shows as a model's
API definition when none is declared.

The result is a small JSON Schema (draft 2020-12 keywords only: ``type``, ``properties``,
``required``, ``items``): the types seen at every path, with a key ``required`` when every
example object had it. Two schemas of the same documents merge into the schema of all of
them, so shards of a replay infer separately and merge exactly.

Limits keep a schema small enough for a status: at most ``MAX_PROPERTIES`` keys per object
(the rest are left out and counted in ``x-omittedProperties``) and ``MAX_DEPTH`` levels (deeper
values are described by their type only).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

MAX_PROPERTIES = 64
MAX_DEPTH = 6
SAMPLES = 100
"""Documents a replay looks at for each of the request and the response."""

JsonSchema = dict[str, Any]

_ORDER = ("null", "boolean", "integer", "number", "string", "array", "object")


def _type_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _types(schema: JsonSchema) -> list[str]:
    kind = schema.get("type")
    if kind is None:
        return []
    return [kind] if isinstance(kind, str) else list(kind)


def _with_types(schema: JsonSchema, kinds: set[str]) -> JsonSchema:
    # An integer seen beside a number is a number: JSON does not tell 1 from 1.0.
    if "number" in kinds:
        kinds.discard("integer")
    ordered = [k for k in _ORDER if k in kinds]
    schema["type"] = ordered[0] if len(ordered) == 1 else ordered
    return schema


def infer(value: object, depth: int = 0) -> JsonSchema:
    """The schema of one JSON value."""
    kind = _type_of(value)
    schema: JsonSchema = {"type": kind}
    if depth >= MAX_DEPTH:
        return schema
    if isinstance(value, dict):
        keys = list(value)[:MAX_PROPERTIES]
        schema["properties"] = {key: infer(value[key], depth + 1) for key in keys}
        schema["required"] = sorted(keys)
        if len(value) > MAX_PROPERTIES:
            schema["x-omittedProperties"] = len(value) - MAX_PROPERTIES
    elif isinstance(value, list) and value:
        items = infer(value[0], depth + 1)
        for item in value[1:]:
            items = merge(items, infer(item, depth + 1))
        schema["items"] = items
    return schema


def merge(a: JsonSchema, b: JsonSchema) -> JsonSchema:
    """The schema of the documents of ``a`` and of ``b``."""
    kinds = set(_types(a)) | set(_types(b))
    out: JsonSchema = {}
    if "properties" in a or "properties" in b:
        left, right = a.get("properties", {}), b.get("properties", {})
        props: dict[str, JsonSchema] = {}
        for key in list(left) + [k for k in right if k not in left]:
            if len(props) >= MAX_PROPERTIES:
                break
            if key in left and key in right:
                props[key] = merge(left[key], right[key])
            else:
                props[key] = dict(left.get(key) or right[key])
        out["properties"] = props
        # A key is required only if every object on both sides had it; a side that was
        # never an object does not weaken it.
        req_a = set(a.get("required", [])) if "object" in _types(a) else None
        req_b = set(b.get("required", [])) if "object" in _types(b) else None
        required = (
            req_a & req_b if req_a is not None and req_b is not None else (req_a or req_b or set())
        )
        out["required"] = sorted(k for k in required if k in props)
        omitted = max(a.get("x-omittedProperties", 0), b.get("x-omittedProperties", 0))
        omitted += max(0, len(left) + len([k for k in right if k not in left]) - len(props))
        if omitted:
            out["x-omittedProperties"] = omitted
    if "items" in a or "items" in b:
        if "items" in a and "items" in b:
            out["items"] = merge(a["items"], b["items"])
        else:
            out["items"] = dict(a.get("items") or b["items"])
    return _with_types(out, kinds) if kinds else out


def infer_all(values: Iterable[object]) -> JsonSchema | None:
    """The schema of every value; None for none."""
    schema: JsonSchema | None = None
    for value in values:
        one = infer(value)
        schema = one if schema is None else merge(schema, one)
    return schema


def parse_document(body: bytes) -> object | None:
    """A request or response body as JSON, or None when it is not JSON."""
    try:
        document: object = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return document


def describe(schema: JsonSchema, indent: int = 0, name: str = "") -> list[str]:
    """The schema as indented lines for people: ``name: type`` with required marks."""
    pad = "  " * indent
    kinds = "|".join(_types(schema)) or "any"
    lines = [f"{pad}{name + ': ' if name else ''}{kinds}"]
    required = set(schema.get("required", []))
    for key, sub in (schema.get("properties") or {}).items():
        mark = key if key in required else f"{key}?"
        lines += describe(sub, indent + 1, mark)
    if "items" in schema:
        lines += describe(schema["items"], indent + 1, "[]")
    return lines


class Sampler:
    """The schema of the first ``limit`` bodies it is given (bodies that are not JSON count
    as looked at but add nothing).

    Adding only keeps the body: parsing and inference wait until the schema is asked for,
    so that a sender can sample on its timed path at the cost of an append."""

    __slots__ = ("_bodies", "_inferred", "limit")

    def __init__(self, limit: int = SAMPLES) -> None:
        self.limit = limit
        self._bodies: list[bytes] = []
        self._inferred: tuple[int, JsonSchema | None] = (0, None)

    @property
    def count(self) -> int:
        return len(self._bodies)

    @property
    def wanted(self) -> bool:
        return len(self._bodies) < self.limit

    def add(self, body: bytes) -> None:
        if len(self._bodies) < self.limit:
            self._bodies.append(body)

    @property
    def schema(self) -> JsonSchema | None:
        seen, schema = self._inferred
        for body in self._bodies[seen:]:
            document = parse_document(body)
            if document is not None:
                one = infer(document)
                schema = one if schema is None else merge(schema, one)
        self._inferred = (len(self._bodies), schema)
        return schema
