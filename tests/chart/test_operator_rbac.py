"""The operator runs with exactly the permissions the chart grants.

The chart is installed (RBAC and ServiceAccount only matter here; the operator pod cannot
run without a kubelet), then the operator runs locally with a token of the chart's
ServiceAccount. A missing permission would show as a 403 in its log and as a rollout that
does not move.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from chart.chart_support import CHART_DIR, Helm
from support.cluster import Cluster
from support.kube import apply_examples, get
from support.operator import running_operator
from support.wait import poll_until


def sa_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    token = cluster.kubectl("create", "token", account, "-n", namespace).stdout.strip()
    context = admin["contexts"][0]["context"]
    cluster_entry = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [cluster_entry],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster_entry["name"],
                                                      "user": "operator"}}],
        "current-context": "operator",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def test_operator_works_with_the_chart_rbac(
    cluster: Cluster, cluster_helm: Helm, namespace: str, tmp_path: Path
):
    release = f"rbac-{namespace[-6:]}"
    cluster_helm.run(
        "install",
        release,
        str(CHART_DIR),
        "--namespace",
        namespace,
        "--set",
        "crds.install=false",
        "--wait=false",
    )
    try:
        account = f"{release}-modelrollout"
        kubeconfig = sa_kubeconfig(cluster, namespace, account, tmp_path / "sa.kubeconfig")
        readable = cluster.kubectl(
            "--kubeconfig",
            str(kubeconfig),
            "get",
            "secrets",
            "-n",
            namespace,
            "-o",
            "name",
            check=False,
        )
        assert readable.returncode == 0  # secrets may be read (references), not written
        forbidden = cluster.kubectl(
            "--kubeconfig",
            str(kubeconfig),
            "create",
            "configmap",
            "x",
            "-n",
            namespace,
            check=False,
        )
        assert "forbidden" in forbidden.stderr
        restricted = Cluster(kubeconfig=kubeconfig, bin_dir=cluster.bin_dir)
        log = tmp_path / "operator.log"
        with running_operator(restricted, namespace, log, "--replay-executor", "job"):
            apply_examples(cluster, namespace, "events-configmap", "modeldeployment", "replaytest")

            def moved():
                md = get(cluster, namespace, "md", "fraud-scorer")
                jobs = get(cluster, namespace, "jobs")
                rt = get(cluster, namespace, "rt", "fraud-v2-replay")
                ok = (
                    md
                    and md.get("status", {}).get("phase") == "NonProduction"
                    and jobs
                    and jobs["items"]
                    and rt
                    and rt.get("status", {}).get("phase") == "Running"
                )
                return ok or None

            poll_until(moved, timeout=90, message="operator acting with the chart's RBAC")
        text = log.read_text()
        # an API refusal shows as "Forbidden" (kopf) or "(HTTP 403)" (our client's errors)
        assert "forbidden" not in text.lower(), text[-3000:]
        assert "HTTP 403" not in text, text[-3000:]
        deployments = get(
            cluster, namespace, "deployments", "-l", "modelrollout.io/name=fraud-scorer"
        )
        assert len(deployments["items"]) == 2
        events = get(cluster, namespace, "events")["items"]
        assert any(e["reason"] == "NewCandidate" for e in events)
    finally:
        cluster_helm.run("uninstall", release, "--namespace", namespace, "--ignore-not-found")
