"""The rollout decision: from everything observed to the next status and actions.

``decide`` is the whole brain of the ModelDeployment controller and it is pure. The service
layer gathers one :class:`Observed` (the object, the state of its Deployments and of its
ReplayTest, which references are missing, the time), calls ``decide`` and carries out the
returned :class:`Decision`: apply the owned objects, create the ReplayTest, record the
Events, and write the status once. Everything the rollout needs to resume lives in that
status, so the operator can be killed at any instant and picks up where it stood.

The stages, in order:

* **Pending**: the spec's references are being checked and the workloads created.
* **NonProduction**: the candidate runs with no live traffic; a ReplayTest replays recorded
  events against it (and against the stable version, for comparison). A passed replay
  moves on; a failed one rolls back.
* **Baking**: the candidate serves a growing share of live traffic while SLOs are watched.
* **Production**: the candidate has been promoted and is the stable version.
* **RolledBack** / **Failed**: the candidate was withdrawn; the stable version serves all
  traffic. A new version (a new spec) starts a new rollout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

from modelrollout.core import analysis, names, reasons, traffic, workloads
from modelrollout.core.api.base import parse_duration
from modelrollout.core.api.common import (
    API_VERSION,
    Endpoint,
    ServiceEndpoint,
)
from modelrollout.core.api.judging import ShadowStage
from modelrollout.core.api.modeldeployment import (
    LIVE_WINDOW_TRIGGERS,
    AnalysisSpec,
    GateName,
    HistoryEntry,
    Measurement,
    MetricResult,
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Phase,
    Reverted,
    Revision,
    ShadowStatus,
    ThresholdRange,
    TrafficStatus,
    Trigger,
)
from modelrollout.core.api.replaytest import ReplayTestSpec
from modelrollout.core.clock import parse_rfc3339, rfc3339
from modelrollout.core.conditions import (
    EventRecord,
    EventType,
    Recorder,
    get_condition,
    set_condition,
)
from modelrollout.core.references import Reference, missing_message, resolved
from modelrollout.core.replay.result import ReplaySummary
from modelrollout.core.shadow import ShadowState, judge_shadow

TriggerAction = Literal["Rollback", "Hold", "Notify"]


class Probe(NamedTuple):
    """One measurement as taken: the value (None for no data) or the error of the query,
    and, for a check whose range is learned when it is measured (an anomaly band), that
    range and what it was learned from; for an SLO preset, the PromQL that ran."""

    value: float | None
    error: str | None = None
    bounds: ThresholdRange | None = None
    basis: str = ""
    query: str = ""


JUDGE_PASS = ThresholdRange(max=0)
SHADOW_POLL_SECONDS = 10.0
HISTORY_LIMIT = 10
REVISIONS_KEPT = 3
BASELINE_CRITERIA = frozenset(
    {"min_agreement", "max_mean_abs_score_diff", "max_p95_abs_score_diff"}
)
POLL_SECONDS = 5.0
MISSING_RETRY_SECONDS = 10.0


@dataclass(frozen=True)
class DeploymentView:
    """What matters of one owned Deployment."""

    replicas: int
    ready_replicas: int
    template: dict[str, Any]
    template_hash: str | None

    @classmethod
    def of(cls, obj: dict[str, Any] | None) -> DeploymentView | None:
        if obj is None:
            return None
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        return cls(
            replicas=int(spec.get("replicas") or 0),
            ready_replicas=int(status.get("readyReplicas") or 0),
            template=spec.get("template") or {},
            template_hash=annotations.get(workloads.ANNOTATION_HASH),
        )

    @property
    def available(self) -> bool:
        return self.replicas > 0 and self.ready_replicas >= self.replicas


@dataclass(frozen=True)
class ReplayView:
    """What matters of the NonProduction ReplayTest."""

    name: str
    phase: str
    verdict: str
    reasons: tuple[str, ...]
    result: ReplaySummary | None
    completion_time: str | None = None


@dataclass(frozen=True)
class Observed:
    md: ModelDeployment
    missing: list[Reference]
    stable: DeploymentView | None
    candidate: DeploymentView | None
    replay: ReplayView | None
    now: datetime
    wait_for_ready: bool = True
    measurements: Mapping[str, Probe] | None = None
    capture_image: str | None = None
    """The image of the capture sidecar (the operator's own)."""
    shadow: ShadowReading | None = None
    """The stable sidecars' shadow counts, read this round (while the candidate is in
    shadow)."""


class ShadowReading(NamedTuple):
    """The shadow counts of every stable pod, merged, or why they could not be read."""

    state: ShadowState | None
    error: str | None = None


@dataclass
class Decision:
    status: ModelDeploymentStatus
    apply: list[dict[str, Any]] = field(default_factory=list)
    create_replay: dict[str, Any] | None = None
    events: list[EventRecord] = field(default_factory=list)
    requeue_after: float | None = None


class _Step:
    """Mutable working state of one decision; keeps ``decide`` readable."""

    def __init__(self, observed: Observed) -> None:
        self.o = observed
        self.md = observed.md
        self.generation = int(self.md.metadata.get("generation") or 0)
        old = self.md.status or ModelDeploymentStatus()
        self.status = old.model_copy(deep=True)
        self.before = {c.type: c for c in old.conditions}
        self.decision = Decision(status=self.status)
        self.record = Recorder(
            self.status.conditions, self.generation, observed.now, self.decision.events
        )

    def condition(self, type_: str, ok: bool | None, reason: str, message: str) -> None:
        self.record.condition(type_, ok, reason, message)
        self.status.conditions = self.record.conditions

    def event(self, type_: EventType, reason: str, message: str) -> None:
        self.record.event(type_, reason, message)
        self.status.message = message

    def requeue(self, seconds: float) -> None:
        current = self.decision.requeue_after
        self.decision.requeue_after = seconds if current is None else min(current, seconds)

    def enter(self, phase: Phase) -> None:
        self.status.phase = phase
        self.status.stage_started_at = rfc3339(self.o.now)

    def elapsed(self, since: str | None) -> float:
        if since is None:
            return 0.0
        return (self.o.now - parse_rfc3339(since)).total_seconds()

    def finish(
        self, outcome: Literal["Promoted", "RolledBack", "Failed", "Superseded"], reason: str
    ) -> None:
        if self.status.candidate_version is None:
            return
        entry = HistoryEntry(
            version=self.status.candidate_version,
            outcome=outcome,
            reason=reason,
            finished_at=rfc3339(self.o.now),
        )
        self.status.history = [entry, *self.status.history][:HISTORY_LIMIT]


def decide(observed: Observed) -> Decision:
    """The next status and actions for one ModelDeployment."""
    step = _Step(observed)
    status = step.status
    spec = observed.md.spec

    found = resolved(step.record, observed.missing, also=(reasons.READY,))
    status.conditions = step.record.conditions
    if not found:
        status.message = missing_message(observed.missing)
        status.observed_generation = step.generation
        step.requeue(MISSING_RETRY_SECONDS)
        return step.decision

    _pause_state(step)

    desired_hash = workloads.template_hash(spec)
    _start_candidate_if_new(step, desired_hash)
    _retry_if_requested(step, desired_hash)
    _undo_if_requested(step)

    if status.aborted and status.phase in ("NonProduction", "Baking"):
        _roll_back(step, reasons.ABORTED, "aborted with kubectl modelrollout abort")
    elif status.phase == "NonProduction" and not spec.paused:
        _non_production(step)
    elif status.phase == "Baking":
        _baking(step)
    elif status.phase == "Production":
        _watch(step)

    _conditions_for_phase(step)
    step.decision.apply = _objects(step)
    status.observed_generation = step.generation
    return step.decision


def _pause_state(step: _Step) -> None:
    """spec.paused holds the rollout; a hold for inconclusive data or a fired trigger stays
    until ``kubectl modelrollout resume`` (status.resumedAt) lifts it; a gate re-checks
    itself every reconcile."""
    status = step.status
    previous = step.before.get(reasons.PAUSED)
    sticky = (reasons.INCONCLUSIVE, reasons.SLO_BREACH, reasons.JUDGE_FAILED, *reasons.TRIGGERS)
    if step.md.spec.paused:
        step.condition(reasons.PAUSED, True, reasons.PAUSED_BY_SPEC, "spec.paused is true")
    elif previous is not None and previous.status == "True" and previous.reason in sticky:
        resumed = status.resumed_at is not None and parse_rfc3339(
            status.resumed_at
        ) >= parse_rfc3339(previous.last_transition_time)
        if resumed:
            status.analysis = [
                r.model_copy(update={"inconclusive": 0, "failed": 0, "consecutive_error": 0})
                for r in status.analysis
            ]
            step.condition(
                reasons.PAUSED, False, reasons.RESUMED, "resumed with kubectl modelrollout resume"
            )
            step.event("Normal", reasons.RESUMED, "the bake resumes")
    else:
        step.condition(reasons.PAUSED, False, reasons.NOT_PAUSED, "")


def _retry_if_requested(step: _Step, desired_hash: str) -> None:
    """After a rollback or failure, ``kubectl modelrollout retry`` rolls the same candidate
    out again from NonProduction, with a new ReplayTest (the attempt is in its name)."""
    status = step.status
    requested = status.retry_requested_at
    if (
        requested is None
        or status.phase not in ("RolledBack", "Failed")
        or status.candidate_hash != desired_hash
        or status.stage_started_at is None
        or parse_rfc3339(requested) < parse_rfc3339(status.stage_started_at)
    ):
        return
    status.attempt = (status.attempt or 1) + 1
    status.replay_test = None
    status.replay_result = None
    status.analysis = []
    status.last_analysis_at = None
    status.aborted = False
    step.condition("RolledBack", False, reasons.RETRY, "retried")
    step.event(
        "Normal",
        reasons.RETRY,
        f"retrying version {status.candidate_version} (attempt {status.attempt})",
    )
    if step.md.spec.stages.non_production.enabled:
        step.enter("NonProduction")
        step.requeue(0)
    else:
        _after_non_production(step, "the NonProduction stage is disabled")


def _start_candidate_if_new(step: _Step, desired_hash: str) -> None:
    status = step.status
    spec = step.md.spec
    reverted = status.reverted
    if reverted is not None:
        if desired_hash == reverted.hash and not _retried_since(status, reverted.at):
            return  # taken out of production: not rolled out again until the spec changes
        status.reverted = None
        if desired_hash == status.stable_hash:
            status.stable_template = None  # the spec caught up with what runs
            step.event(
                "Normal",
                reasons.SPEC_IN_SYNC,
                f"the spec is at version {status.stable_version}, which runs",
            )
    if desired_hash in (status.candidate_hash, status.stable_hash):
        if desired_hash == status.stable_hash and status.candidate_hash not in (None, desired_hash):
            # The spec went back to the stable version: withdraw the candidate.
            step.finish("Superseded", "the spec returned to the stable version")
            status.candidate_version = None
            status.candidate_hash = None
            status.phase = "Production"
            status.replay_test = None
            step.event(
                "Normal",
                "CandidateWithdrawn",
                f"spec returned to stable version {status.stable_version}",
            )
        return
    if status.candidate_hash is not None and status.phase in ("NonProduction", "Baking"):
        step.finish("Superseded", f"superseded by version {spec.model.version}")
    status.candidate_version = spec.model.version
    status.candidate_hash = desired_hash
    status.attempt = None
    status.replay_test = None
    status.replay_result = None
    status.current_step = None
    status.step_started_at = None
    status.analysis = []
    status.aborted = False
    status.traffic = TrafficStatus(
        stable_weight=100 if status.stable_hash else 0,
        candidate_weight=0,
    )
    step.event(
        "Normal",
        reasons.NEW_CANDIDATE,
        f"version {spec.model.version} ({desired_hash}) is the new candidate",
    )
    if spec.stages.non_production.enabled:
        step.enter("NonProduction")
        step.requeue(0)
    else:
        _after_non_production(step, "the NonProduction stage is disabled")


def _retried_since(status: ModelDeploymentStatus, since: str) -> bool:
    requested = status.retry_requested_at
    return requested is not None and parse_rfc3339(requested) >= parse_rfc3339(since)


def _undo_if_requested(step: _Step) -> None:
    """``kubectl modelrollout undo [--to-version V]`` restores an earlier stable version."""
    status = step.status
    request = status.undo
    if request is None:
        return
    status.undo = None  # handled once, whatever the outcome
    if status.phase in ("NonProduction", "Baking"):
        why = f"{status.candidate_version} is being rolled out: use kubectl modelrollout abort"
        step.event("Warning", reasons.UNDO_REFUSED, f"undo refused: {why}")
        return
    revision = _revision(status, request.to_version)
    if revision is None:
        kept = ", ".join(r.version for r in status.revisions) or "none"
        wanted = request.to_version or "the previous version"
        step.event(
            "Warning",
            reasons.UNDO_REFUSED,
            f"undo refused: no template of {wanted} is kept (kept: {kept})",
        )
        return
    _revert(step, revision, reasons.UNDO, "undone with kubectl modelrollout undo")


def _revision(status: ModelDeploymentStatus, version: str | None) -> Revision | None:
    if version is None:
        return status.revisions[0] if status.revisions else None
    return next((r for r in status.revisions if r.version == version), None)


def _revert(step: _Step, revision: Revision, reason: str, message: str) -> None:
    """Put ``revision`` back in production in one step: the stable track runs its kept
    template again, and the version taken out is not rolled out again while the spec still
    asks for it."""
    status = step.status
    now = rfc3339(step.o.now)
    out = status.stable_version or ""
    text = f"version {out} reverted to {revision.version}: {message}"
    if status.stable_hash is not None:
        status.reverted = Reverted(
            version=out,
            hash=status.stable_hash,
            to_version=revision.version,
            reason=message,
            at=now,
        )
        entry = HistoryEntry(version=out, outcome="Reverted", reason=message, finished_at=now)
        status.history = [entry, *status.history][:HISTORY_LIMIT]
    index = status.revisions.index(revision)
    status.revisions = status.revisions[index + 1 :]
    status.stable_version = revision.version
    status.stable_hash = revision.hash
    status.stable_template = revision.template
    status.candidate_version = None
    status.candidate_hash = None
    status.current_step = None
    status.traffic = TrafficStatus(stable_weight=100, candidate_weight=0)
    step.enter("RolledBack")
    step.event("Warning", reasons.REVERTED, text)
    step.condition("RolledBack", True, reason, text)
    if get_condition(status.conditions, reasons.WATCHING) is not None:
        step.condition(reasons.WATCHING, False, reasons.REVERTED, text)


def _watch(step: _Step) -> None:
    """After promotion, the SLOs and triggers keep running for ``watch.duration``; one that
    fires reverts to the previous version."""
    status = step.status
    watch = step.md.spec.stages.production.watch
    watching = get_condition(status.conditions, reasons.WATCHING)
    if watch is None or not status.revisions or status.stage_started_at is None:
        if watching is not None and watching.status == "True":
            step.condition(reasons.WATCHING, False, reasons.WATCH_ENDED, "no watch")
        return
    spec = active_analysis(step.md)
    remaining = parse_duration(watch.duration) - step.elapsed(status.stage_started_at)
    if remaining <= 0:
        if watching is not None and watching.status == "True":
            message = f"version {status.stable_version} watched for {watch.duration}"
            step.event("Normal", reasons.WATCH_ENDED, message)
            step.condition(reasons.WATCHING, False, reasons.WATCH_ENDED, message)
        return
    if watching is None or watching.status != "True":
        message = (
            f"watching version {status.stable_version} for {watch.duration}; "
            f"a trigger that fires reverts to {status.revisions[0].version}"
        )
        step.event("Normal", reasons.WATCH_STARTED, message)
        step.condition(reasons.WATCHING, True, reasons.WATCH_STARTED, message)
    step.requeue(remaining)
    if spec is None:
        return
    step.requeue(
        analysis.seconds_until_due(
            status.last_analysis_at, parse_duration(spec.interval), step.o.now
        )
    )
    fired = _assess(step, spec, hold_when_inconclusive=False)
    if fired is None:
        return
    reason, message, action = fired
    if action == "Rollback" and step.md.spec.rollback.automatic:
        _revert(step, status.revisions[0], reason, message)
    elif action != "Notify":
        why = "automatic rollback is off" if action == "Rollback" else "the trigger holds"
        step.event(
            "Warning",
            reason,
            f"{message} in production; {why}: run kubectl modelrollout undo to revert",
        )


def _non_production(step: _Step) -> None:
    status = step.status
    spec = step.md.spec
    stage = spec.stages.non_production
    timeout = parse_duration(stage.timeout)
    if step.elapsed(status.stage_started_at) > timeout:
        _roll_back(
            step, reasons.STAGE_TIMEOUT, f"NonProduction did not finish within {stage.timeout}"
        )
        return
    candidate = step.o.candidate
    ready = (
        candidate is not None
        and candidate.available
        and (candidate.template_hash == status.candidate_hash)
    )
    if step.o.wait_for_ready and not ready:
        deadline = step.md.spec.progress_deadline
        if step.elapsed(status.stage_started_at) > parse_duration(deadline):
            _fail(
                step,
                reasons.PROGRESS_DEADLINE,
                f"the candidate pods were not ready within {deadline}",
            )
            return
        step.condition(
            reasons.REPLAY_PASSED,
            None,
            reasons.WAITING_FOR_CANDIDATE,
            "waiting for the candidate pods to be ready",
        )
        status.message = f"waiting for the candidate {status.candidate_version} to be ready"
        step.requeue(POLL_SECONDS)
        return
    assert stage.replay is not None  # guaranteed by the schema's CEL rule
    name = names.replay_test_name(
        step.md.metadata["name"],
        status.candidate_version or "",
        status.candidate_hash or "",
        status.attempt or 1,
    )
    replay = step.o.replay if step.o.replay is not None and step.o.replay.name == name else None
    if status.replay_test != name or replay is None:
        status.replay_test = name
        step.decision.create_replay = replay_test_manifest(step.md, name, status)
        step.condition(
            reasons.REPLAY_PASSED, None, reasons.REPLAY_CREATED, f"ReplayTest {name} created"
        )
        if replay is None and step.o.replay is None:
            step.event(
                "Normal",
                reasons.REPLAY_CREATED,
                f"replaying recorded events against {status.candidate_version} (ReplayTest {name})",
            )
        step.requeue(POLL_SECONDS)
        return
    status.replay_result = replay.result
    if replay.verdict == "Passed":
        previous = get_condition(status.conditions, reasons.REPLAY_PASSED)
        if previous is None or previous.status != "True":
            step.event(
                "Normal",
                reasons.REPLAY_SUCCEEDED,
                f"ReplayTest {name} passed for version {status.candidate_version}",
            )
        step.condition(
            reasons.REPLAY_PASSED, True, reasons.REPLAY_SUCCEEDED, f"ReplayTest {name} passed"
        )
        _after_non_production(step, "the replay test passed")
    elif replay.verdict in ("Failed", "Inconclusive") or replay.phase == "Failed":
        why = "; ".join(replay.reasons) or f"verdict {replay.verdict}"
        step.condition(reasons.REPLAY_PASSED, False, reasons.REPLAY_FAILED, why)
        _roll_back(step, reasons.REPLAY_FAILED, f"ReplayTest {name} failed: {why}")
    else:
        step.condition(
            reasons.REPLAY_PASSED,
            None,
            reasons.REPLAY_RUNNING,
            f"ReplayTest {name} is {replay.phase}",
        )
        status.message = f"replay test {name} is {replay.phase.lower()}"
        step.requeue(POLL_SECONDS)


def _after_non_production(step: _Step, why: str) -> None:
    status = step.status
    spec = step.md.spec
    baking = spec.stages.baking
    if status.stable_hash is None or baking is None:
        if _gate_open(step, "BeforeProduction", spec.gates.before_production):
            _promote(step, why)
        return
    if not _gate_open(step, "BeforeBaking", spec.gates.before_baking):
        return
    step.enter("Baking")
    status.current_step = 0
    status.step_started_at = rfc3339(step.o.now)
    status.analysis = []
    status.last_analysis_at = None
    status.shadow = None
    if baking.shadow is not None:
        status.shadow = ShadowStatus(run=shadow_run(status), started_at=rfc3339(step.o.now))
        status.traffic = TrafficStatus(stable_weight=100, candidate_weight=0)
        step.event(
            "Normal",
            reasons.SHADOW_STARTED,
            f"{why}; version {status.candidate_version} is shadowed: "
            f"{baking.shadow.sample:.0%} of the requests stable answers are sent to it too, "
            f"for {baking.shadow.duration} at least; its answers are compared, never served",
        )
        step.requeue(0)
        return
    weight = baking.steps[0].weight
    status.traffic = TrafficStatus(stable_weight=100 - weight, candidate_weight=weight)
    step.event(
        "Normal",
        reasons.BAKING,
        f"{why}; version {status.candidate_version} starts baking at {weight}% of live traffic",
    )
    step.requeue(0)


def _approved(step: _Step, gate: GateName) -> bool:
    version = step.status.candidate_version
    approvals = [*step.md.spec.approvals, *step.status.approvals]
    return any(a.gate == gate and a.version == version for a in approvals)


def _gate_open(step: _Step, gate: GateName, mode: str) -> bool:
    """True when the gate lets the candidate through; otherwise hold and say so once."""
    if mode == "Automatic" or _approved(step, gate):
        return True
    message = (
        f"{reasons.WAITING_FOR_APPROVAL}{gate} for version {step.status.candidate_version}: add "
        f"{{gate: {gate}, version: {step.status.candidate_version}}} to spec.approvals or run "
        f"kubectl modelrollout approve {step.md.metadata['name']} --gate {gate}"
    )
    previous = step.before.get(reasons.PAUSED)
    if previous is None or previous.reason != reasons.GATE_WAITING:
        step.event("Normal", reasons.GATE_WAITING, message)
    step.condition(reasons.PAUSED, True, reasons.GATE_WAITING, message)
    step.status.message = message
    step.requeue(POLL_SECONDS)
    return False


def _baking(step: _Step) -> None:
    """One reconcile of the bake: assess fresh measurements, then hold, advance or end."""
    status = step.status
    spec = step.md.spec
    baking = spec.stages.baking
    if baking is None:  # the stage was removed from the spec mid-bake
        _after_baking(step, "the Baking stage was removed")
        return
    if status.aborted:
        _roll_back(step, reasons.ABORTED, "aborted with kubectl modelrollout abort")
        return
    if in_shadow(step.md):
        assert baking.shadow is not None
        _shadow(step, baking.shadow, baking.steps[0].weight)
        return
    fired = _assess(step, baking.analysis) if baking.analysis is not None else None
    if fired is not None:
        reason, message, action = fired
        if action == "Rollback" and spec.rollback.automatic:
            _roll_back(step, reason, message)
        else:
            why = "automatic rollback is off" if action == "Rollback" else "the trigger holds"
            previous = step.before.get(reasons.PAUSED)
            if previous is None or previous.reason != reason:
                step.event("Warning", reason, f"{message}; {why}")
            step.condition(reasons.PAUSED, True, reason, f"{message}; {why}")
        return
    held = get_condition(status.conditions, reasons.PAUSED)
    if spec.paused or (held is not None and held.status == "True"):
        step.requeue(POLL_SECONDS)
        return
    index = min(status.current_step or 0, len(baking.steps) - 1)
    current = baking.steps[index]
    elapsed = step.elapsed(status.step_started_at)
    remaining = parse_duration(current.duration) - elapsed
    # A step ends once its time is up and the latest measurement of every check, taken
    # during the step, was successful: errors and missing data hold it.
    analysed = baking.analysis is None or (
        status.last_analysis_at is not None
        and status.step_started_at is not None
        and parse_rfc3339(status.last_analysis_at) >= parse_rfc3339(status.step_started_at)
        and all(
            t.measurements and t.measurements[-1].phase == "Successful"
            for t in status.analysis
            if t.name not in _notify_only(spec)
        )
    )
    if baking.analysis is not None:
        step.requeue(
            analysis.seconds_until_due(
                status.last_analysis_at, parse_duration(baking.analysis.interval), step.o.now
            )
        )
    if remaining > 0 or not analysed:
        status.traffic = TrafficStatus(
            stable_weight=100 - current.weight, candidate_weight=current.weight
        )
        status.message = (
            f"baking {status.candidate_version} at {current.weight}% "
            f"(step {index + 1} of {len(baking.steps)})"
        )
        step.requeue(max(remaining, 1.0) if remaining > 0 else POLL_SECONDS)
        return
    if index + 1 < len(baking.steps):
        nxt = baking.steps[index + 1]
        status.current_step = index + 1
        status.step_started_at = rfc3339(step.o.now)
        status.traffic = TrafficStatus(stable_weight=100 - nxt.weight, candidate_weight=nxt.weight)
        step.event(
            "Normal",
            reasons.STEP_ADVANCED,
            f"step {index + 2} of {len(baking.steps)}: {nxt.weight}% of live traffic to "
            f"{status.candidate_version}",
        )
        step.requeue(0)
        return
    _after_baking(step, f"every bake step passed ({len(baking.steps)} steps)")


def shadow_run(status: ModelDeploymentStatus) -> str:
    """The id of the candidate's shadow run: its hash and attempt."""
    return f"{(status.candidate_hash or 'none')[:16]}-{status.attempt or 1}"


def in_shadow(md: ModelDeployment) -> bool:
    """Whether the candidate is in its shadow step: baking, with a shadow not yet ended."""
    status = md.status
    baking = md.spec.stages.baking
    return (
        status is not None
        and status.phase == "Baking"
        and baking is not None
        and baking.shadow is not None
        and status.shadow is not None
        and status.shadow.outcome in ("Running", "Inconclusive")
    )


def _shadow(step: _Step, spec: ShadowStage, first_weight: int) -> None:
    """One reconcile of the shadow step: fold in the sidecars' counts, then fail, wait,
    hold for more pairs, or start the first weighted step."""
    status = step.status
    assert status.shadow is not None
    shadow = status.shadow
    status.traffic = TrafficStatus(stable_weight=100, candidate_weight=0)
    step.requeue(SHADOW_POLL_SECONDS)
    reading = step.o.shadow
    if reading is None:
        return
    if reading.error is not None or reading.state is None:
        shadow.message = f"the shadow counts could not be read: {reading.error}"
        status.message = shadow.message
        return
    verdict = judge_shadow(reading.state, spec)
    status.shadow = shadow = shadow.model_copy(update=verdict.figures)
    remaining = parse_duration(spec.duration) - step.elapsed(shadow.started_at)
    if verdict.outcome == "Fail":
        status.shadow = shadow.model_copy(
            update={"outcome": "Fail", "finished_at": rfc3339(step.o.now)}
        )
        _roll_back(step, reasons.SHADOW_FAILED, f"shadow: {verdict.message}")
        return
    if remaining > 0:
        status.message = (
            f"shadowing {status.candidate_version}, {remaining:.0f}s left: {verdict.message}"
        )
        step.requeue(min(max(remaining, 1.0), SHADOW_POLL_SECONDS))
        return
    if verdict.outcome == "Inconclusive":
        status.shadow = shadow.model_copy(update={"outcome": "Inconclusive"})
        message = f"the shadow step waits for more answers: {verdict.message}"
        if shadow.outcome != "Inconclusive":
            step.event("Normal", reasons.SHADOW_WAITING, message)
        status.message = message
        return
    status.shadow = shadow.model_copy(
        update={"outcome": "Pass", "finished_at": rfc3339(step.o.now)}
    )
    status.current_step = 0
    status.step_started_at = rfc3339(step.o.now)
    status.traffic = TrafficStatus(stable_weight=100 - first_weight, candidate_weight=first_weight)
    step.event(
        "Normal",
        reasons.SHADOW_PASSED,
        f"shadow passed: {verdict.message}; version {status.candidate_version} starts "
        f"baking at {first_weight}% of live traffic",
    )
    step.requeue(0)


def _after_baking(step: _Step, why: str) -> None:
    if _gate_open(step, "BeforeProduction", step.md.spec.gates.before_production):
        _promote(step, why)


def _assess(
    step: _Step, analysis_spec: AnalysisSpec, *, hold_when_inconclusive: bool = True
) -> tuple[str, str, TriggerAction] | None:
    """Fold this round's measurements into the tallies; the trigger that fired, if any."""
    probes = step.o.measurements
    if probes is None:
        return None
    status = step.status
    now = rfc3339(step.o.now)
    tallies = {r.name: r for r in status.analysis}
    fired: tuple[str, str, TriggerAction] | None = None
    inconclusive: list[str] = []
    notify: list[str] = []
    for check in _checks(step, analysis_spec):
        if not _window_moved(tallies.get(check.name), check.step, step.o.now):
            continue  # the window has not slid a step since its last measurement
        probe = Probe(*probes.get(check.name, (None, "not measured")))
        threshold = probe.bounds or check.threshold
        measurement = analysis.assess(probe.value, probe.error, threshold, check.no_data, now)
        if probe.basis and check.kind == "judge":  # the verdict says it all
            measurement = measurement.model_copy(update={"message": probe.basis})
        elif probe.basis:
            detail = f"{measurement.message}; {probe.basis}" if measurement.message else probe.basis
            measurement = measurement.model_copy(update={"message": detail})
        before = tallies.get(check.name, MetricResult(name=check.name))
        tally = analysis.record(before, measurement)
        if probe.query:
            tally.query = probe.query
        if check.kind == "judge":
            _announce_verdict(step, check.name, before, measurement)
        tallies[check.name] = tally
        verdict = analysis.status_of(
            tally,
            failure_limit=check.failure_limit,
            inconclusive_limit=check.inconclusive_limit,
            consecutive_error_limit=check.consecutive_error_limit,
        )
        message = f"{check.kind} {check.name} failed: {measurement.message or measurement.phase}"
        if verdict == "Failed" and check.action == "Notify":
            if measurement.phase == "Failed":  # once per failed measurement, not per round
                step.event("Warning", check.reason, f"{message}; the bake goes on (Notify)")
            notify.append(check.name)
        elif verdict == "Failed" and fired is None:
            fired = (check.reason, message, check.action)
        elif verdict == "Inconclusive":
            inconclusive.append(check.name)
    status.analysis = list(tallies.values())
    status.last_analysis_at = now
    if fired is None and inconclusive and hold_when_inconclusive:
        message = (
            f"inconclusive measurements of {', '.join(inconclusive)}: the bake is held; "
            "fix the data or run kubectl modelrollout abort"
        )
        previous = step.before.get(reasons.PAUSED)
        if previous is None or previous.reason != reasons.INCONCLUSIVE:
            step.event("Warning", reasons.INCONCLUSIVE, message)
        step.condition(reasons.PAUSED, True, reasons.INCONCLUSIVE, message)
    return fired


def _announce_verdict(
    step: _Step, name: str, before: MetricResult, measurement: Measurement
) -> None:
    """An Event whenever a judge's outcome changes, with its p-value, effect, interval
    and sample sizes: nothing the judge decides is hidden."""
    last = before.measurements[-1].phase if before.measurements else None
    if measurement.phase == last or measurement.phase == "Error":
        return
    outcome = {"Successful": "Pass", "Failed": "Fail"}.get(measurement.phase, "Inconclusive")
    step.event(
        "Warning" if outcome == "Fail" else "Normal",
        reasons.JUDGE_VERDICT,
        f"judge {name}: {outcome}: {measurement.message}",
    )


def _window_moved(tally: MetricResult | None, step: float | None, now: datetime) -> bool:
    """Whether a check is measured this round: always, unless it slides by ``step`` and
    its last measurement is more recent than that."""
    if step is None or tally is None or not tally.measurements:
        return True
    return (now - parse_rfc3339(tally.measurements[-1].started_at)).total_seconds() >= step


def measured_this_round(md: ModelDeployment, name: str, now: datetime) -> bool:
    """Whether the trigger called ``name`` is measured at ``now`` (its window has slid)."""
    status = md.status
    tally = next((r for r in status.analysis if r.name == name), None) if status else None
    trigger = next((t for t in md.spec.rollback.triggers if t.name == name), None)
    return _window_moved(tally, None if trigger is None else _step_seconds(trigger), now)


def _notify_only(spec: ModelDeploymentSpec) -> set[str]:
    """Triggers that only announce: their failures never hold a step."""
    return {t.name for t in spec.rollback.triggers if t.action == "Notify"}


@dataclass(frozen=True)
class _Check:
    kind: str
    name: str
    threshold: ThresholdRange
    no_data: Literal["Inconclusive", "Fail"]
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    reason: str
    action: TriggerAction = "Rollback"
    step: float | None = None  # seconds a live window slides between measurements


def _checks(step: _Step, analysis_spec: AnalysisSpec) -> list[_Check]:
    """Every SLO and query trigger, as one kind of check."""
    spec = step.md.spec
    checks: list[_Check] = [
        _Check(
            "SLO",
            slo.name,
            slo.threshold_range,
            slo.no_data,
            slo.failure_limit,
            slo.inconclusive_limit,
            slo.consecutive_error_limit,
            reasons.SLO_BREACH,
        )
        for slo in analysis_spec.slos
    ]
    checks += [
        _Check(
            "judge",
            judge.name,
            JUDGE_PASS,  # a judge's measurement is 1 for Fail, 0 for Pass: see Probe.basis
            "Inconclusive",
            judge.failure_limit,
            judge.inconclusive_limit,
            judge.consecutive_error_limit,
            reasons.JUDGE_FAILED,
        )
        for judge in analysis_spec.judges
    ]
    for trigger in spec.rollback.triggers:
        query = trigger.drift or trigger.accuracy_drop
        if trigger.type == "SLOBreach":
            continue  # the SLO itself is the check
        checks.append(
            _Check(
                "trigger",
                trigger.name,
                # the range of the other kinds is learned when they are measured (an
                # anomaly band, a quality floor relative to stable): Probe.bounds
                query.threshold_range if query is not None else ThresholdRange(),
                "Inconclusive",
                0,
                1_000_000,
                4,
                f"Trigger{trigger.type}",
                trigger.action,
                _step_seconds(trigger),
            )
        )
    return checks


def _step_seconds(trigger: Trigger) -> float | None:
    window = trigger.window
    return parse_duration(window.step) if window is not None and window.step else None


def active_analysis(md: ModelDeployment) -> AnalysisSpec | None:
    """The analysis in effect: the Baking stage's while baking; during a production watch,
    the watch's own, else the Baking stage's."""
    spec = md.spec
    baking = spec.stages.baking.analysis if spec.stages.baking is not None else None
    watch = spec.stages.production.watch
    if md.status is not None and md.status.phase == "Production" and watch is not None:
        return watch.analysis or baking
    return baking


def analysis_path(md: ModelDeployment) -> str:
    watch = md.spec.stages.production.watch
    in_production = md.status is not None and md.status.phase == "Production"
    if in_production and watch is not None and watch.analysis is not None:
        return "spec.stages.production.watch.analysis"
    return "spec.stages.baking.analysis"


def watched_track(md: ModelDeployment) -> workloads.Track:
    """The track whose version the triggers judge: the candidate while it bakes, stable
    during the production watch."""
    return "stable" if md.status is not None and md.status.phase == "Production" else "candidate"


def measurement_queries(md: ModelDeployment) -> dict[str, tuple[str, str]]:
    """Name -> (PromQL template, field path) of everything evaluated in the analysis."""
    spec = md.spec
    queries: dict[str, tuple[str, str]] = {}
    analysis_spec = active_analysis(md)
    if analysis_spec is not None:
        path = analysis_path(md)
        for i, slo in enumerate(analysis_spec.slos):
            field = "query" if slo.query is not None else "preset"
            queries[slo.name] = (slo.promql(), f"{path}.slos[{i}].{field}")
    for i, trigger in enumerate(spec.rollback.triggers):
        if trigger.drift is not None:
            queries[trigger.name] = (
                trigger.drift.query,
                f"spec.rollback.triggers[{i}].drift.query",
            )
        if trigger.accuracy_drop is not None:
            queries[trigger.name] = (
                trigger.accuracy_drop.query,
                f"spec.rollback.triggers[{i}].accuracyDrop.query",
            )
        if trigger.anomaly is not None:
            queries[trigger.name] = (
                trigger.anomaly.query,
                f"spec.rollback.triggers[{i}].anomaly.query",
            )
    return queries


def analysis_due(md: ModelDeployment, now: datetime) -> bool:
    """Whether the service should take measurements before this reconcile: while baking,
    and during a production watch."""
    status = md.status
    spec = active_analysis(md)
    if status is None or spec is None:
        return False
    if status.phase == "Production":
        if not _watch_open(md, now):
            return False
    elif status.phase != "Baking" or in_shadow(md):
        return False
    live = any(t.type in LIVE_WINDOW_TRIGGERS for t in md.spec.rollback.triggers)
    if not measurement_queries(md) and not live and not spec.judges:
        return False
    return analysis.analysis_due(status.last_analysis_at, parse_duration(spec.interval), now)


def _watch_open(md: ModelDeployment, now: datetime) -> bool:
    status = md.status
    watch = md.spec.stages.production.watch
    if status is None or watch is None or not status.revisions:
        return False
    if status.stage_started_at is None:
        return False
    elapsed = (now - parse_rfc3339(status.stage_started_at)).total_seconds()
    return elapsed < parse_duration(watch.duration)


def _promote(step: _Step, why: str) -> None:
    status = step.status
    step.finish("Promoted", why)
    step.event(
        "Normal",
        reasons.PROMOTED,
        f"version {status.candidate_version} promoted to production: {why}",
    )
    outgoing = status.stable_template or (step.o.stable.template if step.o.stable else None)
    if status.stable_hash is not None and status.stable_version is not None and outgoing:
        kept = Revision(
            version=status.stable_version,
            hash=status.stable_hash,
            template=outgoing,
            retired_at=rfc3339(step.o.now),
        )
        status.revisions = [kept, *status.revisions][:REVISIONS_KEPT]
    status.stable_template = None
    status.stable_version = status.candidate_version
    status.stable_hash = status.candidate_hash
    if step.md.spec.stages.production.watch is not None and status.revisions:
        status.analysis = []  # the watch keeps its own tallies; the bake's end here
        status.last_analysis_at = None
    status.candidate_version = None
    status.candidate_hash = None
    status.current_step = None
    status.step_started_at = None
    status.traffic = TrafficStatus(stable_weight=100, candidate_weight=0)
    step.enter("Production")


def _roll_back(step: _Step, reason: str, message: str) -> None:
    _withdraw(step, "RolledBack", reasons.ROLLED_BACK, reason, message)


def _fail(step: _Step, reason: str, message: str) -> None:
    """The candidate could not be tested at all: withdraw it and mark the rollout Failed."""
    _withdraw(step, "Failed", reasons.FAILED, reason, message)


def _withdraw(
    step: _Step,
    outcome: Literal["RolledBack", "Failed"],
    event_reason: str,
    reason: str,
    message: str,
) -> None:
    status = step.status
    step.finish(outcome, message)
    step.event("Warning", event_reason, message)
    status.traffic = TrafficStatus(
        stable_weight=100 if status.stable_hash else 0, candidate_weight=0
    )
    status.current_step = None
    step.enter(outcome)
    step.condition("RolledBack", True, reason, message)


def _conditions_for_phase(step: _Step) -> None:
    status = step.status
    phase = status.phase
    if phase in ("NonProduction", "Baking"):
        step.condition(
            reasons.PROGRESSING,
            True,
            reasons.NEW_CANDIDATE,
            f"rolling out {status.candidate_version}",
        )
    elif phase == "Production":
        step.condition(
            reasons.PROGRESSING,
            False,
            reasons.PROMOTED,
            f"{status.stable_version} is in production",
        )
    elif phase in ("RolledBack", "Failed"):
        step.condition(reasons.PROGRESSING, False, reasons.ROLLED_BACK, status.message)
    reverted = status.reverted
    if reverted is not None:
        step.condition(
            reasons.IN_SYNC,
            False,
            reasons.SPEC_DIFFERS,
            f"the spec asks for version {reverted.version}, taken out of production at "
            f"{reverted.at} ({reverted.reason}); version {status.stable_version} runs. Set "
            "the spec to it or to a new version, or run kubectl modelrollout retry",
        )
    elif get_condition(status.conditions, reasons.IN_SYNC) is not None:
        step.condition(reasons.IN_SYNC, True, reasons.SPEC_IN_SYNC, "what runs is the spec's")
    if status.stable_hash is None:
        step.condition(
            reasons.READY, False, reasons.NO_STABLE, "no version has reached production yet"
        )
    else:
        stable = step.o.stable
        ready = stable is not None and stable.available
        step.condition(
            reasons.READY,
            ready,
            reasons.STABLE_SERVING,
            f"stable version {status.stable_version} "
            + ("is serving" if ready else "is not ready yet"),
        )


def _objects(step: _Step) -> list[dict[str, Any]]:
    status = step.status
    spec = step.md.spec
    owner = step.md.metadata["name"]
    desired_hash = workloads.template_hash(spec)
    rolling = status.candidate_hash is not None and status.phase in ("NonProduction", "Baking")
    stable_replicas: int | None = spec.workload.replicas if status.stable_hash is not None else 0
    candidate_replicas: int | None = (
        max(spec.workload.candidate_replicas or spec.workload.replicas, 1) if rolling else 0
    )
    weight = status.traffic.candidate_weight if status.traffic else 0
    routed = traffic.replicas_follow_weights(spec.traffic.router, weight)
    if routed:
        # Live traffic follows the pods: the router sets both Deployments' replicas to the
        # split (services/routers/replica_ratio.py), so they are left out here.
        stable_replicas = candidate_replicas = None
    candidate = workloads.TrackPlan(
        template=workloads.pod_template(
            spec, owner, "candidate", capture_image=step.o.capture_image
        ),
        replicas=candidate_replicas,
        version=spec.model.version,
        hash=desired_hash,
    )
    if status.stable_hash is None or status.stable_hash == desired_hash:
        template = workloads.pod_template(spec, owner, "stable", capture_image=step.o.capture_image)
    elif status.stable_template is not None:
        template = status.stable_template  # restored by a revert, not the spec's
    else:
        existing = step.o.stable
        template = existing.template if existing is not None else {}
    stable = workloads.TrackPlan(
        template=template,
        replicas=stable_replicas,
        version=status.stable_version,
        hash=status.stable_hash,
    )
    return workloads.desired_objects(
        step.md, stable=stable, candidate=candidate, candidate_live=routed
    )


def record_traffic(
    status: ModelDeploymentStatus, check: traffic.Check, *, generation: int, now: datetime
) -> list[EventRecord]:
    """Fold the router's read-back into ``status``: the TrafficApplied condition, and a
    Warning Event when a mismatch is new (its message changed), not on every reconcile."""
    previous = get_condition(status.conditions, reasons.TRAFFIC_APPLIED)
    status.conditions = set_condition(
        status.conditions,
        type=reasons.TRAFFIC_APPLIED,
        status="True" if check.applied else "False",
        reason=check.reason,
        message=check.message,
        generation=generation,
        now=now,
    )
    seen = previous is not None and (previous.reason, previous.message) == (
        check.reason,
        check.message,
    )
    if check.reason == reasons.TRAFFIC_MISMATCH and not seen:
        return [EventRecord("Warning", check.reason, check.message)]
    return []


def replay_test_manifest(
    md: ModelDeployment, name: str, status: ModelDeploymentStatus
) -> dict[str, Any]:
    """The ReplayTest of the NonProduction stage, owned by the ModelDeployment."""
    spec = md.spec
    replay = spec.stages.non_production.replay
    assert replay is not None
    owner = workloads.Owner.of(md)

    def endpoint(track: workloads.Track) -> Endpoint:
        service_name = (
            names.candidate_name(owner.name)
            if track == "candidate"
            else names.stable_name(owner.name)
        )
        return Endpoint(
            service=ServiceEndpoint(
                name=service_name, port=spec.serving.service_port, path=spec.serving.predict_path
            )
        )

    settings = replay.model_dump(by_alias=False, exclude={"compare_with_stable"})
    baseline = endpoint("stable") if replay.compare_with_stable and status.stable_hash else None
    if baseline is None and replay.success_criteria is not None:
        # The first version has nothing to be compared with: criteria relative to a
        # baseline cannot be met or failed, so they do not apply to its replay.
        settings["success_criteria"] = {
            key: value
            for key, value in replay.success_criteria.model_dump().items()
            if key not in BASELINE_CRITERIA and not key.endswith("_to_baseline")
        }
    rt_spec = ReplayTestSpec(**settings, target=endpoint("candidate"), baseline=baseline)
    return {
        "apiVersion": API_VERSION,
        "kind": "ReplayTest",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": {
                workloads.LABEL_NAME: owner.name,
                workloads.LABEL_VERSION: workloads.label_value(status.candidate_version or ""),
                workloads.LABEL_MANAGED_BY: workloads.MANAGER,
            },
            "ownerReferences": [owner.reference()],
        },
        "spec": rt_spec.to_wire(),
    }
