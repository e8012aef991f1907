"""Builders of API objects and manifests for tests."""

from __future__ import annotations

import copy
from typing import Any

from modelrollout.core.api.modeldeployment import ModelDeployment
from modelrollout.core.api.replaytest import ReplayTestSpec
from modelrollout.core.monitoring.profile import CategoricalProfile, NumericProfile, Profile
from modelrollout.core.replay.accumulator import ReplayAccumulator
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.quality import (
    Prediction,
    PredictionReader,
    QualityAccumulator,
    QualityState,
)
from modelrollout.core.replay.result import ReplayResult, RunInfo, result_from_run
from support.modelservers import events_jsonl

PREDICT = "/v1/models/model:predict"

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


def events_configmap(n: int = 200) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "events"},
        "data": {"events.jsonl": events_jsonl(n)},
    }


def model_deployment(version: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "md"},
        "spec": {
            "model": {"name": "model", "version": version},
            "workload": {
                "replicas": 1,
                "template": {
                    # The model answers from a local server (--endpoint): the pods need
                    # not run, and an image that is not on the node is never pulled.
                    "spec": {
                        "containers": [
                            {
                                "name": "model",
                                "image": "modelrollout:test",
                                "imagePullPolicy": "Never",
                            }
                        ]
                    }
                },
            },
            "serving": {"predictPath": PREDICT},
            "stages": {
                "nonProduction": {
                    "replay": {
                        "events": {"configMapKeyRef": {"name": "events", "key": "events.jsonl"}},
                        "rate": {"rate": 200, "count": 200},
                        "predictionPath": "predictions.0",
                        "successCriteria": {"maxErrorRate": 0.01, "minAgreement": 0.5},
                    }
                }
            },
        },
    }


def replay_test_spec(**changes: Any) -> ReplayTestSpec:
    """A ReplayTest spec of 40 events at 100/s in two shards, with `changes`."""
    base: dict[str, Any] = {
        "events": {"configMapKeyRef": {"name": "ev", "key": "e.jsonl"}},
        "target": {"url": "http://t/p"},
        "rate": {"rate": 100, "count": 40},
        "parallelism": 2,
    }
    base.update(changes)
    return ReplayTestSpec.model_validate(base)


def shard_result(index: int, count: int, latency_s: float, spacing: float = 0.01) -> ReplayResult:
    """The result of shard `index` of `count` of that spec: every request ok in `latency_s`,
    event k sent at k * `spacing` seconds (at 100/s by default)."""
    acc = ReplayAccumulator(baseline=False, reader=PredictionReader(ReplayOptions()))
    mine = [k for k in range(40) if k % count == index]
    for k in mine:
        acc.completed(0, k, k * spacing, 0.0001, latency_s, "ok", None, None)
    info = RunInfo(
        target="http://t/p",
        duration_seconds=40 * spacing,
        planned_seconds=40 * spacing,
        shard_index=index,
        shard_count=count,
        lines=len(mine),
        selected=len(mine),
    )
    return result_from_run(acc, info)


def labelled(correct: int, wrong: int) -> QualityState:
    """Quality counts of `correct` right and `wrong` wrong class answers, labels 0 and 1."""
    acc = QualityAccumulator()
    for i in range(correct + wrong):
        label = "1" if i % 2 else "0"
        guess = label if i < correct else ("0" if label == "1" else "1")
        acc.add(label, Prediction(positive=guess == "1", label=guess), "1")
    return acc.to_state()


def numeric_feature(profile: Profile, name: str) -> NumericProfile:
    """A profile's numeric feature, typed (fails when it is not numeric)."""
    column = profile.features[name]
    assert isinstance(column, NumericProfile)
    return column


def categorical_feature(profile: Profile, name: str) -> CategoricalProfile:
    """A profile's categorical feature, typed (fails when it is not categorical)."""
    column = profile.features[name]
    assert isinstance(column, CategoricalProfile)
    return column
