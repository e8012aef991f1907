"""The chart's Grafana dashboard against Grafana's own dashboard schema.

No Grafana runs here. `.dev/bin/grafana-check` (hack/grafana-check, built by `make tools`)
decodes the dashboard strictly with the Go types the Grafana Foundation SDK generates from
Grafana's schema, panel plugins and Prometheus queries included, and runs the schema's value
constraints. The shipped dashboard must pass; copies with one deliberate mistake each must be
rejected with a message naming the place.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chart.chart_support import BIN_DIR, CHART_DIR, REPO_ROOT

DASHBOARD_PATH = CHART_DIR / "dashboards" / "modelrollout.json"
CHECKER = BIN_DIR / "grafana-check"
CHECKER_SOURCES = REPO_ROOT / "hack" / "grafana-check"

Dashboard = dict[str, Any]


def sources_hash() -> str:
    """The key hack/tools.sh builds the checker under: its sources, in name order."""
    digest = hashlib.sha256()
    for source in sorted(CHECKER_SOURCES.iterdir()):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def checker() -> Path:
    if not CHECKER.is_file():
        pytest.fail(f"{CHECKER} is missing (run: make tools)", pytrace=False)
    built = CHECKER.resolve().parent.name
    if built != f"grafana-check-{sources_hash()}":
        pytest.fail(
            f"{CHECKER} was built from other sources than hack/grafana-check (run: make tools)",
            pytrace=False,
        )
    return CHECKER


def run(checker: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(checker), *map(str, files)], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_chart_dashboard_follows_grafanas_schema(checker: Path) -> None:
    result = run(checker, DASHBOARD_PATH)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{DASHBOARD_PATH}: ok\n", "")


def shipped() -> Dashboard:
    dashboard: Dashboard = json.loads(DASHBOARD_PATH.read_text())
    return dashboard


def panel_index(dashboard: Dashboard, panel_id: int) -> int:
    return next(i for i, panel in enumerate(dashboard["panels"]) if panel["id"] == panel_id)


TRAFFIC = 4  # the "Traffic weights" time series panel
PHASE = 2  # the "Phase" stat panel
TRAFFIC_AT = panel_index(shipped(), TRAFFIC)
PHASE_AT = panel_index(shipped(), PHASE)
IN_TRAFFIC = f'panels[{TRAFFIC_AT}].{{}} (panel {TRAFFIC} "Traffic weights")'
IN_PHASE = f'panels[{PHASE_AT}].{{}} (panel {PHASE} "Phase")'


def traffic(dashboard: Dashboard) -> dict[str, Any]:
    panel: dict[str, Any] = dashboard["panels"][TRAFFIC_AT]
    return panel


def phase(dashboard: Dashboard) -> dict[str, Any]:
    panel: dict[str, Any] = dashboard["panels"][PHASE_AT]
    return panel


MISTAKES: dict[str, tuple[Callable[[Dashboard], object], str]] = {
    "grid height as a string": (
        lambda d: traffic(d)["gridPos"].update(h="8"),
        IN_TRAFFIC.format("gridPos.h") + ": wrong type: string where the schema wants uint32",
    ),
    "grid wider than 24 columns": (
        lambda d: traffic(d)["gridPos"].update(w=30),
        IN_TRAFFIC.format("gridPos.w") + ": must be <= 24",
    ),
    "data source type as a number": (
        lambda d: traffic(d)["datasource"].update(type=7),
        IN_TRAFFIC.format("datasource.type") + ": wrong type: number where the schema wants string",
    ),
    "query field unknown to Prometheus": (
        lambda d: traffic(d)["targets"][0].update(exemplars=True),
        IN_TRAFFIC.format("targets[0].exemplars") + ": not a field of the schema",
    ),
    "query inheriting the panel's data source": (
        lambda d: traffic(d)["targets"][0].update(datasource=None, legendFormat=["track"]),
        IN_TRAFFIC.format("targets[0].legendFormat")
        + ": wrong type: array where the schema wants string",
    ),
    "query of a data source without a schema": (
        lambda d: traffic(d)["targets"][0]["datasource"].update(type="graphite-ish"),
        IN_TRAFFIC.format("targets[0]")
        + ': data source type "graphite-ish" has no query schema in the SDK,'
        " so the query is unchecked",
    ),
    "unit as a number": (
        lambda d: traffic(d)["fieldConfig"]["defaults"].update(unit=1),
        IN_TRAFFIC.format("fieldConfig.defaults.unit")
        + ": wrong type: number where the schema wants string",
    ),
    "custom field config unknown to the time series panel": (
        lambda d: traffic(d)["fieldConfig"]["defaults"].setdefault("custom", {}).update(width=2),
        IN_TRAFFIC.format("fieldConfig.defaults.custom.width") + ": not a field of the schema",
    ),
    "stat option left out": (
        lambda d: phase(d)["options"].pop("justifyMode"),
        IN_PHASE.format("options.justifyMode") + ": required field is missing from input",
    ),
    "panel type without a schema": (
        lambda d: traffic(d).update(type="graph"),
        IN_TRAFFIC.format("type") + ': panel type "graph" has no schema in the SDK,'
        " so its options and custom field config are unchecked",
    ),
    "variable field unknown to the schema": (
        lambda d: d["templating"]["list"][1].update(multiple=True),
        'templating.list[1].multiple (variable "namespace"): not a field of the schema',
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_is_rejected_naming_its_place(
    checker: Path, tmp_path: Path, mistake: str
) -> None:
    change, message = MISTAKES[mistake]
    dashboard = copy.deepcopy(shipped())
    change(dashboard)
    path = tmp_path / "dashboard.json"
    path.write_text(json.dumps(dashboard, indent=2))
    result = run(checker, path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{path}: {message}"]


def test_each_file_is_reported_on_its_own(checker: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "title": "x",\n  "panels": [\n')
    missing = tmp_path / "missing.json"
    result = run(checker, DASHBOARD_PATH, broken, missing)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{DASHBOARD_PATH}: ok"
    assert lines[1] == f"{broken}: line 4: not JSON: unexpected end of JSON input"
    assert lines[2].startswith(f"{missing}: open {missing}: no such file")
    assert len(lines) == 3


def test_no_file_is_a_usage_error(checker: Path) -> None:
    result = run(checker)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "usage: grafana-check FILE...\n"
