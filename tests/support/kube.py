"""Reading objects from the test cluster with kubectl, for assertions."""

from __future__ import annotations

import json
from typing import Any

from support.cluster import REPO_ROOT, Cluster


def get(cluster: Cluster, namespace: str, *what: str) -> dict[str, Any] | None:
    """``kubectl get WHAT -o json`` in ``namespace``; None when it does not exist."""
    result = cluster.kubectl("get", *what, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    """The status condition of ``type_``, if any."""
    for cond in ((obj or {}).get("status") or {}).get("conditions", []):
        if cond["type"] == type_:
            return dict(cond)
    return None


def events(cluster: Cluster, namespace: str, reason: str) -> list[dict[str, Any]]:
    """Events in ``namespace`` with this reason."""
    found = get(cluster, namespace, "events") or {"items": []}
    return [e for e in found["items"] if e["reason"] == reason]


def apply(cluster: Cluster, namespace: str, *objects: dict[str, Any]) -> None:
    for obj in objects:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def apply_examples(cluster: Cluster, namespace: str, *names: str) -> None:
    """Apply files of examples/ (by name, without .yaml) into ``namespace``."""
    args = ["apply", "-n", namespace]
    for name in names:
        args += ["-f", str(REPO_ROOT / "examples" / f"{name}.yaml")]
    cluster.kubectl(*args)
