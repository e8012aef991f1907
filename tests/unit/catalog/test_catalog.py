"""The catalog's pure decisions: which versions a reconcile moved, how a record grows, and
how suggestions are ranked and explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from factories import build_md, shard_result
from modelrollout.core import catalog
from modelrollout.core.api.modeldeployment import HistoryEntry, ModelDeploymentStatus, Reverted
from modelrollout.core.api.modelversion import (
    CapacityFigures,
    LatencyFigures,
    ModelVersionStatus,
    ReplayFigures,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def status(phase: str, stable: str | None = "v1", candidate: str | None = None, **kw):
    return ModelDeploymentStatus(
        phase=phase, stable_version=stable, candidate_version=candidate, message="m", **kw
    )


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, status("Production"), {"v1": "Production"}),
        (status("Production"), status("NonProduction", candidate="v2"),
         {"v1": "Production", "v2": "NonProduction"}),
        (status("NonProduction", candidate="v2"), status("Baking", candidate="v2"),
         {"v1": "Production", "v2": "Baking"}),
        (status("Baking", candidate="v2"), status("Production", stable="v2"),
         {"v2": "Production", "v1": "Retired"}),
        (status("Baking", candidate="v2"),
         status("RolledBack", history=[HistoryEntry(version="v2", outcome="RolledBack",
                                                    finished_at="t")]),
         {"v1": "Production", "v2": "RolledBack"}),
        (status("NonProduction", candidate="v2"), status("Failed", candidate="v2"),
         {"v1": "Production", "v2": "Failed"}),
        (status("Production", stable="v2"),
         status("Production", stable="v1", reverted=Reverted(
             version="v2", hash="h", to_version="v1", reason="ErrorRate", at="t")),
         {"v1": "Production", "v2": "RolledBack"}),
    ],
)  # fmt: skip
def test_stages_now(before, after, expected) -> None:
    got = {v: stage for v, (stage, _) in catalog.stages_now(before, after).items()}
    assert got == expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (status("Production"), status("NonProduction", candidate="v2"), "v2"),
        (status("Baking", candidate="v2"), status("Baking", candidate="v2"), "v2"),
        (status("Baking", candidate="v2"), status("Production", stable="v2"), "v2"),
        (status("Baking", candidate="v3"), status("RolledBack"), "v3"),
        (status("Production"), status("Production"), None),  # stable's figures stay its own
        (None, status("Production"), None),
    ],
)
def test_only_the_candidate_gets_the_status_measurements(before, after, expected) -> None:
    assert catalog.measured_version(before, after) == expected


def test_idle_reconciles_change_nothing_a_record_shows() -> None:
    same = status("Production")
    assert not catalog.changed(same, same.model_copy())
    assert catalog.changed(same, status("NonProduction", candidate="v2"))
    assert catalog.changed(None, same)


def view(version: str, stage, **kw) -> catalog.VersionView:
    md = build_md(
        {
            "metadata": {"labels": {"modelrollout.io/category": "fraud"}},
            "spec": {"model": {"version": "v2", "uri": "s3://m/v2"}},
        }
    )
    return catalog.VersionView(md=md, version=version, stage=stage, reason=f"to {stage}", **kw)


def test_a_record_keeps_its_history_and_counts_production_time() -> None:
    result = shard_result(0, 1, 0.004).summary()
    seen = catalog.ReplaySeen("rt-v2", "Passed", result, None, predecessor="v1")
    r = catalog.update(None, view("v2", "NonProduction", replay=seen,
                                  template={"spec": {"containers": [
                                      {"name": "model", "resources": {"requests": {"cpu": "1"}}}
                                  ]}}), T0)  # fmt: skip
    assert r.category == "fraud"
    assert r.uri == "s3://m/v2"
    assert r.resources[0].requests == {"cpu": "1"}
    assert r.replay is not None
    assert r.replay.latency_ms.p99 == pytest.approx(4.1, rel=0.02)
    assert r.api is None  # a result without samples infers nothing
    r = catalog.update(r, view("v2", "Baking"), T0 + timedelta(minutes=5))
    r = catalog.update(r, view("v2", "Production"), T0 + timedelta(minutes=10))
    again = catalog.update(r, view("v2", "Production"), T0 + timedelta(minutes=20))
    assert again == r  # nothing new: the same record, updatedAt included
    r = catalog.update(r, view("v2", "Retired"), T0 + timedelta(hours=2, minutes=10))
    assert [e.stage for e in r.stages] == ["NonProduction", "Baking", "Production", "Retired"]
    assert r.stages[0].left_at == "2026-01-01T00:05:00Z"
    assert r.usage.production_seconds == 7200
    assert r.replay is not None
    assert r.replay.replay_test == "rt-v2"
    assert catalog.production_seconds(r, T0 + timedelta(days=1)) == 7200


def test_a_version_still_in_production_counts_until_now() -> None:
    r = catalog.update(None, view("v2", "Production"), T0)
    assert catalog.production_seconds(r, T0 + timedelta(hours=1)) == 3600


def test_a_declared_api_wins_over_the_inferred_one() -> None:
    md = build_md({"spec": {"model": {"api": {"request": {"type": "object"}}}}})
    r = catalog.update(None, catalog.VersionView(md=md, version="v1", stage="Production",
                                                 reason=""), T0)  # fmt: skip
    assert r.api is not None
    assert r.api.source == "Declared"
    assert r.api.request == {"type": "object"}


def test_the_spec_describes_only_its_own_version() -> None:
    """A reconcile that also speaks of the stable version (v1) while the spec names v2 gives
    v1's record neither v2's declared API nor its framework."""
    md = build_md({"spec": {"model": {"version": "v2", "framework": "xgboost",
                                      "api": {"request": {"type": "object"}}}}})  # fmt: skip
    v1 = ModelVersionStatus(stage="Production", framework="sklearn")
    r = catalog.update(v1, catalog.VersionView(md=md, version="v1", stage="Production",
                                               reason=""), T0)  # fmt: skip
    assert r.api is None
    assert r.framework == "sklearn"
    r = catalog.update(None, catalog.VersionView(md=md, version="v2", stage="Baking",
                                                 reason=""), T0)  # fmt: skip
    assert r.api is not None
    assert r.api.source == "Declared"
    assert r.framework == "xgboost"


def entry(version: str, p99: float | None, accuracy: float | None, cap: float | None,
          stage="Production", category="fraud", verdict="Passed") -> catalog.Entry:  # fmt: skip
    replay = ReplayFigures(
        replay_test=f"rt-{version}", verdict=verdict, requests=100,
        latency_ms=LatencyFigures(p99=p99), throughput=10, accuracy=accuracy, error_rate=0.0,
    )  # fmt: skip
    capacity = (
        CapacityFigures(p99_target_ms=50, window_seconds=5, rate=cap, reached=True, windows=4,
                        message="", replay_test="ramp")
        if cap is not None else None
    )  # fmt: skip
    record = ModelVersionStatus(stage=stage, category=category, replay=replay, capacity=capacity)
    return catalog.Entry(f"fraud-{version}", "ml", "fraud", "fraud", version, record)


def test_suggest_ranks_qualifying_versions_and_explains_the_others() -> None:
    entries = [
        entry("v1", 20, 0.90, 300),
        entry("v2", 45, 0.95, 150),
        entry("v3", 80, 0.97, 400),  # too slow
        entry("v4", 10, 0.99, None),  # capacity not measured
        entry("v5", 10, 0.99, 500, stage="RolledBack"),
        entry("v6", 10, 0.99, 500, verdict="Failed"),
        entry("x1", 1, 1.0, 900, category="churn"),
    ]
    want = catalog.Constraints(category="fraud", max_p99_ms=50, min_accuracy=0.9, min_capacity=100)
    ranked = catalog.suggest(entries, want)
    order = [(s.entry.version, s.qualifies) for s in ranked]
    assert order[:2] == [("v2", True), ("v1", True)]  # more accurate first
    assert {v for v, ok in order[2:]} == {"v3", "v4", "v5", "v6"}
    assert not any(ok for _, ok in order[2:])
    why = {s.entry.version: s.reasons for s in ranked}
    assert "p99 80 ms > 50 ms" in why["v3"]
    assert "capacity not measured (needs ≥ 100 req/s)" in why["v4"]
    assert any("RolledBack" in r for r in why["v5"])
    assert any("failed" in r for r in why["v6"])
    assert "accuracy 0.95 ≥ 0.9" in why["v2"]


def test_manifest_changes_only_the_version_uri_and_template() -> None:
    current = {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": "fraud", "namespace": "ml", "uid": "u", "resourceVersion": "9",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "a"},
        },
        "spec": {"model": {"name": "fraud", "version": "v3"}, "workload": {"replicas": 2,
                 "template": {"spec": {"containers": [{"name": "m", "image": "m:3"}]}}}},
        "status": {"phase": "Production"},
    }  # fmt: skip
    chosen = entry("v1", 20, 0.9, 300)
    template = {"spec": {"containers": [{"name": "m", "image": "m:1"}]}}
    chosen = catalog.Entry(*list(vars(chosen).values())[:5], chosen.status.model_copy(
        update={"uri": "s3://m/v1", "template": template}))  # fmt: skip
    out = catalog.manifest(current, chosen)
    assert out["metadata"] == {"name": "fraud", "namespace": "ml", "annotations": {"team": "a"}}
    assert out["spec"]["model"] == {"name": "fraud", "version": "v1", "uri": "s3://m/v1"}
    assert out["spec"]["workload"] == {"replicas": 2, "template": template}
    assert "status" not in out


@pytest.mark.parametrize(
    ("deployment", "version", "expected"),
    [
        ("fraud", "v2", "fraud-v2"),
        ("fraud", "2024.1", "fraud-2024.1"),
        ("fraud", "V_2", None),  # changed, so a hash is added
    ],
)
def test_record_names_are_valid_and_distinct(deployment, version, expected) -> None:
    name = catalog.record_name(deployment, version)
    if expected is not None:
        assert name == expected
    else:
        assert name.startswith("fraud-v-2-")
        assert name != catalog.record_name("fraud", "v-2")
