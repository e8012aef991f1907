"""Render the API reference (docs/api.md) from the same schemas as the CRDs.

The reference lists every field with its type, default, bounds and description, so it
says exactly what ``kubectl explain`` says, and the CEL rules of each object in words.
"""

from __future__ import annotations

from typing import Any

from modelrollout.core.api.crdgen import CrdInfo, render_crd

INTRO = """# API reference

Generated from the API models by `make crds`; it says what `kubectl explain` says.
Both kinds are in the group `modelrollout.io`, version `v1alpha1`, and are namespaced.
Durations are written like `30s`, `10m`, `1h30m`, `250ms`, or plain seconds (`45`).
"""


def _type(node: dict[str, Any]) -> str:
    kind = str(node.get("type", "object"))
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return "object (kept whole)"
    if kind == "array":
        return f"[]{_type(node.get('items', {}))}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{_type(node['additionalProperties'])}"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    return kind


def _limits(node: dict[str, Any]) -> str:
    parts = []
    low = ">" if node.get("exclusiveMinimum") else "≥"
    high = "<" if node.get("exclusiveMaximum") else "≤"
    for key, label in (
        ("minimum", low),
        ("maximum", high),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
    ):
        if key in node and not isinstance(node[key], bool):
            parts.append(f"{label} {node[key]}")
    if "default" in node:
        parts.append(f"default `{node['default']}`")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _walk(
    node: dict[str, Any],
    path: str,
    rows: list[list[str]],
    rules: list[tuple[str, str]],
    required: bool,
) -> None:
    for rule in node.get("x-kubernetes-validations", []):
        rules.append((path, rule["message"]))
    if path:
        rows.append(
            [
                f"`{path}`" + (" *(required)*" if required else ""),
                _type(node),
                _cell(_limits(node)),
                _cell(str(node.get("description", ""))),
            ]
        )
    target = node.get("items", node) if node.get("type") == "array" else node
    needed = set(target.get("required", []))
    suffix = "[]" if node.get("type") == "array" else ""
    for name, child in (target.get("properties") or {}).items():
        _walk(child, f"{path}{suffix}.{name}" if path else name, rows, rules, name in needed)


def render_kind(info: CrdInfo) -> str:
    crd = render_crd(info)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    names = crd["spec"]["names"]
    lines = [
        f"## {info.kind}",
        "",
        str(schema.get("description", "")),
        "",
        f"Short names: {', '.join(f'`{n}`' for n in names['shortNames'])}.",
        "",
    ]
    for section in ("spec", "status"):
        rows: list[list[str]] = []
        rules: list[tuple[str, str]] = []
        _walk(schema["properties"][section], section, rows, rules, True)
        lines += [
            f"### {info.kind} {section}",
            "",
            "| field | type | limits | description |",
            "|---|---|---|---|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
        if rules:
            lines += [f"Rules checked by the apiserver on `{section}`:", ""]
            lines += [f"- `{path}`: {message}" for path, message in rules]
            lines.append("")
    return "\n".join(lines)


def render(infos: tuple[CrdInfo, ...]) -> str:
    return INTRO + "\n" + "\n".join(render_kind(info) for info in infos)
