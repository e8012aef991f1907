"""Operator-wide settings chosen on the command line, read by the startup handler."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OperatorConfig:
    namespaces: list[str] = field(default_factory=list)
    all_namespaces: bool = False
    replay_executor: str = "job"
    replay_image: str = "modelrollout:latest"
    replay_image_pull_policy: str = "IfNotPresent"
    endpoints: dict[str, str] = field(default_factory=dict)
    resync_seconds: float = 60.0
    wait_for_ready: bool = True
    kubeconfig: str | None = None
    identity: str = "modelrollout"
    leader_elect: bool = False
    lease_namespace: str = "default"
    lease_name: str = "modelrollout"


CONFIG = OperatorConfig()
