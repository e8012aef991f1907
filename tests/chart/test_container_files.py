"""The Dockerfile, .dockerignore, kind-config.yaml and the kind quickstart agree with the
chart and with each other (nothing here builds an image or starts kind)."""

from __future__ import annotations

import argparse
import json
import re

import yaml

from chart.chart_support import CHART_DIR, REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
DOCKERIGNORE = (REPO_ROOT / ".dockerignore").read_text().splitlines()
KIND_CONFIG = yaml.safe_load((REPO_ROOT / "kind-config.yaml").read_text())
QUICKSTART = (REPO_ROOT / "docs" / "quickstart-kind.md").read_text()
APP_VERSION = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["appVersion"]


def instructions(name: str) -> list[str]:
    """Arguments of every `name` instruction of the Dockerfile (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    pattern = rf"^{name}\s+(.*)$"
    return [m.group(1).strip() for m in re.finditer(pattern, joined, re.MULTILINE)]


def test_dockerfile_is_multi_stage_from_python_311_slim() -> None:
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE
    stages = instructions("FROM")
    assert stages == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    assert any("pip install --no-cache-dir ." in run for run in instructions("RUN"))
    assert instructions("COPY")[-1] == "--from=build /opt/modelrollout /opt/modelrollout"


def test_dockerfile_runs_the_operator_as_non_root() -> None:
    assert instructions("USER") == ["65532:65532"]
    assert [json.loads(e) for e in instructions("ENTRYPOINT")] == [["modelrollout"]]
    [cmd] = [json.loads(c) for c in instructions("CMD")]
    assert cmd == ["run", "--all-namespaces"]

    from modelrollout.cli import run

    parser = argparse.ArgumentParser(prog="modelrollout")
    run.register(parser.add_subparsers(dest="command"))
    assert parser.parse_args(cmd).all_namespaces is True


def test_dockerfile_has_oci_labels() -> None:
    labels = " ".join(instructions("LABEL"))
    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_dockerignore_keeps_what_the_build_copies() -> None:
    assert "*" in DOCKERIGNORE, "the build context is an allowlist"
    allowed = {line[1:].rstrip("/") for line in DOCKERIGNORE if line.startswith("!")}
    for copy in instructions("COPY"):
        if copy.startswith("--from="):
            continue
        *sources, _destination = copy.split()
        for source in sources:
            assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"
            assert (REPO_ROOT / source).exists(), f"the build copies {source}, which is missing"


def test_kind_config_is_one_control_plane_node_on_kubernetes_1_35() -> None:
    assert KIND_CONFIG["kind"] == "Cluster"
    assert KIND_CONFIG["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    [node] = KIND_CONFIG["nodes"]
    assert node["role"] == "control-plane"
    assert re.fullmatch(r"kindest/node:v1\.35\.\d+(@sha256:[0-9a-f]{64})?", node["image"])


def test_quickstart_matches_the_files_it_uses() -> None:
    commands = "\n".join(re.findall(r"```sh\n(.*?)```", QUICKSTART, re.DOTALL))
    for path in re.findall(r"(?:-f |--config )(\S+\.yaml)", commands):
        assert (REPO_ROOT / path).is_file(), path
    assert "helm install modelrollout charts/modelrollout" in commands
    cluster = KIND_CONFIG["name"]
    assert f"--name {cluster}" in commands
    assert f"kind-{cluster}" in commands
    image = f"modelrollout:{APP_VERSION}"
    assert f"docker build -t {image} ." in commands
    assert f"kind load docker-image {image}" in commands
    assert "--set image.repository=modelrollout" in commands
    # The example model runs from the image the quickstart builds and loads.
    example = yaml.safe_load((REPO_ROOT / "examples" / "modeldeployment.yaml").read_text())
    containers = example["spec"]["workload"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == [image]
    node_image = KIND_CONFIG["nodes"][0]["image"].split("@")[0]
    assert f"`{node_image}`" in QUICKSTART
