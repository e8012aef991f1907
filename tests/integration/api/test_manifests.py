"""The CRDs in a real apiserver: examples are accepted, invalid manifests are rejected
with a message naming the field, and the status subresource keeps what it must."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modelrollout.core.api.modeldeployment import ModelDeployment
from modelrollout.core.api.replaytest import ReplayTest
from support.cluster import REPO_ROOT, Cluster

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))
INVALID = sorted((REPO_ROOT / "tests" / "manifests" / "invalid").glob("*.yaml"))
MODELS = {"ModelDeployment": ModelDeployment, "ReplayTest": ReplayTest}


def _expectation(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: '"
    return first.removeprefix("# expect: ")


def test_there_are_examples_and_invalid_manifests():
    assert len(EXAMPLES) >= 4
    assert len(INVALID) >= 20


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_accepted_and_parse_back(cluster: Cluster, namespace: str, path: Path):
    applied = cluster.kubectl("apply", "-n", namespace, "-f", str(path))
    assert applied.returncode == 0, applied.stderr
    for doc in yaml.safe_load_all(path.read_text()):
        assert "namespace" not in doc["metadata"], "examples must apply into any namespace"
        got = cluster.kubectl(
            "get", doc["kind"], doc["metadata"]["name"], "-n", namespace, "-o", "json"
        )
        obj = json.loads(got.stdout)
        model = MODELS.get(obj["kind"])
        if model is not None:
            # what the apiserver stored (with its defaults) is valid for the models too
            model.model_validate({k: v for k, v in obj.items() if k != "status"})
            # nothing the user wrote was pruned by the schema
            assert _missing(doc["spec"], obj["spec"], "spec") == []


def _missing(written: object, stored: object, path: str) -> list[str]:
    if isinstance(written, dict) and isinstance(stored, dict):
        out: list[str] = []
        for key, value in written.items():
            if key not in stored:
                out.append(f"{path}.{key}")
            else:
                out += _missing(value, stored[key], f"{path}.{key}")
        return out
    if isinstance(written, list) and isinstance(stored, list) and len(written) == len(stored):
        return [
            m
            for i, (a, b) in enumerate(zip(written, stored, strict=True))
            for m in _missing(a, b, f"{path}[{i}]")
        ]
    return [] if written == stored else [path]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_manifests_are_rejected_naming_the_field(
    cluster: Cluster, namespace: str, path: Path
):
    expected = _expectation(path)
    result = cluster.kubectl("apply", "-n", namespace, "-f", str(path), check=False)
    assert result.returncode != 0, f"{path.name} was accepted"
    assert expected in result.stderr, result.stderr
    listed = cluster.kubectl("get", "modeldeployments,replaytests", "-n", namespace, "-o", "name")
    assert listed.stdout.strip() == ""


def test_status_subresource_keeps_operator_fields_and_prunes_unknown(
    cluster: Cluster, namespace: str
):
    cluster.kubectl(
        "apply", "-n", namespace, "-f", str(REPO_ROOT / "examples" / "modeldeployment.yaml")
    )
    patch = {
        "status": {
            "phase": "Baking",
            "kopf": {"progress": {"h": {"retries": 1}}},
            "bogus": "dropped",
            "traffic": {"candidateWeight": 10},
        }
    }
    cluster.kubectl(
        "patch",
        "modeldeployment",
        "fraud-scorer",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(patch),
    )
    obj = json.loads(
        cluster.kubectl("get", "md", "fraud-scorer", "-n", namespace, "-o", "json").stdout
    )
    assert obj["status"]["phase"] == "Baking"
    assert obj["status"]["kopf"] == {"progress": {"h": {"retries": 1}}}
    assert "bogus" not in obj["status"]
    # a status write does not touch the spec, and a spec write does not touch the status
    assert obj["metadata"]["generation"] == 1
    wide = cluster.kubectl("get", "md", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == [
        "NAME",
        "PHASE",
        "STABLE",
        "CANDIDATE",
        "WEIGHT",
        "AGE",
        "STEP",
        "MESSAGE",
    ]
    assert wide[1].split()[:2] == ["fraud-scorer", "Baking"]
    assert wide[1].split()[2] == "10"


def test_kubectl_explain_prints_descriptions(cluster: Cluster):
    out = cluster.kubectl("explain", "replaytest.spec.rate").stdout
    assert "transaction rate" in out
    out = cluster.kubectl("explain", "modeldeployment.spec.stages.baking.steps.weight").stdout
    assert "Percent of live traffic" in out


def test_short_names_and_categories(cluster: Cluster, namespace: str):
    for name in ("md", "rt", "modelrollout"):
        result = cluster.kubectl("get", name, "-n", namespace)
        assert result.returncode == 0, result.stderr
