"""Fixtures of the router tests.

* `replica_log` (function): every ``spec.replicas`` the Deployments of the test's namespace
  go through, as the apiserver's watch reports them, so that a value held for an instant
  between two writes is seen too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from support.routing import ReplicaLog


@pytest.fixture
def replica_log(kube_api: client.ApiClient, namespace: str) -> Iterator[ReplicaLog]:
    log = ReplicaLog(kube_api, namespace)
    try:
        yield log
    finally:
        log.stop()
