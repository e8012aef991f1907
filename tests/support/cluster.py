"""The real Kubernetes control plane the cluster tests run against.

Either one started for the test session from `hack/controlplane.py` (binaries in `.dev/bin`,
made by `make tools`), or an existing cluster whose kubeconfig is in the environment variable
MODELROLLOUT_TEST_KUBECONFIG.
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

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = REPO_ROOT / ".dev" / "bin"
GATEWAY_API_DIR = REPO_ROOT / ".dev" / "gateway-api"
CRDS_DIR = REPO_ROOT / "crds"
CONTROL_PLANE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
EXTERNAL_KUBECONFIG_ENV = "MODELROLLOUT_TEST_KUBECONFIG"


def missing_tools(names: tuple[str, ...] | list[str], bin_dir: Path = BIN_DIR) -> list[str]:
    """The names in `bin_dir` that are absent or not executable."""
    return [name for name in names if not os.access(bin_dir / name, os.X_OK)]


def load_controlplane() -> ModuleType:
    """hack/controlplane.py as a module (it is a script, not part of the package)."""
    name = "modelrollout_hack_controlplane"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "hack" / "controlplane.py")
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
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", "")])
        self.env = env

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `.dev/bin/kubectl ARGS` against this cluster; raise on failure if `check`."""
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            input=input,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stderr}{result.stdout}"
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
    controlplane = load_controlplane()
    plane = controlplane.ControlPlane(workdir, bin_dir)
    started = time.monotonic()
    try:
        plane.start()
        yield Cluster(
            kubeconfig=plane.kubeconfig,
            bin_dir=bin_dir,
            start_seconds=time.monotonic() - started,
        )
    finally:
        plane.stop()
