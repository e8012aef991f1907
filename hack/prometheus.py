#!/usr/bin/env python3
"""A real Prometheus that scrapes the pods of the local cluster.

It runs on the host, listens on the node address (so the operator's pod reaches it) and
finds its targets with ``kubernetes_sd_configs``: it lists the pods through the API server
with a ServiceAccount token and trusts the cluster CA, as an in-cluster Prometheus would.

A pod is scraped when it carries the annotation ``prometheus.io/scrape: "true"``; the port
comes from ``prometheus.io/port`` and the path from ``prometheus.io/path`` (default
``/metrics``). Every series gets ``namespace`` and ``pod`` labels, and, for the pods of a
ModelDeployment, ``modeldeployment`` and ``track`` (stable or candidate).

Stdlib only; used by ``make demo``, ``make dev`` and the tests.

    python hack/prometheus.py up --dir .dev/prometheus --kubeconfig .dev/kubeconfig
    python hack/prometheus.py down --dir .dev/prometheus
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN_DIR = REPO_ROOT / ".dev" / "bin"
NODE_IP = "10.254.0.1"
SA_NAMESPACE = "kube-system"
SA_NAME = "modelrollout-prometheus"
PR_SET_PDEATHSIG = 1

RBAC = [
    {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": SA_NAME, "namespace": SA_NAMESPACE},
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": SA_NAME},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": SA_NAME},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": SA_NAME,
        },
        "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NAMESPACE}],
    },
]


class PrometheusError(RuntimeError):
    """Prometheus could not be started or queried."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _parent_death_signal() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _kubeconfig_cluster(kubeconfig: Path) -> tuple[str, bytes]:
    """The API server URL and CA certificate of a kubeconfig written by hack/controlplane.py."""
    server = ca = ""
    for line in kubeconfig.read_text().splitlines():
        key, _, value = line.strip().partition(": ")
        if key == "server":
            server = value
        elif key == "certificate-authority-data":
            ca = value
    if not server or not ca:
        raise PrometheusError(f"{kubeconfig} names no server or CA data")
    return server, base64.b64decode(ca)


def scrape_config(
    api_server: str, token_file: Path, ca_file: Path, interval: str
) -> dict[str, Any]:
    """The Prometheus configuration: pods found through the API server, by annotation."""
    meta = "__meta_kubernetes_pod_"
    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "scrape_configs": [
            {
                "job_name": "pods",
                "kubernetes_sd_configs": [
                    {
                        "role": "pod",
                        "api_server": api_server,
                        "authorization": {"credentials_file": str(token_file)},
                        "tls_config": {"ca_file": str(ca_file)},
                    }
                ],
                "relabel_configs": [
                    {
                        "source_labels": [f"{meta}annotation_prometheus_io_scrape"],
                        "regex": "true",
                        "action": "keep",
                    },
                    {"source_labels": [f"{meta}phase"], "regex": "Running", "action": "keep"},
                    {
                        "source_labels": ["__address__", f"{meta}annotation_prometheus_io_port"],
                        "regex": r"([^:]+)(?::\d+)?;(\d+)",
                        "replacement": "$1:$2",
                        "target_label": "__address__",
                    },
                    {
                        "source_labels": [f"{meta}annotation_prometheus_io_path"],
                        "regex": "(.+)",
                        "target_label": "__metrics_path__",
                    },
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": [f"{meta}name"], "target_label": "pod"},
                    {
                        "source_labels": [f"{meta}label_modelrollout_io_name"],
                        "target_label": "modeldeployment",
                    },
                    {
                        "source_labels": [f"{meta}label_modelrollout_io_track"],
                        "target_label": "track",
                    },
                ],
            }
        ],
    }


class ClusterPrometheus:
    """One Prometheus for the local cluster, with its files in `workdir`."""

    def __init__(self, workdir: Path, kubeconfig: Path, bin_dir: Path = DEFAULT_BIN_DIR) -> None:
        self.workdir = Path(workdir).resolve()
        self.kubeconfig = Path(kubeconfig).resolve()
        self.bin_dir = Path(bin_dir)
        self.pidfile = self.workdir / "prometheus.pid"
        self.log_path = self.workdir / "prometheus.log"
        self.url_file = self.workdir / "url"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_file.read_text().strip()

    def _kubectl(self, *args: str, input: str | None = None) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            input=input,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise PrometheusError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def start(
        self, *, port: int = 0, interval: str = "1s", daemon: bool = False, timeout: float = 60
    ) -> str:
        """Start Prometheus; returns its URL once it is ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        items = json.dumps({"apiVersion": "v1", "kind": "List", "items": RBAC})
        self._kubectl("apply", "-f", "-", input=items)
        token = self._kubectl(
            "create", "token", SA_NAME, "-n", SA_NAMESPACE, "--duration=48h"
        ).strip()
        token_file = self.workdir / "token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        server, ca = _kubeconfig_cluster(self.kubeconfig)
        ca_file = self.workdir / "ca.crt"
        ca_file.write_bytes(ca)
        config = self.workdir / "prometheus.yml"
        # JSON is YAML, which is what Prometheus reads.
        config.write_text(json.dumps(scrape_config(server, token_file, ca_file, interval)) + "\n")
        port = port or _free_port(NODE_IP)
        url = f"http://{NODE_IP}:{port}"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bin_dir / "prometheus"),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address={NODE_IP}:{port}",
                    "--log.level=warn",
                ],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=None if daemon else _parent_death_signal,
            )
        self.pidfile.write_text(f"{self.process.pid}\n")
        self.url_file.write_text(url + "\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_text = self.log_path.read_text(errors="replace")[-3000:]
                raise PrometheusError(f"prometheus exited {self.process.returncode}:\n{log_text}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response,
            ):
                if response.status == 200:
                    return url
            time.sleep(0.2)
        raise PrometheusError(f"Prometheus at {url} not ready after {timeout:.0f}s")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query."""
        query = urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=10) as resp:
                body: dict[str, Any] = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raise PrometheusError(f"query {promql!r}: {err.read().decode()}") from err
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def stop(self, timeout: float = 15) -> None:
        pid = self.process.pid if self.process else None
        if pid is None:
            with contextlib.suppress(FileNotFoundError, ValueError):
                pid = int(self.pidfile.read_text())
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(pid, self.process):
                time.sleep(0.1)
            if _alive(pid, self.process):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if self.process is not None:
                self.process.wait(timeout=10)
        self.pidfile.unlink(missing_ok=True)


def _alive(pid: int, process: subprocess.Popen[bytes] | None) -> bool:
    if process is not None and process.pid == pid:
        return process.poll() is None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start in the background; prints the URL")
    up.add_argument("--dir", type=Path, required=True)
    up.add_argument("--kubeconfig", type=Path, required=True)
    up.add_argument("--interval", default="1s")
    down = sub.add_parser("down", help="stop it")
    down.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    kubeconfig = getattr(args, "kubeconfig", None) or Path("/nonexistent")
    prom = ClusterPrometheus(args.dir, kubeconfig)
    try:
        if args.command == "up":
            prom.stop()
            print(prom.start(interval=args.interval, daemon=True))
        else:
            prom.stop()
    except PrometheusError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
