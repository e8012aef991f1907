"""The test Prometheus is a real one: it scrapes an HTTP endpoint and evaluates rules."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.cluster import BIN_DIR
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


class _MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/metrics":
            self.send_error(404)
            return
        body = METRICS.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def metrics_target() -> Iterator[str]:
    """A tiny HTTP server exposing /metrics; yields its "host:port"."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MetricsHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


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
