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

from pydantic import ValidationError

from modelrollout.core import (
    analysis,
    anomaly,
    errors,
    names,
    notifications,
    reasons,
    rollout,
    traffic,
    workloads,
)
from modelrollout.core.api.base import parse_duration
from modelrollout.core.api.common import KeyReference
from modelrollout.core.api.modeldeployment import (
    LIVE_WINDOW_TRIGGERS,
    MetricProvider,
    ModelDeployment,
    ModelDeploymentStatus,
    ThresholdRange,
    Trigger,
)
from modelrollout.core.api.monitoring import AnomalyTrigger
from modelrollout.core.conditions import EventRecord
from modelrollout.core.monitoring import checks
from modelrollout.core.monitoring.profile import Profile
from modelrollout.core.monitoring.verdict import DriftThresholds
from modelrollout.services import judges, notifiers, providers, routers
from modelrollout.services.kube import Kube, config_map_value
from modelrollout.services.monitoring.windows import (
    CaptureSidecars,
    Window,
    WindowError,
    WindowSource,
)

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
    active = rollout.active_analysis(md)
    interval = active.interval if active is not None else "1m"
    candidate_version = (status.candidate_version if status else None) or ""
    stable_version = (status.stable_version if status else None) or ""
    candidate_service = names.candidate_name(name)
    if rollout.watched_track(md) == "stable":
        # the production watch judges the promoted version, which runs as stable now
        candidate_version, candidate_service = stable_version, names.stable_name(name)
        revisions = status.revisions if status else []
        stable_version = revisions[0].version if revisions else ""
    return {
        "name": name,
        "namespace": str(md.metadata["namespace"]),
        "model": md.spec.model.name,
        "candidate_version": candidate_version,
        "stable_version": stable_version,
        "candidate_service": candidate_service,
        "stable_service": names.stable_name(name),
        "interval": interval,
    }


def provider_for(kube: Kube, namespace: str, spec: MetricProvider) -> providers.MetricProvider:
    """The metric provider ``spec`` names, with its bearer token read from its Secret."""
    token = None
    if spec.bearer_token_secret_ref is not None:
        token = secret_value(kube, namespace, spec.bearer_token_secret_ref)
    return providers.make_provider(spec, bearer_token=token)


def take_measurements(kube: Kube, md: ModelDeployment, now: datetime) -> dict[str, rollout.Probe]:
    """Run every SLO and trigger query once; learn the band of every anomaly trigger."""
    active = rollout.active_analysis(md)
    assert active is not None
    queries = rollout.measurement_queries(md)
    try:
        provider = provider_for(kube, str(md.metadata["namespace"]), active.provider)
    except errors.InvalidSpec as exc:
        every = [*queries, *(j.name for j in active.judges)]
        return {name: rollout.Probe(None, str(exc)) for name in every}
    variables = query_variables(md)
    anomalies = {t.name: (i, t.anomaly) for i, t in enumerate(md.spec.rollback.triggers)}
    presets = {slo.name for slo in active.slos if slo.preset is not None}
    probes: dict[str, rollout.Probe] = {}
    for name, (template, field) in queries.items():
        try:
            promql = analysis.render_query(template, variables, field=field)
            value = provider.query(promql)
            index, anomaly = anomalies.get(name, (0, None))
            if anomaly is None:
                probes[name] = rollout.Probe(value, query=promql if name in presets else "")
            else:
                prefix = f"spec.rollback.triggers[{index}].anomaly"
                probes[name] = _band_probe(provider, anomaly, value, variables, prefix, now)
        except (providers.MetricQueryError, errors.InvalidSpec) as exc:
            probes[name] = rollout.Probe(None, str(exc))
    return probes | judges.judge_probes(provider, md, variables, now)


def window_probes(
    kube: Kube, md: ModelDeployment, now: datetime, windows: WindowSource | None = None
) -> dict[str, rollout.Probe]:
    """Measure every trigger that reads the capture sidecars' live windows and whose
    window has slid a step since its last measurement."""
    spec = md.spec
    triggers = [
        t
        for t in spec.rollback.triggers
        if t.type in LIVE_WINDOW_TRIGGERS and rollout.measured_this_round(md, t.name, now)
    ]
    if not triggers:
        return {}
    namespace, name = str(md.metadata["namespace"]), str(md.metadata["name"])
    source = _Once(
        windows or CaptureSidecars(kube, port=workloads.window_port(spec.monitoring.capture.port))
    )
    probes: dict[str, rollout.Probe] = {}
    for trigger in triggers:
        try:
            probes[trigger.name] = _window_probe(kube, md, trigger, source, namespace, name)
        except (WindowError, BaselineError) as exc:
            probes[trigger.name] = rollout.Probe(None, str(exc))
    return probes


class _Once:
    """Reads each track's window once per round, however many triggers use it."""

    def __init__(self, source: WindowSource) -> None:
        self.source = source
        self.read: dict[tuple[str, float], Window | WindowError] = {}

    def window(self, namespace: str, md_name: str, track: str, seconds: float) -> Window:
        key = (track, seconds)
        if key not in self.read:
            try:
                self.read[key] = self.source.window(namespace, md_name, track, seconds)
            except WindowError as exc:
                self.read[key] = exc
        found = self.read[key]
        if isinstance(found, WindowError):
            raise found
        return found


class BaselineError(Exception):
    """The baseline profile cannot be read; the message names the ConfigMap."""


def _baseline(kube: Kube, md: ModelDeployment) -> Profile:
    baseline = md.spec.monitoring.baseline
    assert baseline is not None  # the API requires it for FeatureDrift
    ref = baseline.profile_config_map_key_ref
    where = f"spec.monitoring.baseline: ConfigMap {ref.name!r} key {ref.key!r}"
    found = kube.get_config_map(str(md.metadata["namespace"]), ref.name)
    data = config_map_value(found, ref.key) if found is not None else None
    if data is None:
        raise BaselineError(f"{where} not found")
    try:
        return Profile.model_validate_json(data)
    except ValidationError as exc:
        raise BaselineError(f"{where} is not a profile: {exc.errors()[0]['msg']}") from exc


def _window_probe(
    kube: Kube,
    md: ModelDeployment,
    trigger: Trigger,
    windows: WindowSource,
    namespace: str,
    name: str,
) -> rollout.Probe:
    judged = rollout.watched_track(md)  # the candidate, or stable during a production watch
    watch = judged == "stable"
    if trigger.feature_drift is not None:
        settings = trigger.feature_drift
        window = windows.window(namespace, name, judged, parse_duration(settings.window.size))
        if window.profile is None:
            return rollout.Probe(None, basis=_empty(window, settings.window.min_count))
        reading = checks.feature_drift(
            _baseline(kube, md),
            window.profile,
            features=settings.features,
            min_count=settings.window.min_count,
            thresholds=DriftThresholds(min_samples=settings.window.min_count),
        )
        return _probe(reading, ThresholdRange(max=float(settings.max_drifted)))
    if trigger.prediction_drift is not None:
        settings_p = trigger.prediction_drift
        seconds = parse_duration(settings_p.window.size)
        if watch and settings_p.against == "Stable":
            return rollout.Probe(
                None,
                basis="no other version runs during the production watch: compare "
                "with the Baseline instead",
            )
        window = windows.window(namespace, name, judged, seconds)
        reference = (
            windows.window(namespace, name, "stable", seconds).profile
            if settings_p.against == "Stable"
            else _baseline(kube, md)
        )
        if window.profile is None or reference is None:
            return rollout.Probe(None, basis=_empty(window, settings_p.window.min_count))
        reading = checks.prediction_drift(
            reference,
            window.profile,
            min_count=settings_p.window.min_count,
            thresholds=DriftThresholds(min_samples=settings_p.window.min_count),
        )
        return _probe(reading, ThresholdRange(max=0.0))
    settings_q = trigger.quality_drop
    assert settings_q is not None
    seconds = parse_duration(settings_q.window.size)
    window = windows.window(namespace, name, judged, seconds)
    stable = (
        windows.window(namespace, name, "stable", seconds).quality
        if settings_q.max_drop_from_stable is not None and not watch
        else None
    )
    reading = checks.quality(
        window.quality,
        stable,
        metric=settings_q.metric,
        min_count=settings_q.window.min_count,
        minimum=settings_q.min,
        # during the production watch no other version runs: only the floor applies
        max_drop_from_stable=None if watch else settings_q.max_drop_from_stable,
    )
    return _probe(reading, ThresholdRange(min=reading.min) if reading.min is not None else None)


def _probe(reading: checks.Reading, bounds: ThresholdRange | None) -> rollout.Probe:
    return rollout.Probe(reading.value, None, bounds, reading.basis)


def _empty(window: Window, min_count: int) -> str:
    return f"{window.events} events in the window of {window.pods} pods, {min_count} needed"


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
    bounds = ThresholdRange(min=float(f"{band.lower:.6g}"), max=float(f"{band.upper:.6g}"))
    return rollout.Probe(value, bounds=bounds, basis=band.describe())


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
