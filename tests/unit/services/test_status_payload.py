from factories import shard_result
from modelrollout.core.api.modeldeployment import ModelDeploymentStatus
from modelrollout.services.reconciling import status_payload


def test_unchanged_status_is_not_written_again():
    status = ModelDeploymentStatus(phase="NonProduction", candidate_version="v2")
    stored = {
        k: v for k, v in status.model_dump(by_alias=True, mode="json").items() if v is not None
    }
    stored["kopf"] = {"progress": {}}  # the framework's stanza is ignored
    assert status_payload(status, stored) is None


def test_changed_status_clears_fields_that_became_unset():
    old = ModelDeploymentStatus(phase="NonProduction", candidate_version="v2")
    stored = {k: v for k, v in old.model_dump(by_alias=True, mode="json").items() if v is not None}
    new = ModelDeploymentStatus(phase="Production", stable_version="v2")
    patch = status_payload(new, stored)
    assert patch is not None
    assert patch["phase"] == "Production"
    assert patch["candidateVersion"] is None  # a merge patch null removes the field
    assert "kopf" not in patch


USER_FIELDS = {"approvals": [], "aborted": False, "resumedAt": None, "retryRequestedAt": None}
RESULT = shard_result(0, 1, 0.01).summary().model_dump(by_alias=True, mode="json")
"""A replay summary with nulls inside it (no quality, no comparison, no mean of an empty
histogram...)."""


def stored_as_written(status: ModelDeploymentStatus) -> dict:
    """The status as the apiserver keeps it after our patches: no nulls at any depth (a
    merge patch null removes the field), and no user field left at its default (they are
    sent only when a decision changes them)."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    dumped = strip(status.model_dump(by_alias=True, mode="json"))
    return {k: v for k, v in dumped.items() if k not in USER_FIELDS}


def test_an_idle_status_with_nested_nulls_and_default_user_fields_is_not_written():
    status = ModelDeploymentStatus.model_validate(
        {"phase": "Production", "stableVersion": "v1", "replayResult": RESULT}
    )
    stored = stored_as_written(status)
    assert "comparison" not in stored["replayResult"]
    assert "approvals" not in stored
    assert status_payload(status, stored, USER_FIELDS) is None


def test_user_fields_are_sent_only_when_the_decision_changed_them():
    stored = stored_as_written(ModelDeploymentStatus(phase="Baking", stable_version="v1"))
    stored["aborted"] = True
    unchanged = ModelDeploymentStatus(phase="Baking", stable_version="v1", aborted=True)
    assert status_payload(unchanged, stored, USER_FIELDS) is None
    moved = ModelDeploymentStatus(phase="RolledBack", stable_version="v1", aborted=True)
    patch = status_payload(moved, stored, USER_FIELDS)
    assert patch is not None
    assert patch["phase"] == "RolledBack"
    assert "aborted" not in patch
    cleared = ModelDeploymentStatus(phase="Baking", stable_version="v1", aborted=False)
    patch = status_payload(cleared, stored, USER_FIELDS)
    assert patch is not None
    assert patch["aborted"] is False
