"""The Prometheus provider against a real Prometheus, and the provider factory.

What comes back for each kind of result: one value, no series, NaN, several series, a
range vector, a syntax error, an address where nothing listens.

Prometheus starts in well under a second, but its first scrape comes only after target
discovery settles, about five seconds later. These tests only read what was scraped, so
they share one server: ``prometheus`` is the factory of ``tests/conftest.py`` with module
scope (the tests using it are still marked ``prometheus``), and ``scraped`` is a server
(its URL) that has scraped :data:`METRICS` at least once.
"""

from __future__ import annotations

import itertools
import math
import socket
import time
from collections.abc import Iterator

import pytest

from modelrollout.core import analysis
from modelrollout.core.api.modeldeployment import MetricProvider as ProviderSpec
from modelrollout.core.api.modeldeployment import ThresholdRange
from modelrollout.core.errors import InvalidSpec
from modelrollout.services.providers import (
    KIND_FIELD,
    MetricQueryError,
    PrometheusProvider,
    make_provider,
)
from support.cluster import BIN_DIR, missing_tools
from support.metrics_target import metrics_target as serve_metrics
from support.prometheus import PrometheusFactory
from support.wait import poll_until

METRICS = """\
# HELP modelrollout_test_requests_total Requests served.
# TYPE modelrollout_test_requests_total counter
modelrollout_test_requests_total{code="200"} 990
modelrollout_test_requests_total{code="500"} 10
# HELP modelrollout_test_drift_score A drift score.
# TYPE modelrollout_test_drift_score gauge
modelrollout_test_drift_score 0.125
"""
JOB = "fraud"


@pytest.fixture(scope="module")
def metrics_target() -> Iterator[str]:
    """A tiny HTTP server exposing METRICS on /metrics; yields its "host:port"."""
    with serve_metrics(METRICS) as target:
        yield target


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusFactory]:
    """The `prometheus` factory of tests/conftest.py, shared by the tests of a module."""
    if missing_tools(["prometheus"]):
        pytest.fail(f"{BIN_DIR / 'prometheus'} is missing (run: make tools)", pytrace=False)
    factory = PrometheusFactory(tmp_path_factory.mktemp("prometheus"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def scraped(prometheus: PrometheusFactory, metrics_target: str) -> str:
    """The URL of a Prometheus that has scraped METRICS from `metrics_target` (job "fraud")."""
    handle = prometheus([metrics_target], job_name=JOB)
    handle.wait_for(f'modelrollout_test_drift_score{{job="{JOB}"}}', timeout=30)
    return handle.url


ERROR_RATIO = (
    'sum(modelrollout_test_requests_total{job="{{ name }}", code=~"5.."})'
    ' / sum(modelrollout_test_requests_total{job="{{ name }}"})'
)


@pytest.fixture
def provider(scraped: str) -> PrometheusProvider:
    return PrometheusProvider(scraped, timeout=5.0)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that is bound but not listening: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


# --- a real Prometheus --------------------------------------------------------------------


def test_a_rendered_slo_query_returns_its_value(provider: PrometheusProvider) -> None:
    promql = analysis.render_query(ERROR_RATIO, {"name": JOB}, field="query")
    value = provider.query(promql)
    assert value == pytest.approx(0.01)
    assert value is not None
    m = analysis.assess(value, None, ThresholdRange(max=0.02), "Inconclusive", "t")
    assert m.phase == "Successful"


@pytest.mark.parametrize(
    ("promql", "expected"),
    [
        ("modelrollout_test_drift_score", 0.125),
        ('modelrollout_test_requests_total{code="500"}', 10.0),
        ("scalar(modelrollout_test_drift_score) * 8", 1.0),
        ("1 + 1", 2.0),
        ("1 / 0", math.inf),
    ],
)
def test_one_sample_or_a_scalar_is_a_value(
    provider: PrometheusProvider, promql: str, expected: float
) -> None:
    assert provider.query(promql) == expected


@pytest.mark.parametrize(
    "promql",
    [
        'modelrollout_test_requests_total{code="404"}',
        'sum(modelrollout_test_requests_total{code="404"})',
        "modelrollout_test_no_such_metric",
    ],
)
def test_no_series_is_no_data(provider: PrometheusProvider, promql: str) -> None:
    assert provider.query(promql) is None


@pytest.mark.parametrize(
    "promql",
    [
        "0 / 0",
        'sum(modelrollout_test_requests_total{code="500"}) * 0 / 0',
        "scalar(modelrollout_test_no_such_metric)",
    ],
)
def test_nan_is_no_data(provider: PrometheusProvider, promql: str) -> None:
    assert provider.query(promql) is None


@pytest.mark.parametrize(
    ("promql", "problem"),
    [
        ("sum((", "parse error: unclosed left parenthesis"),
        ("rate(modelrollout_test_drift_score)", "expected type range vector"),
        ("modelrollout_test_requests_total{", "parse error"),
    ],
)
def test_a_bad_query_names_the_problem(
    provider: PrometheusProvider, promql: str, problem: str
) -> None:
    with pytest.raises(MetricQueryError) as caught:
        provider.query(promql)
    message = str(caught.value)
    assert problem in message
    assert "HTTP 400" in message
    assert "bad_data" in message
    assert "b'" not in message  # not the client library's raw bytes


def test_several_series_are_an_error(provider: PrometheusProvider) -> None:
    with pytest.raises(MetricQueryError, match=r"returned 2 series, not one") as caught:
        provider.query("modelrollout_test_requests_total")
    assert 'code="200"' in str(caught.value)
    assert "sum()" in str(caught.value)


def test_a_range_vector_is_an_error(provider: PrometheusProvider) -> None:
    with pytest.raises(MetricQueryError, match=r"range vector \(1 series\)"):
        provider.query("modelrollout_test_drift_score[1m]")


def test_a_string_is_an_error(provider: PrometheusProvider) -> None:
    with pytest.raises(MetricQueryError, match=r"'ok', which is not a number"):
        provider.query('"ok"')


@pytest.fixture
def history(provider: PrometheusProvider) -> list[tuple[float, float]]:
    """The last 30 s of the gauge, once Prometheus has a sample older than a step (the
    first scrape may be newer than every evaluation instant of the range)."""
    gauge = f'modelrollout_test_drift_score{{job="{JOB}"}}'

    def points() -> list[tuple[float, float]]:
        now = time.time()
        return provider.query_range(gauge, start=now - 30, end=now, step=1)

    return poll_until(points, timeout=30, interval=0.5, message="a history of the gauge")


def test_a_history_is_one_point_per_step(history: list[tuple[float, float]]) -> None:
    assert all(value == 0.125 for _, value in history)
    stamps = [stamp for stamp, _ in history]
    assert stamps == sorted(stamps)
    assert all(b - a == pytest.approx(1.0) for a, b in itertools.pairwise(stamps))
    assert time.time() - 62 <= stamps[0]


def test_a_history_of_nothing_is_empty_and_of_several_series_an_error(
    provider: PrometheusProvider, history: list[tuple[float, float]]
) -> None:
    now = time.time()
    assert provider.query_range("absent_metric_xyz", start=now - 10, end=now, step=1) == []
    with pytest.raises(MetricQueryError, match=r"history query returned 2 series"):
        provider.query_range("modelrollout_test_requests_total", start=now - 10, end=now, step=1)


def test_a_running_prometheus_is_online(provider: PrometheusProvider) -> None:
    assert provider.is_online() is True


def test_an_address_where_nothing_listens(closed_port: int) -> None:
    provider = PrometheusProvider(f"http://127.0.0.1:{closed_port}", timeout=5.0)
    with pytest.raises(MetricQueryError) as caught:
        provider.query("up")
    message = str(caught.value)
    assert message.startswith(f"cannot reach Prometheus at http://127.0.0.1:{closed_port}: ")
    assert "Connection refused" in message
    assert provider.is_online() is False


# --- the factory --------------------------------------------------------------------------


def test_make_provider_builds_prometheus_from_the_spec() -> None:
    spec = ProviderSpec(address="http://prometheus.monitoring:9090/", timeout="1m30s")
    provider = make_provider(spec, bearer_token="t0ken")
    assert isinstance(provider, PrometheusProvider)
    assert provider.address == "http://prometheus.monitoring:9090"
    assert provider.timeout == 90.0


@pytest.mark.parametrize("kind", ["Datadog", "prometheus", ""])
def test_make_provider_rejects_unknown_kinds(kind: str) -> None:
    spec = ProviderSpec.model_construct(kind=kind, address="http://x:9090", timeout="10s")
    with pytest.raises(InvalidSpec) as caught:
        make_provider(spec, bearer_token=None)
    assert caught.value.field == KIND_FIELD == "spec.stages.baking.analysis.provider.kind"
    assert f"unknown metric provider kind {kind!r}" in str(caught.value)
    assert "supported kinds: Prometheus" in str(caught.value)


@pytest.mark.parametrize(("timeout", "problem"), [("0s", "must be positive"), ("10x", "not valid")])
def test_make_provider_rejects_unusable_timeouts(timeout: str, problem: str) -> None:
    spec = ProviderSpec.model_construct(kind="Prometheus", address="http://x:9090", timeout=timeout)
    with pytest.raises(InvalidSpec, match=problem) as caught:
        make_provider(spec, bearer_token=None)
    assert caught.value.field == "spec.stages.baking.analysis.provider.timeout"
