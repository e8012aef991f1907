"""What every metric provider offers: one query, one value, or a readable error.

The interface is Flagger's: a provider runs a query and answers with one number, or says
there was no number, or says why the query failed, and can tell whether it is reachable.
Each provider kind lives in its own module; :func:`modelrollout.services.providers.make_provider`
picks one by ``kind`` and rejects any other.

The three outcomes stay apart because :func:`modelrollout.core.analysis.assess` treats them
differently: a value is checked against the SLO's range, "no data" is inconclusive (never a
pass), and an error counts towards the SLO's consecutive-error limit.
"""

from __future__ import annotations

from typing import Protocol

from modelrollout.core.errors import ModelRolloutError


class MetricQueryError(ModelRolloutError):
    """A query that produced no answer: rejected, failed, timed out, or ambiguous.

    The message is meant for the status and Events of the ModelDeployment, so it says what
    went wrong in words (the HTTP status, Prometheus' own error text, the number of series).
    """


class MetricProvider(Protocol):
    """A source of metric values. Calls block; run them off the event loop."""

    def query(self, promql: str) -> float | None:
        """The single value of ``promql`` now.

        None means no data: the query matched no series, or its value is NaN. Raises
        :class:`MetricQueryError` when the query is rejected, the HTTP request fails or
        times out, or the result is not a single value (several series, a range vector,
        a string).
        """
        ...

    def query_range(
        self, promql: str, *, start: float, end: float, step: float
    ) -> list[tuple[float, float]]:
        """The history of ``promql`` as ``(unix time, value)`` points, one every ``step``
        seconds from ``start`` to ``end`` (no data: empty). Raises
        :class:`MetricQueryError` like :meth:`query`, and when the query gives several
        series."""
        ...

    def query_vector(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """Every series of an instant query, as ``(labels, value)``; NaNs left out, no
        data: empty. Raises :class:`MetricQueryError` like :meth:`query`."""
        ...

    def is_online(self) -> bool:
        """Whether the provider answers a trivial query correctly; never raises."""
        ...
