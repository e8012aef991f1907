"""The test Prometheus is a real one: it scrapes an HTTP endpoint and evaluates rules."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.cluster import BIN_DIR
from support.metrics_target import metrics_target as serve_metrics
from support.prometheus import PrometheusFactory
from support.wait import async_poll_until

pytestmark = pytest.mark.prometheus

METRICS = """\
# HELP modelrollout_test_requests_total Requests served.
# TYPE modelrollout_test_requests_total counter
modelrollout_test_requests_total{code="200"} 42
modelrollout_test_requests_total{code="500"} 3
"""

RULES = """\
groups:
  - name: test
    interval: 1s
    rules:
      - record: code:modelrollout_test_requests:sum
        expr: sum(modelrollout_test_requests_total)
"""


@pytest.fixture
def metrics_target() -> Iterator[str]:
    """A tiny HTTP server exposing METRICS on /metrics; yields its "host:port"."""
    with serve_metrics(METRICS) as target:
        yield target


async def test_scrapes_a_target(prometheus: PrometheusFactory, metrics_target: str) -> None:
    prom = prometheus([metrics_target])
    async with httpx.AsyncClient(base_url=prom.url, timeout=10.0) as http:

        async def query(promql: str) -> list[dict[str, Any]]:
            response = await http.get("/api/v1/query", params={"query": promql})
            response.raise_for_status()
            result: list[dict[str, Any]] = response.json()["data"]["result"]
            return result

        samples = await async_poll_until(
            lambda: query('modelrollout_test_requests_total{code="200"}'),
            timeout=30,
            interval=0.2,
            message="Prometheus to scrape the test target",
        )
    assert float(samples[0]["value"][1]) == 42
    assert samples[0]["metric"]["instance"] == metrics_target
    assert samples[0]["metric"]["job"] == "test"
    up = prom.query(f'up{{instance="{metrics_target}"}}')
    assert float(up[0]["value"][1]) == 1


def test_evaluates_recording_rules(
    prometheus: PrometheusFactory, metrics_target: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    check = subprocess.run(
        [str(BIN_DIR / "promtool"), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    prom = prometheus([metrics_target], rule_files=[rules])
    samples = prom.wait_for("code:modelrollout_test_requests:sum")
    assert float(samples[0]["value"][1]) == 45
