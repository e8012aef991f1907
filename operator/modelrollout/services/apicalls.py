"""Counting the operator's requests to the Kubernetes API: by verb and resource, and per
reconcile.

Every request the narrow clients make (:mod:`.kube`, :mod:`.gatewayapi_client`) is recorded
here once, before it is sent, whatever its outcome: a refused or failed request costs the
apiserver as much as one that succeeds. Watches are not requests in this sense (kopf holds
them open and they are not made per reconcile), so they are not counted.

Two views of the same count:

* ``modelrollout_api_requests_total{verb,resource}`` for the whole process;
* a :class:`Tally` for one stretch of work in one thread, opened with :func:`tally`. The
  scheduler opens one around each reconcile and exports it as the histogram
  ``modelrollout_api_requests_per_reconcile{kind}``; a benchmark or a test can open its
  own. The tally lives in a context variable, so requests made by other threads (another
  reconcile, the leader election) are not counted in it.

Verbs are those of the API's audit log (``get``, ``list``, ``create``, ``patch``,
``delete``) plus ``apply`` for server-side apply; resources are plurals, with the
subresource after a slash (``modeldeployments/status``, ``pods/log``).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from modelrollout.services import metrics


@dataclass
class Tally:
    """The requests made while a :func:`tally` block was open, by (verb, resource)."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def describe(self) -> str:
        """``get deployments: 2, apply services: 3`` (sorted), or ``none``."""
        if not self.calls:
            return "none"
        return ", ".join(
            f"{verb} {resource}: {count}" for (verb, resource), count in sorted(self.calls.items())
        )


_CURRENT: ContextVar[Tally | None] = ContextVar("modelrollout_api_tally", default=None)


def record(verb: str, resource: str) -> None:
    """One request is about to be sent."""
    metrics.API_REQUESTS.labels(verb, resource).inc()
    current = _CURRENT.get()
    if current is not None:
        current.calls[(verb, resource)] += 1


@contextlib.contextmanager
def tally() -> Iterator[Tally]:
    """Count the requests this thread (this context) makes inside the block."""
    counted = Tally()
    token = _CURRENT.set(counted)
    try:
        yield counted
    finally:
        _CURRENT.reset(token)
