"""Builders of API objects for unit tests."""

from __future__ import annotations

import copy
from typing import Any

from modelrollout.core.api.modeldeployment import ModelDeployment

BASE: dict[str, Any] = {
    "apiVersion": "modelrollout.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "fraud", "namespace": "ml", "uid": "uid-1", "generation": 1},
    "spec": {
        "model": {"name": "fraud", "version": "v1"},
        "workload": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "model", "image": "m:1"}]}},
        },
        "stages": {
            "nonProduction": {
                "replay": {
                    "events": {"configMapKeyRef": {"name": "events", "key": "e.jsonl"}},
                    "rate": {"rate": 10, "duration": "10s"},
                }
            }
        },
    },
}


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def build_md(patch: dict[str, Any] | None = None) -> ModelDeployment:
    return ModelDeployment.model_validate(_merge(BASE, patch or {}))
