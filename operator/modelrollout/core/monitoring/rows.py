"""From a dataset record to a flat row of feature values.

A profile reads the datasets replay reads (``docs/replay.md``): JSON Lines of events.
The features are the fields of the request: the ``payload`` object, or a ``body`` whose
content type is JSON. Nested objects and lists are flattened with dots,
``{"user": {"age": 41}, "instances": [[0.3, 1.2]]}`` giving ``user.age``,
``instances.0.0`` and ``instances.0.1``. Two more columns come from the event itself:

* ``@prediction``, the model's answer, found by a path in the event (default
  ``response.predictions[0]``: the recorded KServe v1 response ``{"predictions": [...]}``
  kept in a ``response`` field; any path replay's ``--prediction-path`` accepts);
* ``@label``, the ground truth (``--label-field``, default ``label``, dots reach inside),
  normalised as replay does (``true``, ``1`` and ``1.0`` are all ``"1"``).

A CSV file has a header line naming the columns; the prediction and the label are the
columns named by the same flags (default ``prediction`` and ``label``). An empty cell is
missing; a label cell reads as the JSON value it spells (``true``, ``1``, ``1.0`` are all
``"1"``), so a CSV baseline and an event window agree.

Errors raise :class:`RowError` with a reason naming the field, like the replay parser.
"""

from __future__ import annotations

import json
from typing import Any

from modelrollout.core.monitoring.profile import LABEL, PREDICTION, RESERVED_NAMES
from modelrollout.core.replay.events import normalize_label
from modelrollout.core.replay.jsonpath import Step, compile_path, extract

DEFAULT_PREDICTION_PATH = "response.predictions[0]"
DEFAULT_PREDICTION_COLUMN = "prediction"
DEFAULT_LABEL_FIELD = "label"

Row = dict[str, object]


class RowError(ValueError):
    """A record that cannot be profiled; ``reason`` names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def flatten(value: Any, prefix: str, out: Row) -> None:
    """Scalars of ``value`` into ``out``, named by their dotted paths under ``prefix``."""
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            flatten(item, f"{prefix}.{index}" if prefix else str(index), out)
    else:
        out[prefix] = value


def _is_json(content_type: object) -> bool:
    if not isinstance(content_type, str):
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class EventRows:
    """Turns event documents (parsed JSON lines) into rows."""

    def __init__(self, *, prediction_path: str | None, label_field: str | None) -> None:
        self.prediction_path = prediction_path
        self.label_field = label_field
        self._prediction: tuple[Step, ...] | None = (
            compile_path(prediction_path) if prediction_path else None
        )
        self._label: tuple[Step, ...] | None = compile_path(label_field) if label_field else None

    def row(self, document: Any) -> Row:
        if not isinstance(document, dict):
            raise RowError(f"expected a JSON object, got {type(document).__name__}")
        row: Row = {}
        if "payload" in document:
            payload = document["payload"]
            if not isinstance(payload, dict | list):
                raise RowError("payload: a profile needs an object or a list of fields")
            flatten(payload, "", row)
        elif "body" in document:
            body = document["body"]
            content_type = document.get("contentType", "application/octet-stream")
            if not isinstance(body, str):
                raise RowError("body: must be a string (use payload for a JSON value)")
            if not _is_json(content_type):
                raise RowError(f"body: only JSON bodies can be profiled, not {content_type}")
            try:
                parsed = json.loads(body)
            except json.JSONDecodeError as error:
                raise RowError(f"body: not JSON: {error.msg} at column {error.colno}") from None
            if not isinstance(parsed, dict | list):
                raise RowError("body: a profile needs an object or a list of fields")
            flatten(parsed, "", row)
        else:
            raise RowError("payload: missing (each event needs payload or body)")
        clash = RESERVED_NAMES & row.keys()
        if clash:
            raise RowError(f"payload: the field name {sorted(clash)[0]} is reserved")
        if self._prediction is not None:
            found, value = extract(document, self._prediction)
            if found and value is not None:
                if isinstance(value, dict | list):
                    raise RowError(
                        f"{self.prediction_path}: the prediction must be a number, string "
                        "or boolean"
                    )
                row[PREDICTION] = value
        if self._label is not None:
            found, value = extract(document, self._label)
            if found and value is not None:
                try:
                    row[LABEL] = normalize_label(value)
                except ValueError as error:
                    raise RowError(f"{self.label_field}: {error}") from None
        return row


class CsvRows:
    """Turns CSV records into rows, by the header's column names."""

    def __init__(
        self, header: list[str], *, prediction_column: str | None, label_column: str | None
    ) -> None:
        names = [name.strip() for name in header]
        if not names or any(not name for name in names):
            raise RowError("header: every column needs a name")
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise RowError(f"header: column {name} appears twice")
            if name in RESERVED_NAMES:
                raise RowError(f"header: the column name {name} is reserved")
            seen.add(name)
        renames = {prediction_column: PREDICTION, label_column: LABEL}
        self.names = [renames.get(name, name) for name in names]

    def row(self, record: list[str]) -> Row:
        if len(record) != len(self.names):
            raise RowError(f"expected {len(self.names)} fields, found {len(record)}")
        row: Row = {}
        for name, text in zip(self.names, record, strict=True):
            if text == "":
                continue
            row[name] = csv_label(text) if name == LABEL else text
        return row


def csv_label(text: str) -> str:
    """A CSV label read as the JSON value it spells, then normalised like an event's."""
    word = text.strip()
    if word.lower() in {"true", "false"}:
        return normalize_label(word.lower() == "true")
    try:
        return normalize_label(float(word))
    except ValueError:
        return word
