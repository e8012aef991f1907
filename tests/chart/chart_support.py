"""Helpers for the Helm chart tests: running helm, rendering the chart, reading the result."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "modelrollout"
CHART_CRDS_DIR = CHART_DIR / "files" / "crds"
REPO_CRDS_DIR = REPO_ROOT / "crds"
BIN_DIR = REPO_ROOT / ".dev" / "bin"

EXPECTED_CRD_FILES = (
    "modelrollout.io_modeldeployments.yaml",
    "modelrollout.io_modelversions.yaml",
    "modelrollout.io_replaytests.yaml",
)
EXPECTED_CRD_NAMES = (
    "modeldeployments.modelrollout.io",
    "modelversions.modelrollout.io",
    "replaytests.modelrollout.io",
)

ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")

# What the operator may do, as (apiGroup, resource) -> verbs. The chart grants exactly this.
EXPECTED_RULES: dict[tuple[str, str], frozenset[str]] = {
    ("modelrollout.io", "modeldeployments"): frozenset({"get", "list", "watch", "patch"}),
    ("modelrollout.io", "replaytests"): frozenset(
        {"get", "list", "watch", "patch", "create", "delete"}
    ),
    ("modelrollout.io", "modeldeployments/status"): frozenset({"get", "patch", "update"}),
    ("modelrollout.io", "replaytests/status"): frozenset({"get", "patch", "update"}),
    ("modelrollout.io", "modelversions"): frozenset({"get", "patch", "create"}),
    ("modelrollout.io", "modelversions/status"): frozenset({"get", "patch", "update"}),
    ("apps", "deployments"): frozenset(ALL_VERBS),
    ("", "services"): frozenset(ALL_VERBS),
    ("batch", "jobs"): frozenset({"get", "list", "watch", "create", "patch", "delete"}),
    ("", "pods"): frozenset({"get", "list", "watch"}),
    ("", "pods/log"): frozenset({"get"}),
    ("", "configmaps"): frozenset({"get", "list", "watch"}),
    ("", "secrets"): frozenset({"get", "list", "watch"}),
    ("", "events"): frozenset({"create", "patch"}),
    ("events.k8s.io", "events"): frozenset({"create", "patch"}),
    ("gateway.networking.k8s.io", "httproutes"): frozenset(
        {"get", "list", "watch", "update", "patch"}
    ),
}

# `helm template` renders for this Kubernetes version (the one the test control plane runs),
# since a helm built without version ldflags assumes a version older than the chart supports.
KUBE_VERSION = "v1.35.0"

CONTRACT_TAIL = ["--health-port", "8080", "--metrics-port", "8081"]

Manifest = dict[str, Any]


class HelmError(AssertionError):
    """helm exited non-zero; the message holds its output."""

    def __init__(self, args: Iterable[str], result: subprocess.CompletedProcess[str]) -> None:
        self.stderr = result.stderr
        self.stdout = result.stdout
        super().__init__(
            f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}"
        )


def find_helm() -> Path | None:
    """`.dev/bin/helm` (made by `make tools`), else a helm on PATH."""
    candidate = BIN_DIR / "helm"
    if candidate.is_file():
        return candidate
    found = shutil.which("helm")
    return Path(found) if found else None


@dataclass(frozen=True)
class Helm:
    """A helm binary with its own configuration directories (nothing of the user's is read)."""

    binary: Path
    env: Mapping[str, str]

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args],
            input=input,
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise HelmError(args, result)
        return result

    def template(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        chart: Path = CHART_DIR,
        release: str = "modelrollout",
        namespace: str = "modelrollout-system",
        extra: Iterable[str] = (),
    ) -> list[Manifest]:
        """`helm template` with `values`; the rendered objects, in order."""
        result = self.run(
            "template",
            release,
            str(chart),
            "--namespace",
            namespace,
            "--kube-version",
            KUBE_VERSION,
            "--values",
            "-",
            *extra,
            input=yaml.safe_dump(dict(values or {})),
        )
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def template_error(
        self, values: Mapping[str, Any], *, chart: Path = CHART_DIR, extra: Iterable[str] = ()
    ) -> str:
        """Render `values` expecting helm to refuse them; its error output."""
        result = self.run(
            "template",
            "modelrollout",
            str(chart),
            "--kube-version",
            KUBE_VERSION,
            "--values",
            "-",
            *extra,
            input=yaml.safe_dump(dict(values)),
            check=False,
        )
        assert result.returncode != 0, f"helm accepted {values!r}:\n{result.stdout}"
        return result.stderr


def helm_env(base: Mapping[str, str], home: Path) -> dict[str, str]:
    """`base` with helm's cache, configuration and data directories under `home`."""
    env = dict(base)
    for name in ("CACHE", "CONFIG", "DATA"):
        directory = home / name.lower()
        directory.mkdir(parents=True, exist_ok=True)
        env[f"HELM_{name}_HOME"] = str(directory)
    return env


def by_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.get("kind") == kind]


def one(manifests: Iterable[Manifest], kind: str) -> Manifest:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def operator_container(manifests: Iterable[Manifest]) -> Manifest:
    containers = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Manifest = containers[0]
    return container


def rules_table(rules: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], frozenset[str]]:
    """RBAC rules as (apiGroup, resource) -> verbs; fails on anything beyond plain rules."""
    table: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"unexpected fields in {rule}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                table.setdefault((group, resource), set()).update(rule["verbs"])
    return {key: frozenset(verbs) for key, verbs in table.items()}


def assert_no_wildcards(rules: Iterable[Mapping[str, Any]]) -> None:
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert all("*" not in item for item in rule.get(field, [])), f"wildcard in {rule}"


def copy_chart(destination: Path, crds: Mapping[str, str] | None = None) -> Path:
    """A copy of the chart at `destination`; with `crds`, files/crds/ holds exactly those."""
    shutil.copytree(CHART_DIR, destination)
    if crds is not None:
        crd_dir = destination / "files" / "crds"
        shutil.rmtree(crd_dir, ignore_errors=True)
        crd_dir.mkdir(parents=True)
        for name, text in crds.items():
            (crd_dir / name).write_text(text)
    return destination
