"""The ReplayTest decision: from what was observed to the next status and actions.

``decide`` is pure, like the ModelDeployment's. The service gathers one :class:`Observed`
(the object, its missing references, whether its run can be built, the shards' state) and
carries out the :class:`Decision`: start the shards, stop them, record the Events and
write the status once. A finished ReplayTest is :func:`settled` and left alone until its
spec changes (a new generation runs again).

The shards' outcomes are folded into one status: any failed shard, a Job failure, the
active deadline or a shard without a readable result fails the test; when every shard has
succeeded their results are merged exactly and judged against ``successCriteria``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from modelrollout.core import reasons
from modelrollout.core.api.base import parse_duration
from modelrollout.core.api.replaytest import ReplayProgress, ReplayTest, ReplayTestStatus
from modelrollout.core.clock import parse_rfc3339, rfc3339
from modelrollout.core.conditions import EventRecord, Recorder
from modelrollout.core.references import Reference, resolved
from modelrollout.core.replay.result import evaluate, merge_results
from modelrollout.core.replay.shards import ShardOutcome

POLL_SECONDS = 2.0
"""How often a running replay is looked at (Job and pod events also trigger a look)."""
MISSING_RETRY_SECONDS = 10.0
REASONS_LIMIT = 64


@dataclass(frozen=True)
class Shards:
    """What the executor reports about the shards of the current generation."""

    outcomes: list[ShardOutcome] = field(default_factory=list)
    failure: tuple[str, str] | None = None
    """(reason, message) when the run as a whole failed (e.g. the Job's deadline)."""
    started: bool = False
    """Whether this generation's shards exist (a Job owned by this object, processes)."""
    name: str | None = None
    """The Job's name, when the executor has one."""


@dataclass(frozen=True)
class Observed:
    test: ReplayTest
    generation: int
    executor: str
    now: datetime
    missing: list[Reference] = field(default_factory=list)
    invalid: str | None = None
    """Why the run cannot be built (an event source this executor cannot read, say)."""
    shards: Shards | None = None
    """None when the run was not built (missing references, invalid)."""


@dataclass
class Decision:
    status: ReplayTestStatus
    events: list[EventRecord] = field(default_factory=list)
    start: bool = False
    """Start the shards of this generation."""
    stop: bool = False
    """Stop whatever runs for other generations (the test is over)."""
    requeue_after: float | None = None


def settled(test: ReplayTest, generation: int) -> bool:
    """A finished replay changes only with its spec."""
    status = test.status
    return (
        status is not None
        and status.observed_generation == generation
        and status.phase in ("Succeeded", "Failed")
    )


def decide(observed: Observed) -> Decision:
    """The next status and actions for one ReplayTest."""
    status = observed.test.status or ReplayTestStatus()
    if status.observed_generation != observed.generation:
        status = ReplayTestStatus(conditions=status.conditions)  # a new spec runs afresh
    else:
        status = status.model_copy(deep=True)
    status.observed_generation = observed.generation
    record = Recorder(status.conditions, observed.generation, observed.now)
    decision = Decision(status=status, events=record.events)
    if settled(observed.test, observed.generation):
        return decision
    if not resolved(record, observed.missing):
        decision.requeue_after = MISSING_RETRY_SECONDS
    elif observed.invalid is not None:
        _fail(status, record, reasons.INVALID_SPEC, observed.invalid, observed.now)
    elif observed.shards is not None:
        _run(observed, observed.shards, status, record, decision)
    status.conditions = record.conditions
    return decision


def _run(
    observed: Observed,
    shards: Shards,
    status: ReplayTestStatus,
    record: Recorder,
    decision: Decision,
) -> None:
    spec = observed.test.spec
    now = observed.now
    status.executor = observed.executor  # type: ignore[assignment]
    status.job_name = shards.name or status.job_name or str(observed.test.metadata["name"])
    if not shards.started:
        decision.start = True
        if status.start_time is None:
            record.event(
                "Normal",
                reasons.REPLAY_STARTED,
                f"replay started with the {observed.executor} executor "
                f"({spec.parallelism} shards): {spec.rate.describe()}",
            )
    if status.start_time is None:
        status.start_time = rfc3339(now)
    by_index = {o.index: o for o in shards.outcomes}
    outcomes = [by_index.get(i, ShardOutcome(i, "pending")) for i in range(spec.parallelism)]
    status.progress = ReplayProgress(
        shards=spec.parallelism,
        succeeded=sum(s.state == "succeeded" for s in outcomes),
        failed=sum(s.state == "failed" for s in outcomes),
        active=sum(s.state == "running" for s in outcomes),
    )
    failure = _failure(observed, shards, outcomes, status)
    if failure is not None:
        _fail(status, record, *failure, now)
        decision.stop = True
        return
    if any(s.state != "succeeded" for s in outcomes):
        status.phase = "Running"
        message = (
            f"{status.progress.succeeded}/{spec.parallelism} shards finished, "
            f"{status.progress.active} running"
        )
        record.condition(reasons.COMPLETE, False, reasons.RUNNING, message)
        record.condition(reasons.PASSED, None, reasons.RUNNING, "the replay has not finished")
        decision.requeue_after = POLL_SECONDS
        return
    merged = merge_results([s.result for s in outcomes if s.result is not None])
    verdict = evaluate(merged, spec.success_criteria)
    status.result = merged.summary()
    status.phase = "Succeeded"
    status.verdict = "Passed" if verdict.passed else "Failed"
    status.reasons = list(verdict.reasons)[:REASONS_LIMIT]
    status.completion_time = rfc3339(now)
    summary = "; ".join(status.reasons) or "no criteria set"
    reason = reasons.CRITERIA_MET if verdict.passed else reasons.CRITERIA_FAILED
    record.condition(
        reasons.COMPLETE, True, reasons.SUCCEEDED, f"all {spec.parallelism} shards finished"
    )
    record.condition(reasons.PASSED, verdict.passed, reason, summary)
    record.event(
        "Normal" if verdict.passed else "Warning",
        reason,
        f"replay {status.verdict.lower()}: {summary}",
    )
    decision.stop = True


def _failure(
    observed: Observed,
    shards: Shards,
    outcomes: list[ShardOutcome],
    status: ReplayTestStatus,
) -> tuple[str, str] | None:
    """Why the run failed, if it did: the executor's word first, then the first failed
    shard, the active deadline, and shards that finished without a readable result."""
    if shards.failure is not None:
        return shards.failure
    failed = [s for s in outcomes if s.state == "failed"]
    if failed:
        first = failed[0]
        return (
            first.reason or reasons.SHARD_FAILED,
            f"shard {first.index} failed: {first.reason} {first.message}".strip(),
        )
    spec = observed.test.spec
    assert status.start_time is not None
    running_for = (observed.now - parse_rfc3339(status.start_time)).total_seconds()
    if running_for > parse_duration(spec.active_deadline):
        return reasons.DEADLINE_EXCEEDED, f"the replay did not finish within {spec.active_deadline}"
    unreadable = [s.index for s in outcomes if s.state == "succeeded" and s.result is None]
    if unreadable:
        return reasons.BAD_RESULT, f"shards {unreadable} finished without a readable result line"
    return None


def _fail(
    status: ReplayTestStatus, record: Recorder, reason: str, message: str, now: datetime
) -> None:
    status.phase = "Failed"
    status.verdict = "Failed"
    status.reasons = [message]
    status.completion_time = rfc3339(now)
    record.condition(reasons.COMPLETE, False, reason, message)
    record.condition(reasons.PASSED, False, reason, message)
    record.event("Warning", reason, message)
