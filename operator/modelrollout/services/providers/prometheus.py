"""Prometheus as a metric provider, through prometheus-api-client's ``custom_query``.

The choices, and why:

* **A fresh HTTP session per query.** SLOs are evaluated once per interval, so reusing
  connections buys nothing, while a provider that holds no connection needs no closing and
  can be shared between threads.
* **No retries inside a query.** A failed query becomes an Error measurement and the SLO's
  ``consecutiveErrorLimit`` decides how many in a row are tolerated. The client library's
  default (three retries with back-off) would hide errors and could stretch a single
  evaluation past the analysis interval.
* **One timeout for both ends.** ``provider.timeout`` bounds the HTTP request and is also
  sent as Prometheus' own ``timeout`` parameter, so an expensive query is stopped on the
  server rather than left running after the operator gave up.
* **Exactly one number.** An SLO compares one value with its range. A result with several
  series is an error, never "the first one": Prometheus does not order series, and the
  candidate would be judged on whichever happened to come first. No series, or NaN (for
  example an error ratio with no requests, ``0/0``), is "no data", which the analysis
  never counts as a pass. Infinities are returned as they are and judged by the analysis.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from modelrollout.core.api import modeldeployment as api
from modelrollout.core.api.base import parse_duration
from modelrollout.core.errors import InvalidSpec
from modelrollout.services.providers.base import MetricQueryError

TIMEOUT_FIELD = "spec.stages.baking.analysis.provider.timeout"
ONLINE_QUERY = "vector(1)"
SERIES_SHOWN = 3
BODY_SHOWN = 300

# prometheus-api-client reports a non-200 answer as "HTTP Status Code <n> (<repr of body>)".
_HTTP_ERROR = re.compile(r"HTTP Status Code (\d+) \((b(['\"]).*\3)\)\Z", re.DOTALL)


class PrometheusProvider:
    """Instant queries against the Prometheus HTTP API at ``address``."""

    def __init__(self, address: str, *, timeout: float, bearer_token: str | None = None) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.address = address.rstrip("/")
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else None

    @classmethod
    def from_spec(cls, spec: api.MetricProvider, *, bearer_token: str | None) -> PrometheusProvider:
        """The provider a ``provider`` block of the spec describes."""
        try:
            timeout = parse_duration(spec.timeout)
        except ValueError as err:
            raise InvalidSpec(TIMEOUT_FIELD, str(err)) from err
        if timeout <= 0:
            raise InvalidSpec(TIMEOUT_FIELD, f"the timeout {spec.timeout!r} must be positive")
        return cls(spec.address, timeout=timeout, bearer_token=bearer_token)

    def query(self, promql: str) -> float | None:
        """The single value of ``promql`` now; None for no data. See the module docstring."""
        return _single_value(
            self._call(
                lambda client: client.custom_query(
                    promql,
                    params={"timeout": f"{self.timeout:g}"},
                    timeout=self.timeout,  # type: ignore[arg-type]
                )
            )
        )

    def query_vector(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """Every series of ``promql`` now, as ``(labels, value)``; NaNs left out."""
        result = self._call(
            lambda client: client.custom_query(
                promql,
                params={"timeout": f"{self.timeout:g}"},
                timeout=self.timeout,  # type: ignore[arg-type]
            )
        )
        return _vector(result)

    def query_range(
        self, promql: str, *, start: float, end: float, step: float
    ) -> list[tuple[float, float]]:
        """The history of ``promql``, one ``(unix time, value)`` every ``step`` seconds from
        ``start`` to ``end``; empty for no data. The query must give one series."""
        result = self._call(
            lambda client: client.custom_query_range(
                promql,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=f"{step:g}s",
                params={"timeout": f"{self.timeout:g}"},
            )
        )
        return _single_series(result)

    def _call(self, fn: Callable[[PrometheusConnect], Any]) -> Any:
        """Run one request with the error handling the module docstring describes."""
        # No retries, and read=False so that a read timeout surfaces as a timeout rather
        # than as "max retries exceeded". The library annotates headers as a dict and
        # timeouts as int; it hands both to requests, which takes None and float seconds.
        client = PrometheusConnect(
            url=self.address,
            headers=self._headers,  # type: ignore[arg-type]
            retry=Retry(total=0, read=False),
            timeout=self.timeout,  # type: ignore[arg-type]
        )
        try:
            return fn(client)
        except PrometheusApiClientException as err:
            raise MetricQueryError(self._answered(str(err))) from err
        except (ValueError, KeyError, TypeError) as err:
            # A 200 answer that is not the API's JSON: the address is not Prometheus' API
            # (a UI, a proxy's login page...). requests' JSON error is also a ValueError.
            raise MetricQueryError(
                f"{self.address} did not answer like the Prometheus HTTP API "
                f"({type(err).__name__}: {err}); check the provider address"
            ) from err
        except requests.Timeout as err:
            raise MetricQueryError(
                f"Prometheus at {self.address} did not answer within {self.timeout:g}s"
            ) from err
        except requests.RequestException as err:
            raise MetricQueryError(
                f"cannot reach Prometheus at {self.address}: {_reason(err)}"
            ) from err
        finally:
            client.close()

    def is_online(self) -> bool:
        """Whether ``vector(1)`` comes back as 1, as Flagger checks it."""
        try:
            return self.query(ONLINE_QUERY) == 1.0
        except MetricQueryError:
            return False

    def _answered(self, text: str) -> str:
        """A readable message from the library's report of a non-200 answer."""
        match = _HTTP_ERROR.match(text)
        if match is None:
            return f"Prometheus at {self.address} failed the query: {text}"
        status = match.group(1)
        try:
            body = ast.literal_eval(match.group(2)).decode("utf-8", "replace")
        except (ValueError, SyntaxError, AttributeError):
            body = match.group(2)
        try:
            payload = json.loads(body)
            detail = f"({payload['errorType']}) {payload['error']}"
        except (ValueError, KeyError, TypeError):
            detail = " ".join(body.split())[:BODY_SHOWN] or "an empty body"
        return f"Prometheus at {self.address} answered HTTP {status}: {detail}"


def _reason(err: requests.RequestException) -> str:
    """The innermost cause of a connection error, without urllib3's retry wrapping."""
    cause: object = err.args[0] if err.args else err
    reason = getattr(cause, "reason", None)
    return str(reason if reason is not None else cause)


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        raise MetricQueryError(f"the query returned {text!r}, which is not a number") from None
    return None if math.isnan(value) else value


def _labels(series: dict[str, Any]) -> str:
    labels = dict(series.get("metric") or {})
    name = labels.pop("__name__", "")
    inner = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _single_series(result: Any) -> list[tuple[float, float]]:
    """The points of the one series of a range query's ``data.result``; NaNs left out."""
    if not isinstance(result, list):
        raise MetricQueryError(f"unexpected query result {result!r:.{BODY_SHOWN}}")
    if not result:
        return []
    if len(result) > 1:
        shown = ", ".join(_labels(series) for series in result[:SERIES_SHOWN])
        raise MetricQueryError(
            f"the history query returned {len(result)} series, not one ({shown}); aggregate "
            "them, for example with sum() or max()"
        )
    points = []
    try:
        for stamp, text in result[0]["values"]:
            value = _number(text)
            if value is not None:
                points.append((float(stamp), value))
    except (KeyError, TypeError, ValueError):
        raise MetricQueryError(f"unexpected query result {result!r:.{BODY_SHOWN}}") from None
    return points


def _vector(result: Any) -> list[tuple[dict[str, str], float]]:
    """The series of an instant query's ``data.result`` with their labels; NaNs left out."""
    if not isinstance(result, list) or any(not isinstance(s, dict) for s in result):
        raise MetricQueryError(f"the query did not return an instant vector: {result!r:.200}")
    found = []
    try:
        for series in result:
            value = _number(series["value"][1])
            if value is not None:
                found.append(({str(k): str(v) for k, v in series["metric"].items()}, value))
    except (KeyError, TypeError, IndexError):
        raise MetricQueryError(f"unexpected query result {result!r:.{BODY_SHOWN}}") from None
    return found


def _single_value(result: Any) -> float | None:
    """One number out of the ``data.result`` of an instant query."""
    if not isinstance(result, list):
        raise MetricQueryError(f"unexpected query result {result!r:.{BODY_SHOWN}}")
    if not result:
        return None
    if not isinstance(result[0], dict):
        # A scalar or a string: [timestamp, "value"].
        if len(result) != 2:
            raise MetricQueryError(f"unexpected query result {result!r:.{BODY_SHOWN}}")
        return _number(result[1])
    if any("values" in series for series in result):
        raise MetricQueryError(
            f"the query returned a range vector ({len(result)} series); it must return one "
            "instant value: drop the [range] selector or wrap it in a function such as "
            "rate() or avg_over_time()"
        )
    if len(result) > 1:
        shown = ", ".join(_labels(series) for series in result[:SERIES_SHOWN])
        more = ", ..." if len(result) > SERIES_SHOWN else ""
        raise MetricQueryError(
            f"the query returned {len(result)} series, not one ({shown}{more}); aggregate "
            "them, for example with sum() or max()"
        )
    try:
        value = result[0]["value"][1]
    except (KeyError, IndexError, TypeError):
        raise MetricQueryError(f"unexpected query result {result!r:.{BODY_SHOWN}}") from None
    return _number(value)
