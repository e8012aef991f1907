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
