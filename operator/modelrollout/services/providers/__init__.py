"""Metric providers: where the SLO queries of the Baking stage run.

One interface (:class:`MetricProvider`), one module per kind, and one factory,
:func:`make_provider`. The factory rejects a kind it does not know instead of falling back
to a default: a provider that silently answered something else would judge the candidate
on the wrong data. The schema already limits ``kind`` to the supported values; the check
here also covers objects written before a kind was removed, or read without validation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from modelrollout.core.api import modeldeployment as api
from modelrollout.core.errors import InvalidSpec
from modelrollout.services.providers.base import MetricProvider, MetricQueryError
from modelrollout.services.providers.prometheus import PrometheusProvider

__all__ = [
    "KIND_FIELD",
    "MetricProvider",
    "MetricQueryError",
    "PrometheusProvider",
    "make_provider",
]

KIND_FIELD = "spec.stages.baking.analysis.provider.kind"

ProviderFactory = Callable[..., MetricProvider]

_KINDS: Mapping[str, ProviderFactory] = {
    "Prometheus": PrometheusProvider.from_spec,
}


def make_provider(spec: api.MetricProvider, *, bearer_token: str | None) -> MetricProvider:
    """The provider for ``spec``; ``bearer_token`` is the value of its token Secret, if any.

    Raises :class:`InvalidSpec` for an unknown ``kind`` or an unusable setting (for example
    a timeout of zero).
    """
    factory = _KINDS.get(spec.kind)
    if factory is None:
        supported = ", ".join(sorted(_KINDS))
        raise InvalidSpec(
            KIND_FIELD,
            f"unknown metric provider kind {spec.kind!r}; supported kinds: {supported}",
        )
    return factory(spec, bearer_token=bearer_token)
