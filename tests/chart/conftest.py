"""Fixtures of the Helm chart tests: `helm` renders offline, `cluster_helm` installs for real."""

from __future__ import annotations

import os

import pytest

from chart.chart_support import Helm, find_helm, helm_env
from support.cluster import Cluster


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm for offline commands (lint, template), with private configuration directories."""
    binary = find_helm()
    if binary is None:
        pytest.fail("helm is missing from .dev/bin and PATH (run: make tools)", pytrace=False)
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    return Helm(binary, helm_env(env, tmp_path_factory.mktemp("helm-home")))


@pytest.fixture(scope="session")
def cluster_helm(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm talking to the test cluster."""
    binary = cluster.bin_dir / "helm"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing (run: make tools)", pytrace=False)
    return Helm(binary, helm_env(cluster.env, tmp_path_factory.mktemp("helm-cluster-home")))
