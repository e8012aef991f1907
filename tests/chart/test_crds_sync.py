"""The chart's CRDs are the repository's CRDs, and its template installs every one of them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart.chart_support import (
    CHART_CRDS_DIR,
    CHART_DIR,
    EXPECTED_CRD_FILES,
    EXPECTED_CRD_NAMES,
    REPO_CRDS_DIR,
    Helm,
    HelmError,
    Manifest,
    by_kind,
    copy_chart,
)

SOURCE = re.compile(r"^# Source: modelrollout/files/crds/(?P<name>\S+)$", re.MULTILINE)


def crd_files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.glob("*.yaml"))}


def without_metadata(text: str) -> list[str]:
    """The lines of a one-document YAML file outside its top-level `metadata` block, without
    comments at column 0 and document markers (the same reading as templates/crds.yaml)."""
    kept: list[str] = []
    in_metadata = False
    for line in text.splitlines():
        if re.match(r"^(---|\.\.\.)\s*$", line) or line.startswith("#"):
            continue
        if re.match(r"^[^\s#]", line):
            in_metadata = re.match(r"^metadata\s*:", line) is not None
        if not in_metadata:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    while kept and not kept[0].strip():
        kept.pop(0)
    return kept


def rendered_crd_documents(helm: Helm, chart: Path, values: dict[str, Any]) -> dict[str, str]:
    """File name -> the text templates/crds.yaml renders for it."""
    output = helm.run(
        "template",
        "modelrollout",
        str(chart),
        "--kube-version",
        "v1.35.0",
        "--show-only",
        "templates/crds.yaml",
        "--values",
        "-",
        input=yaml.safe_dump(values),
    ).stdout
    documents: dict[str, str] = {}
    for document in re.split(r"^---\s*$", output, flags=re.MULTILINE):
        match = SOURCE.search(document)
        if match:
            documents[match["name"]] = document
    return documents


def test_chart_crds_are_identical_copies_of_repository_crds() -> None:
    repository = crd_files(REPO_CRDS_DIR)
    chart = crd_files(CHART_CRDS_DIR)
    assert sorted(repository) == sorted(EXPECTED_CRD_FILES), "crds/ (run: make crds)"
    assert sorted(chart) == sorted(repository), (
        "charts/modelrollout/files/crds/ differs from crds/ (run: make crds)"
    )
    for name, content in repository.items():
        assert chart[name] == content, f"files/crds/{name} differs from crds/{name}"


def test_template_renders_every_crd(helm: Helm) -> None:
    rendered: dict[str, Manifest] = {
        crd["metadata"]["name"]: crd for crd in by_kind(helm.template(), "CustomResourceDefinition")
    }
    files = {path.name: yaml.safe_load(path.read_text()) for path in CHART_CRDS_DIR.glob("*.yaml")}
    assert sorted(rendered) == sorted(crd["metadata"]["name"] for crd in files.values())
    assert sorted(rendered) == sorted(EXPECTED_CRD_NAMES)
    for name, source in files.items():
        crd = rendered[source["metadata"]["name"]]
        assert {k: v for k, v in crd.items() if k != "metadata"} == {
            k: v for k, v in source.items() if k != "metadata"
        }, f"{name} renders a different CRD"
        metadata = crd["metadata"]
        assert metadata["annotations"]["helm.sh/resource-policy"] == "keep"
        assert metadata["labels"]["app.kubernetes.io/instance"] == "modelrollout"
        assert metadata["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        for field in ("labels", "annotations"):
            assert (source["metadata"].get(field) or {}).items() <= metadata[field].items()


def test_template_copies_crds_byte_for_byte(helm: Helm) -> None:
    documents = rendered_crd_documents(helm, CHART_DIR, {})
    files = crd_files(CHART_CRDS_DIR)
    assert sorted(documents) == sorted(files)
    for name, content in files.items():
        assert without_metadata(documents[name]) == without_metadata(content.decode()), name


TRICKY_CRD = """\
---
# A leading comment, a document marker, labels, annotations and a policy that the chart's
# values decide on.
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
    name: widgets.chart-test.modelrollout.io
    labels:
        example.com/owner: platform
    annotations:
        example.com/generated-by: hand
        helm.sh/resource-policy: keep
spec:
    group: chart-test.modelrollout.io
    names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
    scope: Namespaced
    versions:
    -   name: v1alpha1
        served: true
        storage: true
        schema:
            openAPIV3Schema:
                type: object
                description: |
                    Text that looks like YAML structure:
                    metadata:
                    ---

                    kind: Nothing
                properties:
                    size: {type: integer, maximum: 100000000000000000000000}
                    ratio: {type: number, minimum: 0.000001}
status:
    acceptedNames: {kind: "", plural: ""}
    conditions: []
    storedVersions: []
"""


@pytest.mark.parametrize("keep", [True, False])
def test_template_keeps_generator_formatting(helm: Helm, tmp_path: Path, keep: bool) -> None:
    chart = copy_chart(tmp_path / "chart", {"widgets.yaml": TRICKY_CRD})
    values = {"crds": {"keep": keep}}
    document = rendered_crd_documents(helm, chart, values)["widgets.yaml"]
    assert without_metadata(document) == without_metadata(TRICKY_CRD)
    [crd] = by_kind(helm.template(values, chart=chart), "CustomResourceDefinition")
    source = yaml.safe_load(TRICKY_CRD)
    assert {k: v for k, v in crd.items() if k != "metadata"} == {
        k: v for k, v in source.items() if k != "metadata"
    }
    assert crd["metadata"]["name"] == "widgets.chart-test.modelrollout.io"
    assert crd["metadata"]["labels"]["example.com/owner"] == "platform"
    assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == "modelrollout"
    annotations = crd["metadata"]["annotations"]
    assert annotations["example.com/generated-by"] == "hand"
    assert annotations.get("helm.sh/resource-policy") == ("keep" if keep else None)


def test_template_refuses_a_file_that_is_not_a_crd(helm: Helm, tmp_path: Path) -> None:
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: oops\n"
    chart = copy_chart(tmp_path / "chart", {"oops.yaml": config_map})
    with pytest.raises(HelmError, match="expected one CustomResourceDefinition per file"):
        helm.template(chart=chart)
