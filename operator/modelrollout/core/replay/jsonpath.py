"""Where the prediction sits in a model's JSON response.

Model servers disagree on response shapes (KServe v1 ``{"predictions": [...]}``, v2
``{"outputs": [{"data": [...]}]}``, bespoke ``{"score": 0.7}``), so the prediction is
located by a small path expression instead of a fixed schema. Full JSONPath (filters,
wildcards, recursive descent) would be overkill and ambiguous for a single value; the
syntax accepted here is the unambiguous subset:

* an optional leading ``$`` or ``$.``;
* keys separated by dots: ``predictions.0.score``;
* bracketed indexes ``[0]`` (negative counts from the end: ``[-1]``) and quoted keys
  ``["key.with.dots"]``;
* a bare integer segment indexes a list, or is a key if the value is an object.

So ``predictions[0]``, ``$.predictions.0.score`` and ``outputs[0].data[1]`` all work. A path
is compiled once (:func:`compile_path`, errors name the position) and applied per
response (:func:`extract`).
"""

from __future__ import annotations

import re
from typing import Any

Step = str | int

_KEY = re.compile(r"[^.\[\]]+")
_INDEX = re.compile(r"\[\s*(-?[0-9]+)\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\]""")
_MISSING = object()


def compile_path(path: str) -> tuple[Step, ...]:
    """Compile a prediction path; raises :class:`ValueError` naming the bad position."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
        if text.startswith("."):
            text = text[1:]
    steps: list[Step] = []
    pos = 0
    expect_key = True
    while pos < len(text):
        char = text[pos]
        if char == "[":
            match = _INDEX.match(text, pos)
            if match is not None:
                steps.append(int(match.group(1)))
            else:
                match = _QUOTED.match(text, pos)
                if match is None:
                    raise ValueError(
                        f"prediction path {path!r}: bad bracket at position {pos}; "
                        'use [0] or ["key"]'
                    )
                raw = match.group(1) if match.group(1) is not None else match.group(2)
                steps.append(re.sub(r"\\(.)", r"\1", raw))
            pos = match.end()
            expect_key = False
        elif char == ".":
            if expect_key:
                raise ValueError(f"prediction path {path!r}: empty segment at position {pos}")
            pos += 1
            expect_key = True
        else:
            match = _KEY.match(text, pos)
            if match is None or not expect_key:
                raise ValueError(f"prediction path {path!r}: unexpected {char!r} at {pos}")
            key = match.group(0).strip()
            steps.append(int(key) if re.fullmatch(r"-?[0-9]+", key) else key)
            pos = match.end()
            expect_key = False
    if not steps:
        raise ValueError(f"prediction path {path!r} is empty")
    if expect_key and text:
        raise ValueError(f"prediction path {path!r} ends with a dot")
    return tuple(steps)


def extract(document: Any, steps: tuple[Step, ...]) -> tuple[bool, Any]:
    """Follow ``steps``; returns ``(found, value)``."""
    current = document
    for step in steps:
        if isinstance(current, dict):
            key = str(step)
            if key not in current:
                return False, None
            current = current[key]
        elif isinstance(current, list) and isinstance(step, int):
            if not -len(current) <= step < len(current):
                return False, None
            current = current[step]
        else:
            return False, None
    return True, current


def format_path(steps: tuple[Step, ...]) -> str:
    """The canonical text of a compiled path, e.g. ``predictions[0].score``."""
    parts: list[str] = []
    for step in steps:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _KEY.fullmatch(step) and not re.fullmatch(r"-?[0-9]+", step):
            parts.append(("." if parts else "") + step)
        else:
            escaped = step.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'["{escaped}"]')
    return "".join(parts)
