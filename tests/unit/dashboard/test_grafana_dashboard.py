"""The Grafana dashboard the chart ships: well formed, and only metrics the code exports.

No Grafana runs here, so the checks are structural: the JSON parses, panels are laid out on
Grafana's 24-column grid without overlapping, every query goes to the `datasource` variable,
every `$variable` is defined, and every metric name in a PromQL expression is one that the
operator, the model server or the capture sidecar registers. Renaming a metric in the code
without the dashboard fails here. tests/chart/test_dashboard_schema.py checks the same file
against Grafana's own schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelrollout.modelserver import app
from modelrollout.services import metrics
from modelrollout.services.capture import metrics as capture_metrics

DASHBOARD_PATH = (
    Path(__file__).resolve().parents[3]
    / "charts"
    / "modelrollout"
    / "dashboards"
    / "modelrollout.json"
)
DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24

# Grafana's own variables, always defined.
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"}
# PromQL words that look like identifiers but name no series.
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}
# Suffixes of the series each kind of metric family writes (no `_created`: it is disabled).
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}


def series_names(registry: CollectorRegistry) -> set[str]:
    """The names of the series a registry writes, whether or not any child exists yet."""
    names = set()
    for family in registry.collect():
        for suffix in SERIES_SUFFIXES[family.type]:
            names.add(family.name + suffix)
    return names


def registered() -> set[str]:
    """Every series name the operator, the model server and the capture sidecar export."""
    return (
        series_names(metrics.REGISTRY)
        | series_names(app.Recorder(1).registry)
        | series_names(capture_metrics.CaptureMetrics().registry)
    )


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects.

    Label matchers, grouping clauses and range or subquery durations are removed first; what is
    left that is an identifier, neither a function (followed by `(`) nor a PromQL keyword, is a
    metric name.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


PANELS = list(all_panels(DASHBOARD["panels"]))
QUERY_PANELS = [panel for panel in PANELS if panel["type"] != "row"]
TARGETS = [(panel, target) for panel in QUERY_PANELS for target in panel["targets"]]
VARIABLES = {variable["name"]: variable for variable in DASHBOARD["templating"]["list"]}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (a, b) (rate(x_total{c=~"d|e", f!="by(g)"}[$__rate_interval]))', {"x_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
        ("a / on(k) group_left(v) b > bool 0.5", {"a", "b"}),
        ("sum without (pod) (g) offset 1h or vector(1)", {"g"}),
        ('100 - w{n="$x"} == 1e3', {"w"}),
    ],
)
def test_metric_names_reads_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_registered_names_include_each_kind() -> None:
    names = registered()
    assert "modelrollout_reconcile_total" in names
    assert "modelrollout_phase" in names
    assert "modelserver_request_duration_seconds_bucket" in names
    assert "modelrollout_capture_records_dropped_total" in names
    assert "modelrollout_reconcile" not in names


def test_every_expression_uses_only_registered_metrics() -> None:
    known = registered()
    unknown = {}
    for panel, target in TARGETS:
        names = metric_names(target["expr"])
        assert names, f"{panel['title']}/{target['refId']} selects no metric"
        if names - known:
            unknown[f"{panel['title']}/{target['refId']}"] = sorted(names - known)
    assert unknown == {}


def test_variable_queries_use_only_registered_metrics() -> None:
    known = registered()
    for variable in VARIABLES.values():
        if variable["type"] != "query":
            continue
        inner = re.fullmatch(r"label_values\((.*), *\w+\)", variable["query"]["query"])
        assert inner, variable["name"]
        assert metric_names(inner.group(1)) <= known, variable["name"]


def test_dashboard_header() -> None:
    assert DASHBOARD["schemaVersion"] >= 39
    assert DASHBOARD["uid"] == "modelrollout"
    assert "id" not in DASHBOARD  # Grafana assigns it on import
    datasource = VARIABLES["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    for name, label in (("namespace", "namespace"), ("modeldeployment", "name")):
        variable = VARIABLES[name]
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        assert variable["query"]["query"].startswith("label_values(modelrollout_phase{")
        assert variable["query"]["query"].endswith(f", {label})")


def test_rows() -> None:
    rows = [panel["title"] for panel in DASHBOARD["panels"] if panel["type"] == "row"]
    assert rows == [
        "Rollout state",
        "Analysis",
        "Model traffic by track and version",
        "Capture sidecar",
        "Operator",
    ]


def test_panel_ids_are_unique() -> None:
    ids = [panel["id"] for panel in PANELS]
    assert len(ids) == len(set(ids))
    assert all(isinstance(panel_id, int) for panel_id in ids)


def test_every_panel_queries_the_datasource_variable() -> None:
    assert len(QUERY_PANELS) >= 15
    for panel in QUERY_PANELS:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["refId"], panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_every_variable_used_is_defined() -> None:
    used = set()
    for text in [json.dumps(panel) for panel in PANELS] + [
        json.dumps(variable["query"]) for variable in VARIABLES.values()
    ]:
        for braced, bare in re.findall(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", text):
            used.add(braced or bare)
    assert used, "no variable is used"
    assert used - BUILTIN_VARIABLES <= set(VARIABLES)
    assert {"datasource", "namespace", "modeldeployment"} <= used


def cells(grid: dict[str, int]) -> set[tuple[int, int]]:
    return {
        (x, y)
        for x in range(grid["x"], grid["x"] + grid["w"])
        for y in range(grid["y"], grid["y"] + grid["h"])
    }


def test_panels_fit_the_grid_without_overlapping() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in PANELS:
        grid = panel["gridPos"]
        assert min(grid["x"], grid["y"]) >= 0, panel["title"]
        assert min(grid["w"], grid["h"]) > 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        for cell in cells(grid):
            assert cell not in taken, f"{panel['title']} overlaps {taken[cell]}"
            taken[cell] = panel["title"]
