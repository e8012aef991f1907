"""The committed CRDs, the chart's copy and the API reference match the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field

from modelrollout.cli.crds import render_files
from modelrollout.core.api import catalog, docgen
from modelrollout.core.api.base import ApiModel
from modelrollout.core.api.crdgen import SchemaError, structural_schema
from modelrollout.core.api.modeldeployment import ModelDeployment
from modelrollout.core.api.replaytest import ReplayTest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("directory", ["crds", "charts/modelrollout/files/crds"])
def test_committed_crds_match_the_models(directory: str):
    files = render_files()
    committed = {p.name: p.read_text() for p in (ROOT / directory).glob("*.yaml")}
    assert set(committed) == set(files), "run `make crds`"
    for name, text in files.items():
        assert committed[name] == text, f"{directory}/{name} is stale: run `make crds`"


def test_api_reference_matches_the_models():
    assert (ROOT / "docs" / "api.md").read_text() == docgen.render(catalog.ALL)


def _walk(node: dict[str, Any], path: str) -> list[str]:
    problems = []
    for name, child in (node.get("properties") or {}).items():
        if not child.get("description"):
            problems.append(f"{path}.{name}")
        problems += _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += _walk(node["items"], f"{path}[]")
    return problems


@pytest.mark.parametrize("info", catalog.ALL, ids=lambda i: i.kind)
def test_every_field_is_described_and_structural(info):
    crd = yaml.safe_load(render_files()[info.file_name].split("\n", 1)[1])
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for section in ("spec", "status"):
        assert _walk(schema["properties"][section], section) == []
    text = yaml.safe_dump(schema)
    for forbidden in ("$ref", "anyOf", "allOf", "title:"):
        assert forbidden not in text
    assert version["subresources"] == {"status": {}}
    if info is catalog.MODEL_VERSION:  # written whole by the operator, no handler's bookkeeping
        assert "kopf" not in schema["properties"]["status"]["properties"]
    else:
        assert schema["properties"]["status"]["properties"]["kopf"][
            "x-kubernetes-preserve-unknown-fields"
        ]


def test_generator_rejects_undescribed_fields_and_unions():
    class Undescribed(ApiModel):
        name: str

    class Union(ApiModel):
        value: int | str = Field(description="either")

    with pytest.raises(SchemaError, match="needs a description"):
        structural_schema(
            type(
                "Wrap",
                (ApiModel,),
                {
                    "__annotations__": {"inner": Undescribed},
                    "inner": Field(description="x"),
                },
            )
        )
    with pytest.raises(SchemaError, match="unions are not allowed"):
        structural_schema(Union)


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_validate_against_the_models(path: Path):
    models = {"ModelDeployment": ModelDeployment, "ReplayTest": ReplayTest}
    for doc in yaml.safe_load_all(path.read_text()):
        if doc["kind"] in models:
            models[doc["kind"]].model_validate(doc)
