"""SLO presets: a named check (p99 latency, error rate, throughput) written out as PromQL
over the metric names a serving runtime really exports.

Like Flagger's built-in ``request-success-rate`` and ``request-duration`` checks, a preset
spares the user from knowing each model server's metric names. The names below were read
from the ``/metrics`` of the running servers (MLServer 1.7.1 on its metrics port, KServe
0.21.0's ModelServer, this project's ``modelrollout serve-model``); Triton's come from its
documentation only, no Triton server runs in the tests.

Every query is scoped to the pods of the version under analysis by the labels any
Kubernetes pod scrape adds, ``namespace`` and ``pod``: the pods of a Deployment are named
``<deployment>-<replicaset hash>-<suffix>``, and the Deployment is named like the track's
Service, ``{{ candidate_service }}``, which during a production watch names the stable
track that then runs the version under watch. The expansion keeps the ``{{ }}`` variables;
they are filled in when the query runs, as in a hand-written query.

Units: latency in seconds, error rate as a fraction (0 to 1), throughput in requests per
second, all over the last ``{{ interval }}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Preset = Literal["latency-p99", "error-rate", "throughput"]
Runtime = Literal["modelrollout", "kserve", "mlserver", "triton"]

PRESETS: tuple[Preset, ...] = get_args(Preset)
RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)

POD_SELECTOR = 'namespace="{{ namespace }}",pod=~"{{ candidate_service }}-[a-z0-9]+-[a-z0-9]+"'
"""The pods of the Deployment behind ``{{ candidate_service }}``, in the model's namespace."""

WINDOW = "[{{ interval }}]"


@dataclass(frozen=True)
class RuntimeMetrics:
    """How one runtime's series answer the three presets.

    ``model_label`` is the label carrying the served model's name; ``latency_model_label``
    says whether the latency series carry it too. The ``*_selector`` strings are further
    label matchers of the series.
    """

    model_label: str
    latency_bucket: str
    requests: str
    errors: str
    latency_selector: str = ""
    latency_model_label: bool = True
    errors_selector: str = ""
    errors_are_subtracted: bool = False
    latency_scale: str = ""
    latency_summary: bool = False


RUNTIME_METRICS: dict[Runtime, RuntimeMetrics] = {
    # modelserver_requests_total{model,version,code}, modelserver_request_duration_seconds
    "modelrollout": RuntimeMetrics(
        model_label="model",
        latency_bucket="modelserver_request_duration_seconds_bucket",
        requests="modelserver_requests_total",
        errors="modelserver_requests_total",
        errors_selector='code=~"5.."',
    ),
    # request_preprocess_seconds, request_predict_seconds, request_postprocess_seconds
    # (histograms, label model_name). No error counter: a request that reached preprocess
    # and never reached postprocess failed in predict (or a handler raised).
    "kserve": RuntimeMetrics(
        model_label="model_name",
        latency_bucket="request_predict_seconds_bucket",
        requests="request_preprocess_seconds_count",
        errors="request_postprocess_seconds_count",
        errors_are_subtracted=True,
    ),
    # model_infer_request_success_total / _failure_total{model,version}; the per-model
    # duration has no buckets, so the p99 comes from the REST histogram of the infer path
    # (rest_server_request_duration_seconds{path,status_code}, no model label).
    "mlserver": RuntimeMetrics(
        model_label="model",
        latency_bucket="rest_server_request_duration_seconds_bucket",
        latency_selector='path=~"/v2/models/.+/infer"',
        latency_model_label=False,
        requests="model_infer_request_success_total",
        errors="model_infer_request_failure_total",
    ),
    # nv_inference_request_success / _failure{model,version}; the p99 needs
    # --metrics-config summary_latencies=true (nv_inference_request_summary_us{quantile}).
    "triton": RuntimeMetrics(
        model_label="model",
        latency_bucket="nv_inference_request_summary_us",
        latency_selector='quantile="0.99"',
        requests="nv_inference_request_success",
        errors="nv_inference_request_failure",
        latency_scale=" / 1e6",
        latency_summary=True,
    ),
}


def _selector(*matchers: str) -> str:
    return "{" + ",".join(m for m in matchers if m) + "}"


def _model_matcher(label: str, model: str | None) -> str:
    return f'{label}="{model}"' if model else ""


def expand(preset: Preset, runtime: Runtime, model: str | None = None) -> str:
    """The PromQL of ``preset`` for ``runtime``, with the ``{{ }}`` variables left in.

    ``model`` keeps only the series of that served model, where the runtime's series
    carry a model label (MLServer's latency histogram has none: its p99 covers every
    model on the pods).
    """
    metrics = RUNTIME_METRICS[runtime]
    model_match = _model_matcher(metrics.model_label, model)
    if preset == "latency-p99":
        latency_match = model_match if metrics.latency_model_label else ""
        selector = _selector(POD_SELECTOR, metrics.latency_selector, latency_match)
        if metrics.latency_summary:
            return f"max({metrics.latency_bucket}{selector}){metrics.latency_scale}"
        rate = f"rate({metrics.latency_bucket}{selector}{WINDOW})"
        return f"histogram_quantile(0.99, sum by (le) ({rate})){metrics.latency_scale}"
    requests = _rate(metrics.requests, POD_SELECTOR, model_match)
    errors = _rate(metrics.errors, POD_SELECTOR, metrics.errors_selector, model_match)
    if metrics.errors_are_subtracted:  # kserve: started minus finished
        failed = f"clamp_min({requests} - ({errors} or vector(0)), 0)"
        total = requests
    elif metrics.errors == metrics.requests:  # one counter with a status label
        failed, total = f"({errors} or vector(0))", requests
    else:  # separate success and failure counters
        failed = f"({errors} or vector(0))"
        total = f"({requests} or vector(0)) + {failed}"
    if preset == "error-rate":
        return f"{failed} / ({total})"
    return total


def _rate(metric: str, *matchers: str) -> str:
    return f"sum(rate({metric}{_selector(*matchers)}{WINDOW}))"


def _help() -> str:
    """Every expansion, for the field's description (kubectl explain) and docs/api.md."""
    lines = [f"{p} with {r}: {expand(p, r)}" for r in RUNTIMES for p in PRESETS]
    return "Expansions (model adds its label matcher): " + "; ".join(lines) + "."


EXPANSIONS_HELP = _help()
