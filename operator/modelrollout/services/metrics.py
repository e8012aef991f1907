"""The operator's own Prometheus metrics, through prometheus_client.

One registry of the operator's own (no process or platform collectors, which would be noise
next to these), served on ``--metrics-port`` at ``/metrics``:

``modelrollout_reconcile_total{kind,result}``
    Reconciles by kind and result (``ok``, ``retry``, ``error``).
``modelrollout_reconcile_errors_total{kind}``
    Reconciles that ended in an error or a retry.
``modelrollout_reconcile_duration_seconds{kind}``
    How long a reconcile takes (histogram).
``modelrollout_phase{kind,namespace,name,phase}``
    1 for the current phase of each object, 0 for the others.
``modelrollout_candidate_weight{namespace,name}``
    Percent of live traffic sent to the candidate.
``modelrollout_analysis_measurements_total{namespace,name,metric,phase}``
    Analysis measurements (SLOs and triggers) by outcome.
``modelrollout_rollbacks_total{namespace,name,reason}``
    Rollbacks by reason.
``modelrollout_rollback_seconds``
    From the first failing measurement of a bake to its candidate's weight back at 0
    (histogram).
``modelrollout_leader``
    1 while this replica holds the leader-election Lease.
``modelrollout_api_requests_total{verb,resource}``
    Requests to the Kubernetes API (see :mod:`.apicalls`).
``modelrollout_api_requests_per_reconcile{kind}``
    Requests to the Kubernetes API made by one reconcile (histogram).
``modelrollout_cache_reads_total{resource,result}``
    Reads answered by the watch-fed cache (``hit``) or sent to the API (``miss``).
``modelrollout_applies_skipped_total{resource}``
    Server-side applies left out because the object already carried the manifest.

The series of an object go when the object does (:func:`forget`).
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# No `*_created` series: they double the output and nobody here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "modelrollout_reconcile",
    "Reconciles by kind and result (ok, retry, error).",
    ["kind", "result"],
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "modelrollout_reconcile_errors",
    "Reconciles that ended in an error or a retry, by kind.",
    ["kind"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "modelrollout_reconcile_duration_seconds",
    "How long one reconcile takes.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
PHASE = Gauge(
    "modelrollout_phase",
    "1 for the current phase of each object.",
    ["kind", "namespace", "name", "phase"],
    registry=REGISTRY,
)
CANDIDATE_WEIGHT = Gauge(
    "modelrollout_candidate_weight",
    "Percent of live traffic sent to the candidate.",
    ["namespace", "name"],
    registry=REGISTRY,
)
MEASUREMENTS = Counter(
    "modelrollout_analysis_measurements",
    "Analysis measurements (SLOs and triggers) by outcome.",
    ["namespace", "name", "metric", "phase"],
    registry=REGISTRY,
)
ANALYSIS_VALUE = Gauge(
    "modelrollout_analysis_value",
    "The latest value of each SLO and trigger: a query's value, the features drifted, a "
    "quality measure (NaN when the latest measurement had no value).",
    ["namespace", "name", "metric"],
    registry=REGISTRY,
)
ANALYSIS_BOUND = Gauge(
    "modelrollout_analysis_bound",
    "The range the latest value was judged against, when it was learned with it (an "
    "anomaly band, a quality floor relative to stable).",
    ["namespace", "name", "metric", "bound"],
    registry=REGISTRY,
)
ROLLBACKS = Counter(
    "modelrollout_rollbacks",
    "Rollbacks by reason.",
    ["namespace", "name", "reason"],
    registry=REGISTRY,
)
ROLLBACK_SECONDS = Histogram(
    "modelrollout_rollback_seconds",
    "Seconds from the first failing measurement of a bake to its candidate weight at 0.",
    buckets=(1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0),
    registry=REGISTRY,
)
LEADER = Gauge(
    "modelrollout_leader",
    "1 while this replica holds the leader-election Lease.",
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "modelrollout_api_requests",
    "Requests to the Kubernetes API by verb and resource.",
    ["verb", "resource"],
    registry=REGISTRY,
)
API_REQUESTS_PER_RECONCILE = Histogram(
    "modelrollout_api_requests_per_reconcile",
    "Requests to the Kubernetes API made by one reconcile.",
    ["kind"],
    buckets=(0, 1, 2, 3, 5, 8, 12, 20, 50),
    registry=REGISTRY,
)
CACHE_READS = Counter(
    "modelrollout_cache_reads",
    "Reads of watched objects: answered by the cache (hit) or sent to the API (miss).",
    ["resource", "result"],
    registry=REGISTRY,
)
APPLIES_SKIPPED = Counter(
    "modelrollout_applies_skipped",
    "Server-side applies left out because the object already carried the manifest.",
    ["resource"],
    registry=REGISTRY,
)


def render() -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(REGISTRY)


def forget(kind: str, namespace: str, name: str) -> None:
    """Remove the series of an object that is gone."""
    PHASE.remove_by_labels({"kind": kind, "namespace": namespace, "name": name})
    if kind == "ModelDeployment":
        for metric in (CANDIDATE_WEIGHT, MEASUREMENTS, ANALYSIS_VALUE, ANALYSIS_BOUND, ROLLBACKS):
            metric.remove_by_labels({"namespace": namespace, "name": name})
