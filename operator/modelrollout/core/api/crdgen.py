"""Turn the pydantic API models into CustomResourceDefinitions.

The models are the single source of truth for the API. Pydantic's JSON Schema is close to
what the apiserver wants, but a *structural* schema differs in a few ways, handled here:

* no ``$ref``: every definition is inlined;
* no ``anyOf`` for optionals: ``X | None`` becomes just ``X`` (absence means None);
* every node has a ``type``; ``Literal`` becomes ``type: string`` plus ``enum``;
* no ``title``; defaults of ``None`` are dropped, and so are object defaults, so that the
  apiserver never invents a sub-object the user did not write;
* ``x-kubernetes-*`` keys given with ``json_schema_extra`` pass through untouched, which is
  how CEL rules, list types and preserved fields reach the CRD.

The generator is deterministic, so ``make crds`` rewrites identical files and a test can
compare the committed YAML with a fresh rendering.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

_KEEP = {
    "type",
    "description",
    "properties",
    "required",
    "items",
    "enum",
    "default",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "additionalProperties",
    "nullable",
}


class SchemaError(ValueError):
    """The models cannot be expressed as a structural schema."""


def _resolve(node: Any, defs: Mapping[str, Any], path: str) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs, path) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        target = copy.deepcopy(defs[name])
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        target.update(siblings)
        return _resolve(target, defs, path)
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = _resolve(node["allOf"][0], defs, path)
        merged = {**inner, **{k: v for k, v in node.items() if k != "allOf"}}
        return _resolve(merged, defs, path)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o != {"type": "null"}]
        if len(options) != 1:
            raise SchemaError(f"{path}: unions are not allowed in a structural schema")
        merged = {**_resolve(options[0], defs, path)}
        for key, value in node.items():
            if key != "anyOf":
                merged[key] = value
        return _resolve(merged, defs, path)
    return {key: _resolve(value, defs, f"{path}.{key}") for key, value in node.items()}


def _clean(node: dict[str, Any], path: str) -> dict[str, Any]:
    if "const" in node:
        node = {**node, "enum": [node["const"]]}
        del node["const"]
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in _KEEP:
            out[key] = value
    if "enum" in out and "type" not in out:
        kinds = {type(v) for v in out["enum"]}
        if kinds == {str}:
            out["type"] = "string"
        else:
            raise SchemaError(f"{path}: enum values must be strings")
    for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        # JSON Schema 2020 writes the bound in exclusiveMinimum; OpenAPI v3.0 (the CRD
        # dialect) wants the bound in minimum and exclusiveMinimum as a flag.
        if exclusive in out and not isinstance(out[exclusive], bool):
            out[inclusive] = out[exclusive]
            out[exclusive] = True
    if out.get("default", 0) is None or isinstance(out.get("default"), dict):
        out.pop("default")
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("type", "object")
        return out
    if "type" not in out:
        raise SchemaError(f"{path}: no type (is it typed Any?)")
    if "properties" in out:
        out["properties"] = {
            name: _clean(child, f"{path}.{name}") for name, child in out["properties"].items()
        }
        for name, child in out["properties"].items():
            if "description" not in child:
                raise SchemaError(f"{path}.{name}: every field needs a description")
    if isinstance(out.get("items"), dict):
        out["items"] = _clean(out["items"], f"{path}[]")
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _clean(out["additionalProperties"], f"{path}{{}}")
    elif isinstance(out.get("additionalProperties"), bool):
        # Structural schemas forbid unknown fields by pruning; the key itself is not allowed
        # next to properties.
        out.pop("additionalProperties")
    if out.get("type") == "array" and "items" not in out:
        raise SchemaError(f"{path}: arrays need typed items")
    if "required" in out:
        out["required"] = sorted(out["required"])
    return out


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model, for ``openAPIV3Schema``."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    resolved = _resolve(raw, defs, model.__name__)
    return _clean(resolved, model.__name__)


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0

    def render(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class CrdInfo:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    model: type[BaseModel]
    columns: tuple[PrinterColumn, ...] = ()
    categories: tuple[str, ...] = ("modelrollout",)
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def file_name(self) -> str:
        return f"{self.group}_{self.plural}.yaml"


def render_crd(info: CrdInfo) -> dict[str, Any]:
    """The whole CustomResourceDefinition object for one kind."""
    schema = structural_schema(info.model)
    props = schema["properties"]
    # apiVersion, kind and metadata are the apiserver's; keep only their plain shape.
    props["apiVersion"] = {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation "
        "of an object.",
    }
    props["kind"] = {
        "type": "string",
        "description": "Kind is a string value representing the REST resource this "
        "object represents.",
    }
    props["metadata"] = {"type": "object"}
    schema["required"] = sorted(set(schema.get("required", [])) - {"apiVersion", "kind"})
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.name,
            "labels": {"app.kubernetes.io/part-of": "modelrollout", **info.extra_labels},
        },
        "spec": {
            "group": info.group,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": list(info.categories),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": info.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [c.render() for c in info.columns],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }
