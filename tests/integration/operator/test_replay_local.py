"""ReplayTests and ModelDeployments end to end with the local executor and real model
servers: shards run as local processes, their results are merged and judged by the same
code as Job shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from factories import PREDICT, events_configmap, model_deployment
from support.cluster import Cluster
from support.kube import apply, get
from support.modelservers import model_servers
from support.operator import running_operator
from support.wait import poll_until


def replay_test(name: str, target: str, baseline: str | None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "events": {"configMapKeyRef": {"name": "events", "key": "events.jsonl"}},
        "target": {"service": {"name": target, "port": 80, "path": PREDICT}},
        "rate": {"rate": 200, "count": 300},
        "parallelism": 2,
        "predictionPath": "predictions.0",
        **spec,
    }
    if baseline:
        body["baseline"] = {"service": {"name": baseline, "port": 80, "path": PREDICT}}
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ReplayTest",
        "metadata": {"name": name},
        "spec": body,
    }


def finished(cluster: Cluster, namespace: str, kind: str, name: str, phases: set[str]):
    def check():
        obj = get(cluster, namespace, kind, name)
        return obj if obj and obj.get("status", {}).get("phase") in phases else None

    return check


@pytest.fixture
def servers(tmp_path: Path):
    with model_servers(
        tmp_path,
        v1=["--model-version", "v1"],
        v2=["--model-version", "v2"],
        slow=["--latency-ms", "60"],
    ) as started:
        yield started


@pytest.fixture
def operator(cluster: Cluster, namespace: str, tmp_path: Path, servers):
    endpoints = {
        "candidate": servers["v2"],
        "stable": servers["v1"],
        "slow": servers["slow"],
        "md-candidate": servers["v2"],
        "md-stable": servers["v1"],
    }
    extra: list[str] = ["--no-wait-for-ready"]
    for service, server in endpoints.items():
        extra += ["--endpoint", f"{namespace}/{service}={server.url}"]
    with running_operator(cluster, namespace, tmp_path / "operator.log", *extra) as process:
        yield process


def test_sharded_replay_with_baseline_passes(cluster, namespace, operator):
    apply(
        cluster,
        namespace,
        events_configmap(),
        replay_test(
            "compare",
            "candidate",
            "stable",
            successCriteria={
                "maxErrorRate": 0.01,
                "minAgreement": 0.5,
                "maxP99RatioToBaseline": 20,
            },
        ),
    )
    rt = poll_until(
        finished(cluster, namespace, "rt", "compare", {"Succeeded", "Failed"}),
        timeout=90,
        message="replay finished",
    )
    status = rt["status"]
    assert status["phase"] == "Succeeded", status
    assert status["verdict"] == "Passed", status["reasons"]
    assert status["executor"] == "local"
    assert status["progress"] == {"shards": 2, "succeeded": 2, "failed": 0, "active": 0}
    result = status["result"]
    # the two shards' counts add up to the whole run: every request is accounted for
    assert result["counts"]["sent"] == 300
    assert result["counts"]["ok"] + result["counts"]["errors"] == result["counts"]["sent"]
    assert result["counts"]["dropped"] == 0
    assert result["rate"]["target"] == pytest.approx(200, rel=0.05)
    assert result["latencyMs"]["p99"] >= result["latencyMs"]["p50"] > 0
    assert result["quality"]["labeled"] == 300
    comparison = result["comparison"]
    assert 0.5 <= comparison["agreement"] <= 1
    assert comparison["scoreDiff"]["meanAbs"] > 0  # v1 and v2 have different weights
    assert comparison["baseline"]["latencyMs"]["p99"] > 0
    passed = next(c for c in status["conditions"] if c["type"] == "Passed")
    assert passed["status"] == "True"
    assert passed["reason"] == "CriteriaMet"
    events = get(cluster, namespace, "events")["items"]
    assert any(e["reason"] == "CriteriaMet" for e in events)


def test_failed_criteria_give_a_failed_verdict_with_reasons(cluster, namespace, operator):
    apply(
        cluster,
        namespace,
        events_configmap(),
        replay_test(
            "too-slow",
            "slow",
            None,
            rate={"rate": 50, "count": 60},
            parallelism=1,
            successCriteria={"maxP99Ms": 20},
        ),
    )
    rt = poll_until(
        finished(cluster, namespace, "rt", "too-slow", {"Succeeded", "Failed"}),
        timeout=90,
        message="replay finished",
    )
    status = rt["status"]
    assert status["phase"] == "Succeeded"
    assert status["verdict"] == "Failed"
    assert any("maxP99Ms" in reason for reason in status["reasons"]), status["reasons"]
    assert status["result"]["latencyMs"]["p50"] >= 60


def test_unreachable_target_is_measured_not_crashed(cluster, namespace, operator):
    body = replay_test(
        "nowhere",
        "candidate",
        None,
        rate={"rate": 50, "count": 20},
        parallelism=1,
        timeout="1s",
        successCriteria={"minAvailability": 0.99},
    )
    body["spec"]["target"] = {"url": "http://127.0.0.1:9/v1/models/model:predict"}
    apply(cluster, namespace, events_configmap(), body)
    rt = poll_until(
        finished(cluster, namespace, "rt", "nowhere", {"Succeeded", "Failed"}),
        timeout=60,
        message="replay finished",
    )
    result = rt["status"]["result"]
    assert result["errors"] == {"connection": 20}
    assert rt["status"]["verdict"] == "Failed"


def test_model_deployment_replays_then_promotes_each_version(cluster, namespace, operator):
    apply(cluster, namespace, events_configmap(), model_deployment("v1"))
    md = poll_until(
        finished(cluster, namespace, "md", "md", {"Production", "RolledBack"}),
        timeout=90,
        message="v1 in production",
    )
    assert md["status"]["phase"] == "Production", md["status"]
    assert md["status"]["stableVersion"] == "v1"
    first_replay = md["status"]["replayTest"]
    assert get(cluster, namespace, "rt", first_replay)["spec"].get("baseline") is None

    apply(cluster, namespace, model_deployment("v2"))

    def promoted_v2():
        obj = get(cluster, namespace, "md", "md")
        return obj if obj and obj["status"].get("stableVersion") == "v2" else None

    md = poll_until(promoted_v2, timeout=90, message="v2 promoted")
    status = md["status"]
    assert status["phase"] == "Production"
    assert [h["version"] for h in status["history"]] == ["v2", "v1"]
    assert [h["outcome"] for h in status["history"]] == ["Promoted", "Promoted"]
    second = get(cluster, namespace, "rt", status["replayTest"])
    assert second["spec"]["baseline"]["service"]["name"] == "md-stable"
    assert status["replayResult"]["comparison"]["agreement"] >= 0.5
    stable = get(cluster, namespace, "deployment", "md-stable")
    env = {
        e["name"]: e["value"] for e in stable["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODEL_VERSION"] == "v2"
    assert get(cluster, namespace, "deployment", "md-candidate")["spec"]["replicas"] == 0


def test_model_deployment_endpoint_and_unsupported_source(cluster, namespace, operator):
    apply(cluster, namespace, events_configmap(), model_deployment("v1"))
    poll_until(
        finished(cluster, namespace, "md", "md", {"Production"}),
        timeout=90,
        message="v1 in production",
    )
    body = replay_test(
        "against-stable", "unused", None, rate={"rate": 100, "count": 50}, parallelism=1
    )
    body["spec"]["target"] = {"modelDeployment": {"name": "md", "track": "stable"}}
    volume = replay_test("from-volume", "candidate", None, rate={"rate": 10, "count": 5})
    volume["spec"]["events"] = {"volume": {"claimName": "data", "path": "e.jsonl"}}
    apply(cluster, namespace, body, volume)
    rt = poll_until(
        finished(cluster, namespace, "rt", "against-stable", {"Succeeded", "Failed"}),
        timeout=60,
        message="replay against the ModelDeployment finished",
    )
    assert rt["status"]["verdict"] == "Passed", rt["status"]
    assert rt["status"]["result"]["counts"]["ok"] == 50
    failed = poll_until(
        finished(cluster, namespace, "rt", "from-volume", {"Failed"}),
        timeout=60,
        message="unsupported source reported",
    )
    assert "spec.events.volume" in failed["status"]["reasons"][0]
    complete = next(c for c in failed["status"]["conditions"] if c["type"] == "Complete")
    assert complete["reason"] == "InvalidSpec"
