"""The I/O of a bake: measurements from the metric provider, weights on the traffic
router, and announcements to the notifiers.

Each goes through its seam (:mod:`.providers`, :mod:`.routers`, :mod:`.notifiers`), built
from the spec by a factory that rejects unknown kinds. None of them decides anything:
the measurements feed :func:`modelrollout.core.rollout.decide`, and the weights and
notifications carry out what it decided. A failure here never stops a reconcile: a query
error is a measurement of phase Error (counted against ``consecutiveErrorLimit``), and a
router or notifier error becomes a Warning Event, retried on the next reconcile.

The weights are set before the owned objects are applied and read back after
(:mod:`.routers` says why); the read-back ends in the TrafficApplied condition of the
status the reconcile writes.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from datetime import datetime

from modelrollout.core import (
    analysis,
    anomaly,
    errors,
    names,
    notifications,
    reasons,
    rollout,
    traffic,
)
from modelrollout.core.api.base import parse_duration
from modelrollout.core.api.common import KeyReference
from modelrollout.core.api.modeldeployment import (
    ModelDeployment,
    ModelDeploymentStatus,
    ThresholdRange,
)
from modelrollout.core.api.monitoring import AnomalyTrigger
from modelrollout.core.conditions import EventRecord
from modelrollout.services import notifiers, providers, routers
from modelrollout.services.kube import Kube

log = logging.getLogger("modelrollout.baking")

NOTIFIED = {
    reasons.NEW_CANDIDATE: "StageChanged",
    reasons.BAKING: "StageChanged",
    reasons.STEP_ADVANCED: "StepAdvanced",
    reasons.GATE_WAITING: "GateWaiting",
    reasons.PROMOTED: "Promoted",
    reasons.ROLLED_BACK: "RolledBack",
    reasons.FAILED: "Failed",
}


def secret_value(kube: Kube, namespace: str, ref: KeyReference) -> str | None:
    secret = kube.get_secret(namespace, ref.name)
    data = (secret or {}).get("data") or {}
    if ref.key not in data:
        return None
    return base64.b64decode(data[ref.key]).decode().strip()


def query_variables(md: ModelDeployment) -> dict[str, str]:
    name = str(md.metadata["name"])
    status = md.status
    interval = "1m"
    baking = md.spec.stages.baking
    if baking is not None and baking.analysis is not None:
        interval = baking.analysis.interval
    return {
        "name": name,
        "namespace": str(md.metadata["namespace"]),
        "model": md.spec.model.name,
        "candidate_version": (status.candidate_version if status else None) or "",
        "stable_version": (status.stable_version if status else None) or "",
        "candidate_service": names.candidate_name(name),
        "stable_service": names.stable_name(name),
        "interval": interval,
    }


def take_measurements(kube: Kube, md: ModelDeployment, now: datetime) -> dict[str, rollout.Probe]:
    """Run every SLO and trigger query once; learn the band of every anomaly trigger."""
    baking = md.spec.stages.baking
    assert baking is not None
    assert baking.analysis is not None
    spec = baking.analysis.provider
    namespace = str(md.metadata["namespace"])
    token = None
    if spec.bearer_token_secret_ref is not None:
        token = secret_value(kube, namespace, spec.bearer_token_secret_ref)
    queries = rollout.measurement_queries(md)
    try:
        provider = providers.make_provider(spec, bearer_token=token)
    except errors.InvalidSpec as exc:
        return {name: rollout.Probe(None, str(exc)) for name in queries}
    variables = query_variables(md)
    anomalies = {t.name: (i, t.anomaly) for i, t in enumerate(md.spec.rollback.triggers)}
    probes: dict[str, rollout.Probe] = {}
    for name, (template, field) in queries.items():
        try:
            promql = analysis.render_query(template, variables, field=field)
            value = provider.query(promql)
            index, anomaly = anomalies.get(name, (0, None))
            if anomaly is None:
                probes[name] = rollout.Probe(value)
            else:
                prefix = f"spec.rollback.triggers[{index}].anomaly"
                probes[name] = _band_probe(provider, anomaly, value, variables, prefix, now)
        except (providers.MetricQueryError, errors.InvalidSpec) as exc:
            probes[name] = rollout.Probe(None, str(exc))
    return probes


def _band_probe(
    provider: providers.MetricProvider,
    spec: AnomalyTrigger,
    value: float | None,
    variables: dict[str, str],
    prefix: str,
    now: datetime,
) -> rollout.Probe:
    """The value now against the band learned from the history query's range."""
    history_query = spec.history_query or spec.query
    field = f"{prefix}.historyQuery" if spec.history_query else f"{prefix}.query"
    end = now.timestamp()
    history = provider.query_range(
        analysis.render_query(history_query, variables, field=field),
        start=end - parse_duration(spec.history),
        end=end,
        step=parse_duration(spec.step),
    )
    settings = anomaly.BandSettings(
        seasonality=spec.seasonality,
        window_seconds=parse_duration(spec.window),
        k=spec.k,
        min_samples=spec.min_samples,
        min_width=spec.min_width,
    )
    band = anomaly.learn(history, end, settings)
    if band is None:
        found = len(anomaly.comparable(history, end, settings))
        return rollout.Probe(
            None,
            basis=f"no band yet: {found} comparable samples of history, {spec.min_samples} needed",
        )
    return rollout.Probe(
        value, bounds=ThresholdRange(min=band.lower, max=band.upper), basis=band.describe()
    )


def _router(kube: Kube, md: ModelDeployment) -> routers.TrafficRouter:
    spec = md.spec
    return routers.make_router(
        spec.traffic, kube, port=spec.serving.service_port, replicas=spec.workload.replicas
    )


def apply_weights(
    kube: Kube, md: ModelDeployment, status: ModelDeploymentStatus
) -> list[EventRecord]:
    """Set the router's weights to the ones the decision recorded in the status.

    Called before the owned objects are applied: a router that sets fields of theirs
    (ReplicaRatio, the Deployments' replicas) claims them before they are left out.
    """
    if status.traffic is None:
        return []
    try:
        _router(kube, md).set_weights(
            str(md.metadata["namespace"]),
            str(md.metadata["name"]),
            stable_weight=status.traffic.stable_weight,
            candidate_weight=status.traffic.candidate_weight,
        )
    except errors.InvalidSpec as exc:
        return [EventRecord("Warning", reasons.TRAFFIC_ROUTER_ERROR, str(exc))]
    return []


def verify_weights(
    kube: Kube, md: ModelDeployment, status: ModelDeploymentStatus, now: datetime
) -> list[EventRecord]:
    """Read back the weights in effect and fold the outcome into ``status``.

    Called after the owned objects are applied. The weights found are compared with those
    the router should give for the status's weights (:func:`modelrollout.core.traffic.
    check_weights`); the TrafficApplied condition says which, and a new mismatch is a
    Warning Event (:func:`modelrollout.core.rollout.record_traffic`). A router that cannot
    be read makes the condition False; its error was already reported by
    :func:`apply_weights`.
    """
    if status.traffic is None:
        return []
    asked = (status.traffic.stable_weight, status.traffic.candidate_weight)
    try:
        router = _router(kube, md)
        expected = router.expected_weights(stable_weight=asked[0], candidate_weight=asked[1])
        found = router.get_weights(str(md.metadata["namespace"]), str(md.metadata["name"]))
        check = traffic.check_weights(router.name, asked=asked, expected=expected, found=found)
    except errors.InvalidSpec as exc:
        check = traffic.Check(False, reasons.TRAFFIC_ROUTER_ERROR, str(exc))
    generation = int(md.metadata.get("generation") or 0)
    return rollout.record_traffic(status, check, generation=generation, now=now)


def notify(
    kube: Kube,
    md: ModelDeployment,
    phase: str,
    events: Iterable[EventRecord],
    now: datetime,
) -> list[EventRecord]:
    """Announce the decisions the notifiers asked for; failures become Warning Events."""
    failures: list[EventRecord] = []
    namespace = str(md.metadata["namespace"])
    for event in events:
        kind = NOTIFIED.get(event.reason)
        if kind is None:
            continue
        note = notifications.Notification(
            event=kind,  # type: ignore[arg-type]
            namespace=namespace,
            name=str(md.metadata["name"]),
            model=md.spec.model.name,
            version=md.spec.model.version,
            phase=phase,
            message=event.message,
            time=now,
        )
        for spec in md.spec.notifications:
            if not notifications.wanted(spec, note.event):
                continue
            url = spec.url
            if spec.url_secret_ref is not None:
                url = secret_value(kube, namespace, spec.url_secret_ref)
            if not url:
                failures.append(
                    EventRecord(
                        "Warning", reasons.NOTIFICATION_FAILED, f"notifier {spec.name}: no URL"
                    )
                )
                continue
            try:
                notifiers.make_notifier(spec, url=url).post(note)
            except notifiers.NotifyError as exc:
                log.warning("notifier %s failed: %s", spec.name, exc)
                failures.append(EventRecord("Warning", reasons.NOTIFICATION_FAILED, str(exc)))
    return failures
