"""Real Prometheus servers for tests (built by make tools, linked as .dev/bin/prometheus)."""

from __future__ import annotations

import functools
import json
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from .cluster import BIN_DIR
from .wait import poll_until

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrometheusError(RuntimeError):
    """Prometheus did not start, or a query failed."""


class PrometheusHandle:
    """One running Prometheus. `url` is its base URL; `query` runs an instant query."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, workdir: Path) -> None:
        self.process = process
        self.url = url
        self.workdir = workdir
        self.log_path = workdir / "prometheus.log"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The `data.result` list of an instant query (vector samples, empty if none)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10.0)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"query {promql!r} failed: {response.status_code} {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, promql: str, *, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll `query` until it returns at least one sample."""
        return poll_until(
            lambda: self.query(promql),
            timeout=timeout,
            interval=0.2,
            message=f"Prometheus at {self.url} returned no samples for {promql!r}",
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)


class PrometheusFactory:
    """Starts Prometheus servers in `tmp_dir`; `close()` stops them all."""

    def __init__(self, tmp_dir: Path, bin_dir: Path = BIN_DIR) -> None:
        self.tmp_dir = tmp_dir
        self.binary = bin_dir / "prometheus"
        self.handles: list[PrometheusHandle] = []

    def __call__(
        self,
        targets: Sequence[str],
        *,
        scrape_interval: str = "1s",
        rule_files: Sequence[str | Path] | None = None,
        job_name: str = "test",
    ) -> PrometheusHandle:
        """Start a Prometheus scraping `targets` ("host:port"), wait until it is ready."""
        workdir = self.tmp_dir / f"prometheus-{len(self.handles)}"
        workdir.mkdir(parents=True)
        config = {
            "global": {
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "evaluation_interval": scrape_interval,
            },
            "rule_files": [str(Path(path).resolve()) for path in rule_files or []],
            "scrape_configs": [
                {"job_name": job_name, "static_configs": [{"targets": list(targets)}]}
            ],
        }
        # JSON is YAML, which is what Prometheus reads.
        config_path = workdir / "prometheus.yml"
        config_path.write_text(json.dumps(config, indent=2) + "\n")
        attempts = 3
        for attempt in range(1, attempts + 1):
            handle = self._start(workdir, config_path)
            try:
                poll_until(
                    functools.partial(self._ready, handle),
                    timeout=READY_TIMEOUT,
                    message=f"Prometheus at {handle.url} to become ready",
                )
            except BaseException:
                handle.stop()
                # The port was taken between choosing and binding it: try another.
                if "address already in use" in handle.log() and attempt < attempts:
                    continue
                raise
            self.handles.append(handle)
            return handle
        raise PrometheusError(f"Prometheus did not start after {attempts} attempts")

    def _start(self, workdir: Path, config_path: Path) -> PrometheusHandle:
        if not self.binary.exists():
            raise PrometheusError(f"{self.binary} is missing; run: make tools")
        port = _free_port()
        log = (workdir / "prometheus.log").open("ab")
        with log:
            process = subprocess.Popen(
                [
                    str(self.binary),
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return PrometheusHandle(process, f"http://127.0.0.1:{port}", workdir)

    @staticmethod
    def _ready(handle: PrometheusHandle) -> bool:
        if handle.process.poll() is not None:
            raise PrometheusError(
                f"prometheus exited with code {handle.process.returncode}:\n{handle.log()[-3000:]}"
            )
        try:
            return httpx.get(f"{handle.url}/-/ready", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    def close(self) -> None:
        for handle in self.handles:
            handle.stop()
        self.handles.clear()
