"""A bake end to end: live-traffic steps, SLOs evaluated in a real Prometheus that scrapes
real model servers, promotion, and rollback when an SLO fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from factories import events_configmap, model_deployment
from support.cluster import Cluster
from support.kube import apply, condition, events, get
from support.modelservers import model_servers
from support.operator import running_operator
from support.wait import poll_until


def with_bake(version: str, prometheus_url: str, slos: list[dict[str, Any]]) -> dict[str, Any]:
    md = model_deployment(version)
    md["spec"]["stages"]["nonProduction"]["replay"]["rate"] = {"rate": 100, "count": 50}
    md["spec"]["stages"]["baking"] = {
        "steps": [{"weight": 25, "duration": "1s"}, {"weight": 50, "duration": "1s"}],
        "analysis": {"provider": {"address": prometheus_url}, "interval": "1s", "slos": slos},
    }
    return md


UP = {"name": "candidate-up", "query":
      'max(modelserver_model_info{version="{{ candidate_version }}"})',
      "thresholdRange": {"min": 1}}  # fmt: skip


def test_bake_promotes_then_rolls_back_on_a_failed_slo(
    cluster: Cluster, namespace: str, tmp_path: Path, prometheus
):
    with model_servers(
        tmp_path, v1=["--model-version", "v1"], v2=["--model-version", "v2"]
    ) as servers:
        prom = prometheus([urlparse(s.url).netloc for s in servers.values()])
        prom.wait_for('modelserver_model_info{version="v2"}', timeout=60)
        args = [
            "--no-wait-for-ready",
            "--endpoint",
            f"{namespace}/md-candidate={servers['v2'].url}",
            "--endpoint",
            f"{namespace}/md-stable={servers['v1'].url}",
        ]
        with running_operator(cluster, namespace, tmp_path / "operator.log", *args):
            apply(cluster, namespace, events_configmap(), with_bake("v1", prom.url, [UP]))

            def stable_is(version: str):
                def check():
                    md = get(cluster, namespace, "md", "md")
                    status = (md or {}).get("status", {})
                    done = (
                        status.get("stableVersion") == version
                        and status.get("phase") == "Production"
                    )
                    return md if done else None

                return check

            poll_until(stable_is("v1"), timeout=90, message="v1 in production")
            apply(cluster, namespace, with_bake("v2", prom.url, [UP]))
            md = poll_until(stable_is("v2"), timeout=120, message="v2 baked and promoted")
            status = md["status"]
            assert [h["outcome"] for h in status["history"]] == ["Promoted", "Promoted"]
            (tally,) = status["analysis"]
            assert tally["name"] == "candidate-up"
            assert tally["successful"] >= 2  # one successful measurement per step at least
            assert tally["failed"] == 0
            assert tally["measurements"][-1]["value"] == 1
            assert status["lastAnalysisAt"]
            assert events(cluster, namespace, "Baking")
            advanced = events(cluster, namespace, "StepAdvanced")
            assert any("50%" in e["message"] for e in advanced)

            failing = {
                "name": "never",
                "query": "max(modelserver_model_info)",
                "thresholdRange": {"max": 0.5},
                "failureLimit": 0,
            }
            apply(cluster, namespace, with_bake("v3", prom.url, [UP, failing]))

            def rolled_back():
                obj = get(cluster, namespace, "md", "md")
                return obj if obj and obj["status"].get("phase") == "RolledBack" else None

            md = poll_until(rolled_back, timeout=120, message="v3 rolled back")
    status = md["status"]
    assert status["stableVersion"] == "v2"
    assert status["traffic"] == {"stableWeight": 100, "candidateWeight": 0}
    rolled = condition(md, "RolledBack")
    assert rolled["reason"] == "SLOBreach"
    assert "never" in rolled["message"]
    assert status["history"][0]["outcome"] == "RolledBack"
    candidate = get(cluster, namespace, "deployment", "md-candidate")
    assert candidate["spec"]["replicas"] == 0
    stable = get(cluster, namespace, "deployment", "md-stable")
    assert stable["spec"]["replicas"] == 1
