"""Restart safety: the operator killed mid-rollout resumes from the status."""

from __future__ import annotations

import signal
from pathlib import Path

from factories import events_configmap, model_deployment
from support.cluster import Cluster
from support.kube import apply, get
from support.modelservers import model_servers
from support.operator import running_operator
from support.wait import poll_until


def test_killed_operator_resumes_the_rollout(cluster: Cluster, namespace: str, tmp_path: Path):
    with model_servers(tmp_path, v1=["--model-version", "v1"]) as servers:
        args = [
            "--no-wait-for-ready",
            "--endpoint",
            f"{namespace}/md-candidate={servers['v1'].url}",
            "--endpoint",
            f"{namespace}/md-stable={servers['v1'].url}",
        ]
        md = model_deployment("v1")
        md["spec"]["stages"]["nonProduction"]["replay"]["rate"] = {"rate": 20, "duration": "4s"}
        with running_operator(cluster, namespace, tmp_path / "first.log", *args) as first:
            apply(cluster, namespace, events_configmap(), md)

            def replay_running():
                rt = get(cluster, namespace, "rt", "-l", "modelrollout.io/name=md")
                items = (rt or {}).get("items", [])
                running = [i for i in items if i.get("status", {}).get("phase") == "Running"]
                return running or None

            poll_until(replay_running, timeout=60, message="replay running")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)

        with running_operator(cluster, namespace, tmp_path / "second.log", *args):

            def promoted():
                obj = get(cluster, namespace, "md", "md")
                return obj if obj and obj["status"].get("phase") == "Production" else None

            status = poll_until(promoted, timeout=90, message="rollout resumed")["status"]
        assert status["stableVersion"] == "v1"
        assert [h["outcome"] for h in status["history"]] == ["Promoted"]
        replays = get(cluster, namespace, "rt", "-l", "modelrollout.io/name=md")["items"]
        assert len(replays) == 1, "the restarted operator must not create a second replay"
        assert replays[0]["status"]["verdict"] == "Passed"
