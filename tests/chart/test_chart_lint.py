"""`helm lint`, plain and strict, with default and non-default values."""

from __future__ import annotations

import pytest
import yaml

from chart.chart_support import CHART_DIR, Helm

NON_DEFAULT = {
    "rbac": {"scope": "namespace"},
    "watchNamespaces": ["team-a", "team-b"],
    "serviceMonitor": {"enabled": True},
    "crds": {"install": False, "keep": False},
    "image": {"repository": "registry.example.com/ml/modelrollout", "tag": "1.2.3"},
}


@pytest.mark.parametrize("strict", [False, True], ids=["plain", "strict"])
@pytest.mark.parametrize("values", [{}, NON_DEFAULT], ids=["defaults", "non-default"])
def test_helm_lint(helm: Helm, strict: bool, values: dict[str, object]) -> None:
    args = ["lint", str(CHART_DIR), "--values", "-"]
    if strict:
        args.append("--strict")
    result = helm.run(*args, input=yaml.safe_dump(values))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "modelrollout"
    assert chart["version"] == "0.1.0"
    assert chart["appVersion"] == "0.1.0"
    assert chart["kubeVersion"] == ">=1.30.0-0"
    assert chart["description"]
    assert chart["keywords"]
