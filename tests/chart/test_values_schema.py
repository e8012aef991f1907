"""values.schema.json is strict, matches values.yaml key for key, and helm enforces it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from chart.chart_support import CHART_DIR, Helm

SCHEMA: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text())
VALUES_TEXT = (CHART_DIR / "values.yaml").read_text()
VALUES: dict[str, Any] = yaml.safe_load(VALUES_TEXT)


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """`node` with a local `$ref` followed."""
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/definitions/"), ref
    return resolve(SCHEMA["definitions"][ref.removeprefix("#/definitions/")])


def schema_nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema with its location."""
    if isinstance(node, dict):
        if "type" in node or "$ref" in node or "anyOf" in node:
            yield path, node
        for key, child in node.items():
            yield from schema_nodes(child, f"{path}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from schema_nodes(child, f"{path}/{index}")


def test_every_object_schema_is_closed() -> None:
    objects = [(path, node) for path, node in schema_nodes(SCHEMA) if node.get("type") == "object"]
    assert len(objects) > 10
    for path, node in objects:
        assert "additionalProperties" in node, f"{path or '/'} accepts any key"
        if "properties" in node:
            assert node["additionalProperties"] is False, f"{path or '/'} accepts unknown keys"
        else:
            # A map whose keys are the user's (labels, annotations): its values are typed.
            assert isinstance(node["additionalProperties"], dict), path


def test_enums() -> None:
    properties = SCHEMA["properties"]
    assert properties["rbac"]["properties"]["scope"]["enum"] == ["cluster", "namespace"]
    assert properties["logFormat"]["enum"] == ["json", "text"]
    assert properties["logLevel"]["enum"] == ["debug", "info", "warning"]
    assert properties["image"]["properties"]["pullPolicy"]["enum"] == [
        "Always",
        "IfNotPresent",
        "Never",
    ]
    assert properties["replay"]["properties"]["executor"]["enum"] == ["job"]


def key_mismatches(values: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    schema = resolve(schema)
    if not isinstance(values, dict) or "properties" not in schema:
        return
    in_values, in_schema = set(values), set(schema["properties"])
    for key in sorted(in_values - in_schema):
        yield f"{path}{key} is in values.yaml but not in the schema"
    # An empty map in values.yaml (affinity: {}) need not spell out what it may hold.
    if values:
        for key in sorted(in_schema - in_values):
            yield f"{path}{key} is in the schema but not in values.yaml"
    for key in sorted(in_values & in_schema):
        yield from key_mismatches(values[key], schema["properties"][key], f"{path}{key}.")


def test_values_and_schema_have_the_same_keys() -> None:
    assert list(key_mismatches(VALUES, SCHEMA, "")) == []


def leaf_key_lines() -> Iterator[tuple[int, list[int]]]:
    """(line index, indices of the key lines it is nested in) of every values.yaml key whose
    value is not a block of further keys."""
    lines = VALUES_TEXT.splitlines()
    key = re.compile(r"^(\s*)([A-Za-z][\w.-]*):(.*)$")
    parents: list[tuple[int, int]] = []  # (indent, line index)
    for index, line in enumerate(lines):
        match = key.match(line)
        if not match:
            continue
        indent = len(match.group(1))
        while parents and parents[-1][0] >= indent:
            parents.pop()
        following = next(
            (n for n in lines[index + 1 :] if n.strip() and not n.lstrip().startswith("#")), ""
        )
        following_indent = len(following) - len(following.lstrip())
        is_block = match.group(3).strip() == "" and following_indent > indent
        if not is_block or not key.match(following):
            yield index, [p for _, p in parents]
        parents.append((indent, index))


def test_every_values_key_is_explained() -> None:
    lines = VALUES_TEXT.splitlines()

    def commented(index: int) -> bool:
        return index > 0 and lines[index - 1].lstrip().startswith("#")

    unexplained = [
        lines[index].strip()
        for index, parents in leaf_key_lines()
        if not commented(index) and not any(commented(p) for p in parents)
    ]
    assert unexplained == []


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"replicas": 2}, "replicas"),
        ({"image": {"digest": "sha256:0"}}, "digest"),
        ({"serviceMonitor": {"enabled": True, "intervall": "1m"}}, "intervall"),
    ],
    ids=["top-level", "nested", "typo"],
)
def test_schema_rejects_unknown_keys(helm: Helm, values: dict[str, Any], named: str) -> None:
    error = helm.template_error(values)
    assert named in error
    assert "additional properties" in error.lower() or "additionalproperties" in error.lower()


@pytest.mark.parametrize(
    ("values", "location", "allowed"),
    [
        ({"rbac": {"scope": "everywhere"}}, "/rbac/scope", "'cluster', 'namespace'"),
        ({"logFormat": "xml"}, "/logFormat", "'json', 'text'"),
        ({"logLevel": "verbose"}, "/logLevel", "'debug', 'info', 'warning'"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy", "'IfNotPresent'"),
        ({"replay": {"executor": "pod"}}, "/replay/executor", "'job'"),
    ],
    ids=["rbac.scope", "logFormat", "logLevel", "pullPolicy", "replay.executor"],
)
def test_schema_rejects_bad_enums(
    helm: Helm, values: dict[str, Any], location: str, allowed: str
) -> None:
    error = helm.template_error(values)
    assert f"at '{location}'" in error
    assert allowed in error


@pytest.mark.parametrize(
    "values",
    [
        {"watchNamespaces": ["Not_A_Namespace"]},
        {"metrics": {"service": {"port": 0}}},
        {"podLabels": {"team": 7}},
        {"imagePullSecrets": ["registry-credentials"]},
        {"resources": {"limits": {"memory": "lots"}}},
        {"grafana": {"dashboard": {"namespace": "Monitoring"}}},
        {"grafana": {"dashboard": {"labels": {"grafana_dashboard": 1}}}},
    ],
    ids=[
        "namespace-name",
        "port",
        "label-value",
        "pull-secret",
        "quantity",
        "dashboard-namespace",
        "dashboard-label",
    ],
)
def test_schema_rejects_bad_values(helm: Helm, values: dict[str, Any]) -> None:
    helm.template_error(values)
