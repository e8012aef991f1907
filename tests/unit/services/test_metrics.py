"""The operator's metrics: what a reconcile exports, and what goes with a deleted object."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelrollout.core.api.modeldeployment import ModelDeploymentStatus
from modelrollout.services import metrics
from modelrollout.services.rollouts import _export_metrics

NOW = datetime(2026, 12, 2, 6, 0, 30, tzinfo=UTC)


def value(sample: str, /, **labels: str) -> float | None:
    found = metrics.REGISTRY.get_sample_value(sample, labels)
    return found


def status(phase: str, weight: int, analysis: list[dict[str, Any]], **extra: Any) -> Any:
    return ModelDeploymentStatus.model_validate(
        {
            "phase": phase,
            "traffic": {"stableWeight": 100 - weight, "candidateWeight": weight},
            "analysis": analysis,
            **extra,
        }
    )


def tally(ok: int, failed: int, *failed_at: str) -> dict[str, Any]:
    measurements = [{"phase": "Failed", "value": 1.0, "startedAt": at} for at in failed_at]
    return {"name": "error-rate", "successful": ok, "failed": failed, "measurements": measurements}


def test_a_reconcile_exports_phase_weight_and_new_measurements() -> None:
    before = status("Baking", 20, [tally(3, 0)])
    after = status("Baking", 50, [tally(5, 0)])
    _export_metrics("ns", "grow", before, after, NOW)
    assert value("modelrollout_phase", kind="ModelDeployment", namespace="ns", name="grow",
                 phase="Baking") == 1  # fmt: skip
    assert value("modelrollout_phase", kind="ModelDeployment", namespace="ns", name="grow",
                 phase="Production") == 0  # fmt: skip
    assert value("modelrollout_candidate_weight", namespace="ns", name="grow") == 50
    measured = value(
        "modelrollout_analysis_measurements_total",
        namespace="ns", name="grow", metric="error-rate", phase="Successful",
    )  # fmt: skip
    assert measured == 2  # only the two taken by this reconcile


def test_a_rollback_is_counted_with_its_reason_and_timed_from_the_first_failure() -> None:
    before = status("Baking", 20, [tally(4, 1, "2026-12-02T06:00:21Z")])
    after = status(
        "RolledBack",
        0,
        [tally(4, 2, "2026-12-02T06:00:21Z", "2026-12-02T06:00:26Z")],
        conditions=[
            {
                "type": "RolledBack",
                "status": "True",
                "reason": "SLOBreach",
                "message": "SLO error-rate failed",
                "lastTransitionTime": "2026-12-02T06:00:30Z",
            }
        ],
    )
    count_before = value("modelrollout_rollback_seconds_count") or 0
    sum_before = value("modelrollout_rollback_seconds_sum") or 0
    _export_metrics("ns", "back", before, after, NOW)
    assert value("modelrollout_rollbacks_total", namespace="ns", name="back",
                 reason="SLOBreach") == 1  # fmt: skip
    assert value("modelrollout_rollback_seconds_count") == count_before + 1
    assert value("modelrollout_rollback_seconds_sum") == sum_before + 9  # 06:00:21 to :30
    # a later reconcile of the same rolled-back state counts nothing again
    _export_metrics("ns", "back", after, after, NOW)
    assert value("modelrollout_rollbacks_total", namespace="ns", name="back",
                 reason="SLOBreach") == 1  # fmt: skip


def test_a_deleted_objects_series_go() -> None:
    for name in ("gone", "kept"):
        _export_metrics("ns", name, None, status("Baking", 10, [tally(1, 0)]), NOW)
    metrics.forget("ModelDeployment", "ns", "gone")
    text = metrics.render().decode()
    assert 'name="gone"' not in text
    assert 'name="kept"' in text
