"""From dataset records to rows: flattening, predictions, labels, CSV columns."""

from __future__ import annotations

import pytest

from modelrollout.core.monitoring.rows import CsvRows, EventRows, RowError, csv_label, flatten

EVENTS = EventRows(prediction_path="response.predictions[0]", label_field="label")


@pytest.mark.parametrize(
    ("document", "row"),
    [
        (
            {"payload": {"instances": [[0.3, -1.2]]}, "label": True},
            {"instances.0.0": 0.3, "instances.0.1": -1.2, "@label": "1"},
        ),
        (
            {"payload": {"user": {"age": 41, "tags": ["a"]}, "empty": {}, "none": None}},
            {"user.age": 41, "user.tags.0": "a", "none": None},
        ),
        ({"payload": [1, {"a": 2}]}, {"0": 1, "1.a": 2}),
        (
            {"body": '{"x": 1}', "contentType": "application/json; charset=utf-8", "label": 1.0},
            {"x": 1, "@label": "1"},
        ),
        ({"body": '{"x": 1}', "contentType": "application/vnd.api+json"}, {"x": 1}),
        (
            {"payload": {"x": 1}, "response": {"predictions": [0.83]}},
            {"x": 1, "@prediction": 0.83},
        ),
        ({"payload": {"x": 1}, "response": {"predictions": []}}, {"x": 1}),
        ({"payload": {"x": 1}, "response": {"predictions": [None]}, "label": None}, {"x": 1}),
    ],
)
def test_event_rows(document: dict[str, object], row: dict[str, object]) -> None:
    assert EVENTS.row(document) == row


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([1, 2], "expected a JSON object, got list"),
        ({"label": 1}, "payload: missing"),
        ({"payload": 3}, "payload: a profile needs an object or a list"),
        ({"body": 3}, "body: must be a string"),
        ({"body": "a,b", "contentType": "text/csv"}, "body: only JSON bodies can be profiled"),
        ({"body": "{x", "contentType": "application/json"}, "body: not JSON"),
        ({"body": "3", "contentType": "application/json"}, "body: a profile needs an object"),
        ({"payload": {"@label": 1}}, "payload: the field name @label is reserved"),
        (
            {"payload": {}, "response": {"predictions": [[0.1, 0.9]]}},
            "response.predictions[0]: the prediction must be a number",
        ),
        ({"payload": {}, "label": {"a": 1}}, "label: expected a string, number or boolean"),
    ],
)
def test_event_errors_name_the_field(document: object, reason: str) -> None:
    with pytest.raises(RowError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        EVENTS.row(document)


def test_label_paths_reach_inside_and_can_be_turned_off() -> None:
    nested = EventRows(prediction_path=None, label_field="attributes.outcome")
    assert nested.row({"payload": {}, "attributes": {"outcome": "fraud"}}) == {"@label": "fraud"}
    none = EventRows(prediction_path=None, label_field=None)
    assert none.row({"payload": {"a": 1}, "label": 1}) == {"a": 1}


def test_flatten_names_scalars_by_their_paths() -> None:
    out: dict[str, object] = {}
    flatten({"a": {"b": [1, {"c": True}]}, "d": "x"}, "", out)
    assert out == {"a.b.0": 1, "a.b.1.c": True, "d": "x"}


def test_csv_rows_rename_prediction_and_label_and_skip_empty_cells() -> None:
    rows = CsvRows(["age", " score ", "label"], prediction_column="score", label_column="label")
    assert rows.names == ["age", "@prediction", "@label"]
    assert rows.row(["41", "", "true"]) == {"age": "41", "@label": "1"}
    with pytest.raises(RowError, match="expected 3 fields, found 2"):
        rows.row(["1", "2"])


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (["a", "", "b"], "every column needs a name"),
        (["a", "a"], "column a appears twice"),
        (["a", "@prediction"], "the column name @prediction is reserved"),
    ],
)
def test_bad_csv_headers(header: list[str], reason: str) -> None:
    with pytest.raises(RowError, match=reason):
        CsvRows(header, prediction_column="prediction", label_column="label")


@pytest.mark.parametrize(
    ("text", "label"),
    [("true", "1"), ("FALSE", "0"), ("1.0", "1"), ("0", "0"), ("0.25", "0.25"), ("cat", "cat")],
)
def test_csv_labels_read_like_event_labels(text: str, label: str) -> None:
    assert csv_label(text) == label
