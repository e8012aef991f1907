"""Reading bodies the API models may refuse, and naming the field that is wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from factories import BASE
from modelrollout.core.api.base import readable
from modelrollout.core.api.modeldeployment import ModelDeployment, ModelDeploymentStatus
from modelrollout.services import reconciling


def test_a_status_from_another_version_is_read_without_what_this_one_does_not_know():
    raw = {
        **BASE,
        "status": {
            "phase": "Baking",
            "fieldOfANewerOperator": {"x": 1},
            "kopf": {"progress": {}},
            "conditions": [
                {"type": "Invalid", "status": "True", "reason": "InvalidSpec", "message": "m",
                 "lastTransitionTime": "2026-12-02T06:00:00Z"},
                {"type": "Ready", "status": "True", "reason": "ReferencesFound", "message": "",
                 "lastTransitionTime": "2026-12-02T06:00:00Z"},
            ],
        },
    }  # fmt: skip
    with pytest.raises(ValidationError):
        ModelDeployment.model_validate(raw)  # the strict model refuses the unknown field
    md = ModelDeployment.model_validate(readable(raw, ModelDeploymentStatus))
    assert md.status is not None
    assert md.status.phase == "Baking"
    assert [c.type for c in md.status.conditions] == ["Ready"]  # an earlier Invalid is dropped


def test_a_validation_error_names_the_field():
    raw = {**BASE, "spec": {**BASE["spec"], "workload": {"replicas": -1, "template": {}}}}
    with pytest.raises(ValidationError) as caught:
        ModelDeployment.model_validate(raw)
    message = reconciling.describe(caught.value)
    assert message.startswith("spec.workload.replicas: ")
    assert "greater than or equal to 0" in message


@pytest.mark.parametrize(
    ("seconds", "expected"), [(None, reconciling.Done()), (2.5, reconciling.Requeue(2.5))]
)
def test_after(seconds, expected):
    assert reconciling.after(seconds) == expected
