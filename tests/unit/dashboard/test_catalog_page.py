"""The dashboard's catalog page: one escaped row per record, capacity bounds marked."""

from __future__ import annotations

from datetime import UTC, datetime

from modelrollout.core.api.modelversion import (
    CapacityFigures,
    LatencyFigures,
    ModelVersionStatus,
    ReplayFigures,
    StageEntry,
)
from modelrollout.core.catalog import Entry
from modelrollout.core.dashboard import catalog

NOW = datetime(2026, 1, 1, 2, tzinfo=UTC)


def record(version: str, *, reached: bool, uri: str) -> Entry:
    status = ModelVersionStatus(
        stage="Production",
        category="fraud",
        subcategory="card",
        uri=uri,
        replay=ReplayFigures(
            replay_test="rt", verdict="Passed", requests=10, throughput=5,
            latency_ms=LatencyFigures(p99=12.345), accuracy=0.9, error_rate=0.01,
        ),
        capacity=CapacityFigures(
            p99_target_ms=50, window_seconds=5, rate=1480, reached=reached, windows=9,
            message="", replay_test="ramp",
        ),
        stages=[StageEntry(stage="Production", entered_at="2026-01-01T00:00:00Z")],
    )  # fmt: skip
    return Entry(f"fraud-{version}", "ml", "fraud", "fraud", version, status)


def test_rows_show_measured_figures_and_escape_what_users_wrote() -> None:
    html = catalog.listing(
        [record("v1", reached=True, uri="s3://m/<v1>"), record("v2", reached=False, uri="x")],
        NOW,
        scope="all namespaces",
    )
    assert '<section id="catalog">' in html
    assert "12.35" in html  # p99
    assert "fraud/card" in html
    assert "2.0 h" in html  # in production since midnight
    assert "s3://m/&lt;v1&gt;" in html
    assert "<v1>" not in html
    assert ">1,480<" in html  # v1: the capacity found
    assert "≥ 1,480" in html  # v2: a lower bound
    assert 'href="/md/ml/fraud"' in html


def test_unknown_figures_show_a_dash_once_escaped() -> None:
    bare = Entry("m-v1", "ml", "m", "m", "v1", ModelVersionStatus(stage="NonProduction"))
    html = catalog.listing([bare], NOW, scope="all namespaces")
    assert "&ndash;" in html
    assert "&amp;" not in html


def test_no_record_says_so() -> None:
    html = catalog.listing([], NOW, scope="all namespaces")
    assert "No ModelVersion here." in html
    assert 'id="catalog"' not in html
