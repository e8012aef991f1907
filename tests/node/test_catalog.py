"""The catalog on the real node: a rollout leaves measured ModelVersion records, a labelled
ramp replay adds a capacity, and `modelrollout catalog list/show/suggest --manifest` reads
them back as a user would."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import yaml

from support.cluster import Cluster
from support.kube import apply, get
from support.node import LiveTraffic, OperatorRelease, baked, wait_phase
from support.wait import poll_until

REQUESTS = (
    'sum(increase(modelserver_requests_total{namespace="{{ namespace }}",'
    'version="{{ version }}"}[{{ range }}]))'
)


def catalog_cli(cluster: Cluster, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelrollout", "catalog", *args, "-n", namespace,
         "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def catalogued(image: str, version: str, prom: str, *extra: str) -> dict[str, Any]:
    md = baked(image, version, prom, *extra)
    md["metadata"]["labels"] = {
        "modelrollout.io/category": "fraud",
        "modelrollout.io/subcategory": "card",
    }
    md["spec"]["model"]["uri"] = f"s3://models/fraud/{version}"
    md["spec"]["catalog"] = {"requestsQuery": REQUESTS, "usageInterval": "2s"}
    return md


def record(cluster: Cluster, namespace: str, version: str) -> dict[str, Any] | None:
    return get(cluster, namespace, "modelversion", f"md-{version}")


def ramp(namespace: str) -> dict[str, Any]:
    """A ramp replay of the stable track, labelled so its capacity goes to v2's record."""
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ReplayTest",
        "metadata": {
            "name": "v2-ramp",
            "labels": {"modelrollout.io/name": "md", "modelrollout.io/version": "v2"},
        },
        "spec": {
            "events": {"configMapKeyRef": {"name": "events", "key": "events.jsonl"}},
            "target": {"service": {"name": "md-stable", "port": 80,
                                   "path": "/v1/models/model:predict"}},
            "rate": {"pattern": {"shape": "ramp", "startRate": 20, "endRate": 200},
                     "duration": "10s"},
            "capacityP99Ms": 500,
            "capacityWindow": "2s",
            "predictionPath": "predictions.0",
        },
    }  # fmt: skip


def test_rollouts_leave_measured_records_that_the_cli_ranks(
    cluster: Cluster,
    namespace: str,
    cluster_operator: OperatorRelease,
    operator_image: str,
    prom: str,
) -> None:
    live = LiveTraffic(cluster.gateway_url, host=f"{namespace}.example", rate=20)
    with live.running():
        apply(cluster, namespace, catalogued(operator_image, "v2", prom))
        wait_phase(cluster, namespace, "Production", stableVersion="v2", timeout=180)
        apply(
            cluster,
            namespace,
            catalogued(operator_image, "v3", prom, "--faults-after-requests", "120",
                       "--error-rate", "0.5"),
        )  # fmt: skip
        wait_phase(cluster, namespace, "RolledBack", timeout=180)
        # usage is measured every 2 s while v2 serves
        v2 = poll_until(
            lambda: (
                r
                if (r := record(cluster, namespace, "v2"))
                and (r.get("status", {}).get("usage", {}).get("liveRequests") or 0) > 0
                else None
            ),
            timeout=60,
            message="v2's record counting live requests",
        )

    md = get(cluster, namespace, "modeldeployment", "md")
    assert md is not None
    owner = v2["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("ModelDeployment", "md",
                                                             md["metadata"]["uid"])  # fmt: skip
    status = v2["status"]
    assert v2["spec"] == {"modelDeployment": "md", "model": md["spec"]["model"]["name"],
                          "version": "v2"}  # fmt: skip
    assert status["stage"] == "Production"
    assert (status["category"], status["subcategory"]) == ("fraud", "card")
    assert status["uri"] == "s3://models/fraud/v2"
    assert [s["stage"] for s in status["stages"]] == ["NonProduction", "Baking", "Production"]
    v1 = record(cluster, namespace, "v1")
    assert v1 is not None
    assert [s["stage"] for s in v1["status"]["stages"]][-2:] == ["Production", "Retired"]
    assert v1["status"]["usage"]["productionSeconds"] > 0
    replay = status["replay"]
    assert replay["verdict"] == "Passed"
    assert replay["requests"] == 100
    assert replay["errorRate"] == 0
    assert 0 < replay["latencyMs"]["p50"] <= replay["latencyMs"]["p99"]
    assert replay["accuracy"] is not None
    assert status["bake"]["outcome"] == "Passed"
    assert [s["name"] for s in status["bake"]["slos"]] == ["error-rate"]
    api = status["api"]
    assert api["source"] == "Inferred"
    assert api["request"]["type"] == "object"
    assert "predictions" in api["response"]["properties"]
    assert status["resources"][0]["container"] == "model"

    v3 = record(cluster, namespace, "v3")
    assert v3 is not None
    assert v3["status"]["stage"] == "RolledBack"
    assert [s["stage"] for s in v3["status"]["stages"]][-1] == "RolledBack"
    assert v3["status"]["bake"]["outcome"] == "RolledBack"

    # A ramp replay of v2 labelled with its deployment and version: its capacity is recorded.
    apply(cluster, namespace, ramp(namespace))
    v2 = poll_until(
        lambda: (
            r if (r := record(cluster, namespace, "v2")) and r["status"].get("capacity") else None
        ),
        timeout=120,
        message="the ramp's capacity in v2's record",
    )
    capacity = v2["status"]["capacity"]
    assert capacity["replayTest"] == "v2-ramp"
    assert capacity["p99TargetMs"] == 500
    assert capacity["windows"] >= 3
    assert capacity["rate"] >= 50, capacity
    assert v2["status"]["replay"]["replayTest"] != "v2-ramp"  # the rollout's replay is kept

    listed = catalog_cli(cluster, namespace, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["MODEL", "VERSION", "CATEGORY", "STAGE"]
    rows = {line.split()[1]: line.split() for line in lines[1:]}
    assert rows["v2"][2:4] == ["fraud/card", "Production"]
    assert rows["v3"][3] == "RolledBack"

    shown = catalog_cli(cluster, namespace, "show", "md/v2")
    assert shown.returncode == 0, shown.stderr
    for words in ("Stage:       Production", "Capacity:", "v2-ramp", "Replay:", "API:"):
        assert words in shown.stdout, shown.stdout
    missing = catalog_cli(cluster, namespace, "show", "md/v9")
    assert missing.returncode == 1
    assert "no record 'md/v9'" in missing.stderr

    ranked = catalog_cli(
        cluster, namespace, "suggest", "--category", "fraud", "--max-p99-ms", "2000",
        "--min-capacity", "10",
    )  # fmt: skip
    assert ranked.returncode == 0, ranked.stderr
    assert ranked.stdout.startswith("1. ")
    assert " v2 " in ranked.stdout.splitlines()[0]
    assert "qualifies" in ranked.stdout.splitlines()[0]
    assert "does not qualify" in ranked.stdout
    assert "it was RolledBack" in ranked.stdout

    printed = catalog_cli(
        cluster, namespace, "suggest", "--category", "fraud", "--min-capacity", "10", "--manifest"
    )  # only v2 has a measured capacity
    assert printed.returncode == 0, printed.stderr
    manifest = yaml.safe_load(printed.stdout)
    assert manifest["spec"]["model"]["version"] == "v2"
    assert manifest["spec"]["model"]["uri"] == "s3://models/fraud/v2"
    assert "status" not in manifest
    assert "uid" not in manifest["metadata"]
    # the apiserver takes it as it is (server-side dry run against the real CRD)
    cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                    input=printed.stdout)  # fmt: skip

    none = catalog_cli(cluster, namespace, "suggest", "--category", "fraud", "--max-p99-ms",
                       "0.001", "--manifest")  # fmt: skip
    assert none.returncode == 1
    assert "no version meets the constraints" in none.stderr
