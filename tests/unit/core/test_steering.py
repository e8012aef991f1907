"""What each steering action writes, or why it refuses: shared by the CLI and the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modelrollout.core import reasons, steering
from modelrollout.core.api.modeldeployment import ModelDeploymentStatus
from modelrollout.core.steering import Steer

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
STAMP = "2026-01-02T03:04:05Z"
WAITING = reasons.WAITING_FOR_APPROVAL
TEMPLATE = {"spec": {"containers": [{"name": "model", "image": "m:1"}]}}


def status(**fields: Any) -> ModelDeploymentStatus:
    return ModelDeploymentStatus.model_validate(fields)


def kept(*versions: str) -> list[dict[str, Any]]:
    return [
        {"version": v, "hash": f"h{v}", "template": TEMPLATE, "retiredAt": STAMP} for v in versions
    ]


@pytest.mark.parametrize(
    ("found", "gate", "version", "expected"),
    [
        (
            status(phase="Baking", candidateVersion="v2"),
            "BeforeProduction",
            None,
            Steer(
                {"approvals": [{"gate": "BeforeProduction", "version": "v2"}]},
                "approved BeforeProduction for md version v2",
            ),
        ),
        (
            status(phase="Baking", candidateVersion="v2"),
            "BeforeBaking",
            "v3",
            Steer(
                {"approvals": [{"gate": "BeforeBaking", "version": "v3"}]},
                "approved BeforeBaking for md version v3",
            ),
        ),
        (
            status(
                phase="Baking",
                candidateVersion="v2",
                approvals=[{"gate": "BeforeProduction", "version": "v2"}],
            ),
            "BeforeProduction",
            None,
            Steer(
                {"approvals": [{"gate": "BeforeProduction", "version": "v2"}]},
                "approved BeforeProduction for md version v2",
            ),
        ),
        (status(phase="Production"), "BeforeProduction", None, "md has no candidate to approve"),
        (status(phase="Baking", candidateVersion="v2"), "Later", None, "unknown gate 'Later'"),
    ],
)
def test_approve(
    found: ModelDeploymentStatus, gate: str, version: str | None, expected: Steer | str
) -> None:
    decided = steering.approve("md", found, gate, version)
    if isinstance(expected, str):
        assert isinstance(decided, str)
        assert decided.startswith(expected)
    else:
        assert decided == expected


def test_approvals_keep_the_newest() -> None:
    many = [{"gate": "BeforeProduction", "version": f"v{i}"} for i in range(32)]
    decided = steering.approve("md", status(approvals=many), "BeforeBaking", "vX")
    assert isinstance(decided, Steer)
    approvals = decided.patch["approvals"]
    assert len(approvals) == steering.MAX_APPROVALS
    assert approvals[-1] == {"gate": "BeforeBaking", "version": "vX"}
    assert approvals[0] == {"gate": "BeforeProduction", "version": "v1"}


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("NonProduction", Steer({"aborted": True}, "aborting the rollout of md v2")),
        ("Baking", Steer({"aborted": True}, "aborting the rollout of md v2")),
        ("Production", "md is Production: there is no rollout to abort"),
        ("RolledBack", "md is RolledBack: there is no rollout to abort"),
    ],
)
def test_abort(phase: str, expected: Steer | str) -> None:
    assert steering.abort("md", status(phase=phase, candidateVersion="v2")) == expected


def test_resume_stamps_the_time() -> None:
    assert steering.resume("md", status(phase="Baking"), NOW) == Steer(
        {"resumedAt": STAMP}, "resuming md"
    )


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (
            status(phase="RolledBack", candidateVersion="v2"),
            Steer({"retryRequestedAt": STAMP}, "retrying md v2"),
        ),
        (
            status(
                phase="Failed",
                reverted={
                    "version": "v3",
                    "hash": "h",
                    "toVersion": "v1",
                    "reason": "x",
                    "at": STAMP,
                },
            ),
            Steer({"retryRequestedAt": STAMP}, "retrying md v3"),
        ),
        (
            status(phase="Baking"),
            "md is Baking: only a rolled-back or failed rollout is retried",
        ),
    ],
)
def test_retry(found: ModelDeploymentStatus, expected: Steer | str) -> None:
    assert steering.retry("md", found, NOW) == expected


@pytest.mark.parametrize(
    ("found", "to_version", "expected"),
    [
        (
            status(phase="Production", stableVersion="v3", revisions=kept("v2", "v1")),
            None,
            Steer({"undo": {"requestedAt": STAMP}}, "reverting md from v3 to v2"),
        ),
        (
            status(phase="Production", stableVersion="v3", revisions=kept("v2", "v1")),
            "v1",
            Steer(
                {"undo": {"requestedAt": STAMP, "toVersion": "v1"}}, "reverting md from v3 to v1"
            ),
        ),
        (
            status(phase="Production", stableVersion="v3", revisions=kept("v2", "v1")),
            "v0",
            "md keeps no template of v0 (kept: v2, v1)",
        ),
        (
            status(phase="Production", stableVersion="v1"),
            None,
            "md keeps no earlier version to go back to",
        ),
        (
            status(phase="Baking", candidateVersion="v4", revisions=kept("v2")),
            None,
            "md is rolling out v4: use kubectl modelrollout abort",
        ),
    ],
)
def test_undo(found: ModelDeploymentStatus, to_version: str | None, expected: Steer | str) -> None:
    assert steering.undo("md", found, to_version, NOW) == expected


@pytest.mark.parametrize(
    ("action", "fields", "found", "expected"),
    [
        (
            "approve",
            {"gate": "BeforeBaking", "version": " "},
            status(phase="Baking", candidateVersion="v2"),
            steering.approve("md", status(candidateVersion="v2"), "BeforeBaking", None),
        ),
        (
            "abort",
            {},
            status(phase="Baking"),
            Steer({"aborted": True}, "aborting the rollout of md None"),
        ),
        ("resume", {"csrf": "x"}, status(), Steer({"resumedAt": STAMP}, "resuming md")),
        (
            "retry",
            {},
            status(phase="Production"),
            steering.retry("md", status(phase="Production"), NOW),
        ),
        (
            "undo",
            {"to_version": ""},
            status(phase="Production", stableVersion="v2", revisions=kept("v1")),
            Steer({"undo": {"requestedAt": STAMP}}, "reverting md from v2 to v1"),
        ),
    ],
)
def test_a_form_decides_as_the_command_does(
    action: str, fields: dict[str, str], found: ModelDeploymentStatus, expected: Steer | str
) -> None:
    decide = steering.for_action(action, "md", fields, NOW)
    assert decide is not None
    assert decide(found) == expected


def test_an_unknown_action_has_no_decision() -> None:
    assert steering.for_action("delete", "md", {}, NOW) is None


def test_status_of_leaves_the_framework_bookkeeping_out() -> None:
    found = steering.status_of({"status": {"phase": "Baking", "kopf": {"progress": {}}}})
    assert found.phase == "Baking"
    assert found.kopf is None
    assert steering.status_of({}).phase == ModelDeploymentStatus().phase


def test_status_of_reads_a_status_with_a_field_this_version_does_not_know() -> None:
    raw = {"status": {"phase": "Baking", "candidateVersion": "v2", "fieldOfANewerOperator": 1}}
    found = steering.status_of(raw)
    assert found.phase == "Baking"
    assert found.candidate_version == "v2"
    assert isinstance(steering.approve("md", found, "BeforeBaking", None), Steer)


def paused(reason: str, message: str) -> ModelDeploymentStatus:
    cond = {
        "type": "Paused",
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": STAMP,
    }
    return status(conditions=[cond])


@pytest.mark.parametrize(
    ("found", "gate"),
    [
        (
            paused("GateWaiting", f"{WAITING}BeforeBaking for version v2: add"),
            "BeforeBaking",
        ),
        (
            paused("GateWaiting", f"{WAITING}BeforeProduction for version v2: add"),
            "BeforeProduction",
        ),
        (paused("InconclusiveData", f"{WAITING}BeforeBaking"), None),
        (status(), None),
    ],
)
def test_the_gate_waited_at(found: ModelDeploymentStatus, gate: str | None) -> None:
    assert steering.waiting_gate(found) == gate
