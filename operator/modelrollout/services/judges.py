"""Judges in the analysis, measured: both sides' samples read from Prometheus, compared.

For each judge this reads the judged version's and its baseline's figures over the same
window (:func:`modelrollout.core.judging.sides`): the increase of every bucket of a latency
histogram, or of a request counter and its failed requests. The comparison itself is pure
(:mod:`modelrollout.core.judging`); its verdict becomes a measurement whose message carries
the p-value, the effect with its interval and the sample sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from modelrollout.core import errors, judging, rollout
from modelrollout.core.api.base import parse_duration
from modelrollout.core.api.judging import Judge
from modelrollout.core.api.modeldeployment import ModelDeployment
from modelrollout.services import providers

UNIT_MS = {"Seconds": 1000.0, "Milliseconds": 1.0}


def judge_probes(
    provider: providers.MetricProvider,
    md: ModelDeployment,
    variables: Mapping[str, str],
    now: datetime,
) -> dict[str, rollout.Probe]:
    """One measurement of every judge of the analysis in effect."""
    active = rollout.active_analysis(md)
    if active is None or not active.judges or md.status is None:
        return {}
    judged, baseline = judging.sides(md, now)
    interval = parse_duration(active.interval)
    planned_seconds = judging.stage_seconds(md)
    path = rollout.analysis_path(md)
    tallies = {r.name: r for r in md.status.analysis}
    probes: dict[str, rollout.Probe] = {}
    for index, judge in enumerate(active.judges):
        field = f"{path}.judges[{index}]"
        tally = tallies.get(judge.name)
        done = tally.successful + tally.failed + tally.inconclusive if tally else 0
        look = judging.looks(done, planned_seconds, interval)
        try:
            value, basis = _measure(provider, judge, variables, judged, baseline, look, field)
            probes[judge.name] = rollout.Probe(value, basis=basis)
        except (providers.MetricQueryError, errors.InvalidSpec, ValueError) as exc:
            probes[judge.name] = rollout.Probe(None, str(exc))
    return probes


def _measure(
    provider: providers.MetricProvider,
    judge: Judge,
    variables: Mapping[str, str],
    judged: judging.Side,
    baseline: judging.Side,
    look: tuple[int, int],
    field: str,
) -> tuple[float | None, str]:
    if judge.metric == "Latency":
        assert judge.latency is not None
        unit = UNIT_MS[judge.latency.unit]
        histograms = []
        for side in (baseline, judged):
            query = judging.queries(judge, variables, side, field=field).buckets
            assert query is not None
            histograms.append(
                judging.bucket_counts(provider.query_vector(query), unit_ms=unit, field=field)
            )
        return judging.evaluate_latency(judge, histograms[0], histograms[1], look)
    counts = []
    for side in (baseline, judged):
        queries = judging.queries(judge, variables, side, field=field)
        assert queries.total is not None
        assert queries.errors is not None
        total = provider.query(queries.total)
        failed = provider.query(queries.errors) if total else 0.0
        counts.append((failed or 0.0, total or 0.0))
    return judging.evaluate_errors(judge, counts[0], counts[1], look)
