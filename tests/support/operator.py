"""Run the real operator (``modelrollout run``) as a process for a test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from support.cluster import Cluster


@contextlib.contextmanager
def running_operator(
    cluster: Cluster, namespace: str, log: Path, *extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    """The operator watching one namespace, with the local replay executor; stopped
    (and waited for) at the end of the block."""
    args = [
        sys.executable, "-m", "modelrollout", "run",
        "--namespace", namespace,
        "--kubeconfig", str(cluster.kubeconfig),
        "--health-port", "0", "--metrics-port", "0",
        "--replay-executor", "local", "--resync", "5",
        "--log-format", "json",
        *extra,
    ]  # fmt: skip
    env = {**cluster.env, "PYTHONWARNINGS": "default"}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            args, stdout=sink, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if os.environ.get("MODELROLLOUT_TEST_SHOW_LOGS"):
            sys.stderr.write(log.read_text(errors="replace"))
