"""The operator process itself: liveness and metrics endpoints, JSON logs, clean shutdown."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx

from support.cluster import Cluster
from support.kube import apply_examples
from support.operator import running_operator
from support.wait import poll_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_health_metrics_and_json_logs(cluster: Cluster, namespace: str, tmp_path: Path):
    health, metrics = free_port(), free_port()
    log = tmp_path / "operator.log"
    with running_operator(
        cluster, namespace, log, "--health-port", str(health), "--metrics-port", str(metrics)
    ) as process:

        def healthy():
            try:
                return httpx.get(f"http://127.0.0.1:{health}/healthz", timeout=2)
            except httpx.TransportError:
                return None

        response = poll_until(healthy, timeout=60, message="liveness endpoint answers")
        assert response.status_code == 200
        apply_examples(cluster, namespace, "events-configmap", "modeldeployment")

        def exported():
            text = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=2).text
            counted = 'modelrollout_reconcile_total{kind="ModelDeployment",result="ok"}' in text
            return text if counted and 'phase="NonProduction"} 1.0' in text else None

        text = poll_until(exported, timeout=60, message="phase and reconciles exported")
        phase = (
            f'modelrollout_phase{{kind="ModelDeployment",name="fraud-scorer",'
            f'namespace="{namespace}",phase="NonProduction"}} 1.0'
        )
        assert phase in text
    assert process.returncode == 0
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"message", "timestamp", "severity"} <= set(record)
