"""SLO presets: each preset of each runtime expands to PromQL over that runtime's metric
names, scoped to the pods of the version under analysis."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelrollout.core import analysis, presets
from modelrollout.core.api.modeldeployment import Slo

POD = 'namespace="{{ namespace }}",pod=~"{{ candidate_service }}-[a-z0-9]+-[a-z0-9]+"'
VARIABLES = {"namespace": "shop", "candidate_service": "fraud-candidate", "interval": "1m"}


@pytest.mark.parametrize(
    ("preset", "runtime", "metrics", "shape"),
    [
        ("latency-p99", "modelrollout", ["modelserver_request_duration_seconds_bucket"],
         "histogram_quantile(0.99, sum by (le) (rate("),
        ("error-rate", "modelrollout", ["modelserver_requests_total"], 'code=~"5.."'),
        ("throughput", "modelrollout", ["modelserver_requests_total"], "sum(rate("),
        ("latency-p99", "kserve", ["request_predict_seconds_bucket"],
         "histogram_quantile(0.99, sum by (le) (rate("),
        ("error-rate", "kserve",
         ["request_preprocess_seconds_count", "request_postprocess_seconds_count"], "clamp_min("),
        ("throughput", "kserve", ["request_preprocess_seconds_count"], "sum(rate("),
        ("latency-p99", "mlserver", ["rest_server_request_duration_seconds_bucket"],
         'path=~"/v2/models/.+/infer"'),
        ("error-rate", "mlserver",
         ["model_infer_request_failure_total", "model_infer_request_success_total"], " / ("),
        ("throughput", "mlserver",
         ["model_infer_request_success_total", "model_infer_request_failure_total"], " + "),
        ("latency-p99", "triton", ["nv_inference_request_summary_us"], 'quantile="0.99"'),
        ("error-rate", "triton", ["nv_inference_request_failure", "nv_inference_request_success"],
         " / ("),
        ("throughput", "triton", ["nv_inference_request_success", "nv_inference_request_failure"],
         " + "),
    ],
)  # fmt: skip
def test_each_preset_reads_the_runtimes_metric_names(preset, runtime, metrics, shape):
    query = presets.expand(preset, runtime)
    found = set(re.findall(r"([a-z_:]+)\{", query))
    assert found == set(metrics)
    assert shape in query
    # every series is the candidate's pods in the model's namespace
    assert query.count("{" + POD) == len(re.findall(r"[a-z_:]+\{", query))
    if preset != "latency-p99" or runtime != "triton":  # a summary has its own window
        assert query.count("[{{ interval }}]") == query.count("{" + POD)


def test_every_preset_of_every_runtime_expands_and_renders():
    assert len(presets.RUNTIMES) * len(presets.PRESETS) == 12
    for runtime in presets.RUNTIMES:
        for preset in presets.PRESETS:
            query = presets.expand(preset, runtime)
            rendered = analysis.render_query(query, VARIABLES, field="slos[0].preset")
            assert "{{" not in rendered
            assert 'pod=~"fraud-candidate-[a-z0-9]+-[a-z0-9]+"' in rendered
            assert rendered.count("(") == rendered.count(")")


@pytest.mark.parametrize(
    ("runtime", "matcher"),
    [("modelrollout", 'model="m1"'), ("kserve", 'model_name="m1"'), ("mlserver", 'model="m1"'),
     ("triton", 'model="m1"')],
)  # fmt: skip
def test_the_model_filter_uses_the_runtimes_model_label(runtime, matcher):
    for preset in presets.PRESETS:
        query = presets.expand(preset, runtime, "m1")
        if runtime == "mlserver" and preset == "latency-p99":
            assert "m1" not in query  # MLServer's REST histogram has no model label
        else:
            assert query.count(matcher) == len(re.findall(r"[a-z_:]+\{", query)), query
    assert "m1" not in presets.expand("error-rate", runtime)


def test_the_error_rate_divides_by_the_whole_total():
    # mlserver: failures / (successes + failures), not failures / successes + failures
    query = presets.expand("error-rate", "mlserver")
    failed, _, total = query.partition(" / ")
    assert total.startswith("(")
    assert total.endswith(")")
    assert "model_infer_request_failure_total" in failed
    assert "model_infer_request_success_total" in total
    assert "model_infer_request_failure_total" in total


def _slo_schemas(node: object) -> list[dict[str, Any]]:
    """Every schema in ``node`` with a ``preset`` property: the SLOs of the CRD."""
    if isinstance(node, list):
        return [found for item in node for found in _slo_schemas(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if "preset" in node.get("properties", {}) else []
    return found + [schema for value in node.values() for schema in _slo_schemas(value)]


def test_the_crd_lists_every_expansion_and_accepts_every_preset_and_runtime():
    crd = Path(__file__).parents[3] / "crds" / "modelrollout.io_modeldeployments.yaml"
    slos = _slo_schemas(yaml.safe_load(crd.read_text()))
    assert slos
    for slo in slos:
        preset, runtime = slo["properties"]["preset"], slo["properties"]["runtime"]
        assert tuple(preset["enum"]) == presets.PRESETS
        assert tuple(runtime["enum"]) == presets.RUNTIMES
        for name in presets.RUNTIMES:
            for kind in presets.PRESETS:
                expansion = f"{kind} with {name}: {presets.expand(kind, name)}"
                assert expansion in preset["description"]


RANGE = {"thresholdRange": {"max": 1}}


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ({"name": "a", **RANGE}, "exactly one of query and preset must be set"),
        ({"name": "a", "query": "up", "preset": "throughput", "runtime": "kserve", **RANGE},
         "exactly one of query and preset must be set"),
        ({"name": "a", "preset": "throughput", **RANGE}, "runtime is required with preset"),
        ({"name": "a", "query": "up", "runtime": "kserve", **RANGE},
         "runtime and model go with preset only"),
        ({"name": "a", "query": "up", "model": "m", **RANGE},
         "runtime and model go with preset only"),
        ({"name": "a", "preset": "p50", "runtime": "kserve", **RANGE}, "preset"),
        ({"name": "a", "preset": "throughput", "runtime": "torchserve", **RANGE}, "runtime"),
        ({"name": "a", "preset": "throughput", "runtime": "kserve", "model": 'a"b', **RANGE},
         "model"),
    ],
)  # fmt: skip
def test_bad_slos_are_refused_naming_the_field(slo, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        Slo.model_validate(slo)


def test_a_preset_slo_runs_its_expansion_and_a_query_slo_its_query():
    preset = Slo.model_validate(
        {"name": "p99", "preset": "latency-p99", "runtime": "mlserver", **RANGE}
    )
    assert preset.promql() == presets.expand("latency-p99", "mlserver")
    assert Slo.model_validate({"name": "q", "query": "up", **RANGE}).promql() == "up"


def test_the_docs_table_shows_every_expansion():
    docs = (Path(__file__).parents[3] / "docs" / "operator.md").read_text()
    for runtime in presets.RUNTIMES:
        for preset in presets.PRESETS:
            assert f"| `{preset}` | `{runtime}` | `{presets.expand(preset, runtime)}` |" in docs


def test_the_model_filter_may_name_the_spec_model():
    query = presets.expand("throughput", "kserve", "{{ model }}")
    rendered = analysis.render_query(query, {**VARIABLES, "model": "fraud"}, field="x")
    assert 'model_name="fraud"' in rendered
    slo = Slo.model_validate(
        {"name": "a", "preset": "throughput", "runtime": "kserve", "model": "{{ model }}", **RANGE}
    )
    assert slo.promql() == query
