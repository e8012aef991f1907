"""The real Kubernetes cluster the cluster tests run against.

Either a one-node cluster started for the test session by `hack/cluster.py` (control plane,
kubelet, containerd, CNI, kube-proxy, CoreDNS and Traefik, binaries in `.dev/bin` made by
`make tools`), or an existing cluster whose kubeconfig is in the environment variable
MODELROLLOUT_TEST_KUBECONFIG. The node changes host-wide state, so there is one per machine:
a second test session waits for the first one's node to go.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = REPO_ROOT / ".dev" / "bin"
GATEWAY_API_DIR = REPO_ROOT / ".dev" / "gateway-api"
CRDS_DIR = REPO_ROOT / "crds"
CONTROL_PLANE_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "kube-proxy",
    "coredns",
    "traefik",
    "helm",
)
NODE_LOCK_WAIT = 1200.0
EXTERNAL_KUBECONFIG_ENV = "MODELROLLOUT_TEST_KUBECONFIG"


def missing_tools(names: tuple[str, ...] | list[str], bin_dir: Path = BIN_DIR) -> list[str]:
    """The names in `bin_dir` that are absent or not executable."""
    return [name for name in names if not os.access(bin_dir / name, os.X_OK)]


def load_controlplane() -> ModuleType:
    """hack/controlplane.py as a module (it is a script, not part of the package)."""
    return load_hack("controlplane")


def load_hack(script: str) -> ModuleType:
    """hack/SCRIPT.py as a module (the scripts are not part of the package)."""
    name = f"modelrollout_hack_{script}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "hack" / f"{script}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Cluster:
    """A running cluster: its admin kubeconfig, the tools directory and a kubectl runner."""

    kubeconfig: Path
    bin_dir: Path = BIN_DIR
    external: bool = False
    start_seconds: float = 0.0
    gateway_url: str = ""
    node: Any = None
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", "")])
        self.env = env

    def import_image(self, archive: Path) -> None:
        """Make an image archive (docker-archive tar) present on the node."""
        if self.node is None:
            raise AssertionError("images can be imported only into the local node")
        self.node.import_image(archive)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `.dev/bin/kubectl ARGS` against this cluster; raise on failure if `check`."""
        return self.run(
            str(self.bin_dir / "kubectl"), *args, input=input, check=check, timeout=timeout
        )

    def run(
        self, *cmd: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a command with this cluster's KUBECONFIG; raise on failure if `check`."""
        result = subprocess.run(
            list(cmd),
            input=input,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {result.returncode}:\n{result.stderr}{result.stdout}"
            )
        return result

    def install_crds(self, timeout: float = 120.0) -> list[str]:
        """Apply the Gateway API CRDs and every crds/*.yaml; wait until all are Established."""
        files = sorted(GATEWAY_API_DIR.glob("*.yaml")) + sorted(CRDS_DIR.glob("*.yaml"))
        if not files:
            return []
        args = ["apply", "--server-side", "--force-conflicts", "-o", "name"]
        for path in files:
            args += ["-f", str(path)]
        applied = self.kubectl(*args, timeout=timeout).stdout.split()
        crds = [name for name in applied if name.startswith("customresourcedefinition")]
        if crds:
            self.kubectl(
                "wait", "--for=condition=Established", f"--timeout={int(timeout)}s", *crds,
                timeout=timeout + 10,
            )  # fmt: skip
        return crds


@contextlib.contextmanager
def running_cluster(workdir: Path, bin_dir: Path = BIN_DIR) -> Iterator[Cluster]:
    """A cluster for the duration of the block: the external one if configured, else a new
    control plane in `workdir` that is stopped (no process left) at the end."""
    external = os.environ.get(EXTERNAL_KUBECONFIG_ENV)
    if external:
        yield Cluster(kubeconfig=Path(external).resolve(), bin_dir=bin_dir, external=True)
        return
    local = load_hack("cluster").LocalCluster(workdir, bin_dir)
    started = time.monotonic()
    try:
        local.start(wait_for_lock=NODE_LOCK_WAIT)
        yield Cluster(
            kubeconfig=local.kubeconfig,
            bin_dir=bin_dir,
            start_seconds=time.monotonic() - started,
            gateway_url=local.gateway_url,
            node=local,
        )
    finally:
        local.stop()
