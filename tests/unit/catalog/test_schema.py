"""The API shape inferred from examples: types, required keys, merging, limits."""

from __future__ import annotations

import json

import pytest

from modelrollout.core import schema


@pytest.mark.parametrize(
    ("documents", "expected"),
    [
        ([1], {"type": "integer"}),
        ([1, 2.5], {"type": "number"}),
        (["a", None], {"type": ["null", "string"]}),
        ([True], {"type": "boolean"}),
        ([[]], {"type": "array"}),
        ([[1, 2], [3.5]], {"type": "array", "items": {"type": "number"}}),
        (
            [{"a": 1, "b": "x"}, {"a": 2}],
            {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
                "required": ["a"],
            },
        ),
        (
            [{"instances": [[0.1, 0.2]]}, {"instances": [[1, 2]]}],
            {
                "type": "object",
                "properties": {
                    "instances": {
                        "type": "array",
                        "items": {"type": "array", "items": {"type": "number"}},
                    }
                },
                "required": ["instances"],
            },
        ),
        (
            [{"a": 1}, None],
            {
                "type": ["null", "object"],
                "properties": {"a": {"type": "integer"}},
                "required": ["a"],
            },
        ),
    ],
)
def test_inferred_schema(documents: list[object], expected: dict[str, object]) -> None:
    assert schema.infer_all(documents) == expected


def test_merging_two_halves_equals_inferring_all() -> None:
    docs = [{"x": i, "tags": ["a"] * (i % 2), "opt": 1} if i % 3 else {"x": 0.5} for i in range(9)]
    whole = schema.infer_all(docs)
    left, right = schema.infer_all(docs[:4]), schema.infer_all(docs[4:])
    assert left is not None
    assert right is not None
    assert schema.merge(left, right) == whole
    assert whole is not None
    assert whole["required"] == ["x"]


def test_wide_objects_are_cut_and_the_rest_counted() -> None:
    doc = {f"k{i:03d}": i for i in range(schema.MAX_PROPERTIES + 6)}
    out = schema.infer(doc)
    assert len(out["properties"]) == schema.MAX_PROPERTIES
    assert out["x-omittedProperties"] == 6


def test_deep_values_stop_at_the_depth_limit() -> None:
    doc: object = 1
    for _ in range(schema.MAX_DEPTH + 3):
        doc = {"d": doc}
    text = json.dumps(schema.infer(doc))
    assert text.count('"properties"') == schema.MAX_DEPTH


def test_sampler_counts_non_json_bodies_but_learns_nothing_from_them() -> None:
    sampler = schema.Sampler(limit=3)
    sampler.add(b"not json")
    sampler.add(b'{"a": 1}')
    assert sampler.wanted
    sampler.add(b'{"a": 2, "b": true}')
    assert not sampler.wanted
    sampler.add(b'{"c": 3}')  # past the limit: ignored
    assert sampler.count == 3
    assert sampler.schema == {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}},
        "required": ["a"],
    }


def test_describe_marks_optional_keys() -> None:
    out = schema.describe(schema.infer_all([{"a": [1]}, {"a": [2], "b": "x"}]) or {})
    assert out == ["object", "  a: array", "    []: integer", "  b?: string"]


def test_sampler_learns_from_bodies_added_after_the_schema_was_read() -> None:
    sampler = schema.Sampler(limit=5)
    sampler.add(b'{"a": 1}')
    assert sampler.schema == {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
    }
    sampler.add(b'{"a": 1.5}')
    assert sampler.schema == {
        "type": "object",
        "properties": {"a": {"type": "number"}},
        "required": ["a"],
    }
