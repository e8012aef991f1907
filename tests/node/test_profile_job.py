"""``modelrollout profile --job`` on the node: the shards of a dataset in a ConfigMap run as
the pods of an Indexed Job under Pod Security "restricted", and the command line, holding
only the permissions of examples/profile-job-rbac.yaml, merges their profiles into the
profile one process makes of the whole, writes it into a ConfigMap and deletes the Job.
A bad data reference fails with the shard named and the end of its log."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from kubernetes import client

from factories import categorical_feature as categorical
from factories import numeric_feature as numeric
from modelrollout.core.monitoring.profile import Profile
from modelrollout.services.monitoring.datasets import ReadOptions, profile_dataset
from support.cluster import REPO_ROOT, Cluster
from support.kube import get
from support.wait import poll_until

EVENTS = 4000
SHARDS = 3
QUANTILES = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]


def dataset(n: int, seed: int = 11) -> str:
    """``n`` events: two numeric features, a categorical one, predictions and labels."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        amount = round(rng.lognormvariate(3, 1), 2)
        age = rng.randint(18, 90)
        event = {
            "id": f"e{i}",
            "payload": {
                "amount": amount,
                "age": age if i % 50 else None,  # some missing values
                "country": rng.choice(["fr", "de", "it", "es", "pl"]),
            },
            "response": {"predictions": [round(1 / (1 + 2.718 ** (-(amount - 20) / 10)), 4)]},
            "label": int(rng.random() < 0.2),
        }
        lines.append(json.dumps(event, separators=(",", ":")))
    return "\n".join(lines) + "\n"


def restricted_kubeconfig(
    cluster: Cluster, namespace: str, kube_api: client.ApiClient, tmp_path: Path
) -> Path:
    """A kubeconfig for a ServiceAccount bound to the example Role, and nothing else."""
    docs = list(yaml.safe_load_all((REPO_ROOT / "examples" / "profile-job-rbac.yaml").read_text()))
    role, binding = docs
    binding["subjects"] = [{"kind": "ServiceAccount", "name": "profiler", "namespace": namespace}]
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "profiler"}})
    rbac = client.RbacAuthorizationV1Api(kube_api)
    rbac.create_namespaced_role(namespace, role)
    rbac.create_namespaced_role_binding(namespace, binding)
    token = cluster.kubectl(
        "create", "token", "profiler", "-n", namespace, "--duration", "1h"
    ).stdout.strip()
    kubeconfig = tmp_path / "profiler.kubeconfig"
    shutil.copy(cluster.kubeconfig, kubeconfig)
    config = ["--kubeconfig", str(kubeconfig), "config"]
    cluster.kubectl(*config, "set-credentials", "profiler", f"--token={token}")
    cluster.kubectl(*config, "set-context", "--current", "--user=profiler")
    cluster.kubectl(*config, "set-context", "--current", f"--namespace={namespace}")
    # what the Role allows and what it does not
    can = ["--kubeconfig", str(kubeconfig), "auth", "can-i"]
    assert cluster.kubectl(*can, "create", "jobs.batch").stdout.strip() == "yes"
    assert cluster.kubectl(*can, "get", "pods", "--subresource=log").stdout.strip() == "yes"
    assert cluster.kubectl(*can, "list", "secrets", check=False).stdout.strip() == "no"
    return kubeconfig


def profile_job(kubeconfig: Path, image: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``modelrollout profile --job`` as the user of ``kubeconfig``, in its namespace."""
    return subprocess.run(
        [sys.executable, "-m", "modelrollout", "profile", "--job",
         "--kubeconfig", str(kubeconfig), "--image", image, *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def no_profile_jobs(cluster: Cluster, namespace: str) -> bool:
    selector = ["-l", "app.kubernetes.io/component=profile"]
    jobs = (get(cluster, namespace, "jobs", *selector) or {}).get("items", [])
    pods = (get(cluster, namespace, "pods", *selector) or {}).get("items", [])
    return not jobs and not pods


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text(dataset(EVENTS))
    return path


@pytest.fixture
def events_config_map(kube_api: client.ApiClient, namespace: str, events_file: Path) -> str:
    """The dataset as ConfigMap ``events``, key ``events.jsonl`` (about 0.5 MB)."""
    body = {"metadata": {"name": "events"}, "data": {"events.jsonl": events_file.read_text()}}
    client.CoreV1Api(kube_api).create_namespaced_config_map(namespace, body)
    return "events/events.jsonl"


def test_profile_job_merges_the_shards_into_the_profile_of_the_whole(
    cluster: Cluster,
    namespace: str,
    kube_api: client.ApiClient,
    operator_image: str,
    events_file: Path,
    events_config_map: str,
    tmp_path: Path,
) -> None:
    kubeconfig = restricted_kubeconfig(cluster, namespace, kube_api, tmp_path)
    output = tmp_path / "baseline.json"
    started = time.monotonic()
    done = profile_job(
        kubeconfig, operator_image,
        "--data-configmap", events_config_map, "--shard-count", str(SHARDS),
        "--to-configmap", "baseline", "--output", str(output), "--timeout", "4m",
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    print(f"\nprofile --job, {EVENTS} events in {SHARDS} shards: {seconds:.1f}s\n{done.stderr}")
    assert f"{SHARDS} shard(s) on the cluster in" in done.stderr
    assert f"written to ConfigMap {namespace}/baseline key profile.json" in done.stderr

    stored = get(cluster, namespace, "configmap", "baseline")
    assert stored is not None
    assert stored["data"]["profile.json"] == output.read_text()
    merged = Profile.model_validate_json(output.read_text())
    whole = profile_dataset(events_file, ReadOptions())

    # counts exact
    assert (merged.rows, merged.malformed, merged.shards) == (EVENTS, 0, SHARDS)
    assert merged.source == whole.source
    assert sorted(merged.features) == sorted(whole.features)
    assert sorted(merged.features) == ["@label", "@prediction", "age", "amount", "country"]
    for name in ("country", "@label"):
        assert categorical(merged, name) == categorical(whole, name)
    payloads = [json.loads(line)["payload"] for line in events_file.read_text().splitlines()]
    raw = {
        name: np.array([p[name] for p in payloads if p[name] is not None], dtype=float)
        for name in ("amount", "age")
    }
    for name in ("amount", "age", "@prediction"):
        got, want = numeric(merged, name), numeric(whole, name)
        assert (got.count, got.missing, got.invalid) == (want.count, want.missing, want.invalid)
        assert (got.min, got.max) == (want.min, want.max)
        assert got.mean == pytest.approx(want.mean, rel=1e-12)
        assert got.std == pytest.approx(want.std, rel=1e-9)
    assert numeric(merged, "age").missing == EVENTS // 50

    # quantiles within the sketch's rank error, against the raw values
    bound = merged.rank_error
    for name, values in raw.items():
        ordered = np.sort(values)
        sketch = numeric(merged, name).quantile_sketch()
        assert sketch.n == len(values)
        for q, x in zip(QUANTILES, sketch.quantiles(QUANTILES), strict=True):
            below = np.searchsorted(ordered, x, side="left") / len(values)
            at_or_below = np.searchsorted(ordered, x, side="right") / len(values)
            assert below - bound <= q <= at_or_below + bound, (name, q, x, below, at_or_below)

    poll_until(
        lambda: no_profile_jobs(cluster, namespace),
        timeout=60,
        interval=0.5,
        message="the profile Job and its pods deleted",
    )


def test_a_bad_data_reference_names_the_shard_and_the_job_is_deleted(
    cluster: Cluster,
    namespace: str,
    kube_api: client.ApiClient,
    operator_image: str,
    events_config_map: str,
    tmp_path: Path,
) -> None:
    kubeconfig = restricted_kubeconfig(cluster, namespace, kube_api, tmp_path)
    failed = profile_job(
        kubeconfig, operator_image,
        "--data-configmap", "events/missing.jsonl", "--shard-count", str(SHARDS),
        "--to-configmap", "baseline", "--timeout", "3m",
    )  # fmt: skip
    assert failed.returncode == 3, failed.stderr
    err = failed.stderr
    print(f"\n{err}")
    assert "modelrollout profile: shard " in err
    assert ") failed: " in err
    assert "/data/missing.jsonl: does not exist or is not a file" in err
    assert "the data: ConfigMap events key missing.jsonl" in err
    assert get(cluster, namespace, "configmap", "baseline") is None
    poll_until(
        lambda: no_profile_jobs(cluster, namespace),
        timeout=60,
        interval=0.5,
        message="the failed profile Job and its pods deleted",
    )
