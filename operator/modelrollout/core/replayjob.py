"""What a ReplayTest runs, and how its shards' outcomes become a status.

A ReplayTest becomes ``parallelism`` shards of the same command,
``modelrollout replay ... --shard-index I --shard-count N --result-line``. With the job
executor they are the pods of one Indexed Job (the index comes from
``JOB_COMPLETION_INDEX``); with the local executor they are local processes. Either way
each shard prints its mergeable result as the last line of its output, and
:func:`conclude` merges the shards exactly and judges the merged result. The same code
runs for both executors, so a test run locally means what a run in the cluster means.

The Job follows the habits of Argo Rollouts' job metric provider: a deterministic name
with room for the index suffix, a controller owner reference, a label with the owner's
UID, no retries of a failed shard (a retried shard would send its events twice), and a
fast failure on terminal waiting reasons such as an image that cannot be pulled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from modelrollout.core import names
from modelrollout.core.api.base import parse_duration
from modelrollout.core.api.common import API_VERSION, ConditionStatus
from modelrollout.core.api.replaytest import (
    ComparisonSummary,
    Percentiles,
    QualitySummary,
    RateSummary,
    ReplayCounts,
    ReplayProgress,
    ReplaySummary,
    ReplayTestSpec,
    ReplayTestStatus,
)
from modelrollout.core.clock import parse_rfc3339, rfc3339
from modelrollout.core.conditions import set_condition
from modelrollout.core.replay import cliargs
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.result import ReplayResult, evaluate, merge_results

LABEL_REPLAY_TEST = "modelrollout.io/replaytest"
LABEL_REPLAY_UID = "modelrollout.io/replaytest-uid"
EVENTS_MOUNT = "/events"
RESULT_PATH = "/tmp/result.json"

TERMINAL_WAITING = {
    "ErrImagePull",
    "ErrImageNeverPull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}

DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "500m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}

# Condition types and reasons of a ReplayTest
COMPLETE = "Complete"
PASSED = "Passed"
READY = "Ready"
REASON_STARTED = "ReplayStarted"
REASON_RUNNING = "Running"
REASON_SUCCEEDED = "Succeeded"
REASON_SHARD_FAILED = "ShardFailed"
REASON_DEADLINE = "DeadlineExceeded"
REASON_BAD_RESULT = "InvalidResult"
REASON_CRITERIA_MET = "CriteriaMet"
REASON_CRITERIA_FAILED = "CriteriaFailed"
REASON_MISSING_REFERENCE = "MissingReference"
REASON_REFERENCES_FOUND = "ReferencesFound"
REASON_UNSUPPORTED = "UnsupportedSource"


@dataclass(frozen=True)
class ShardOutcome:
    """What one shard did: still running, succeeded with a result, or failed."""

    index: int
    state: Literal["pending", "running", "succeeded", "failed"]
    result: ReplayResult | None = None
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Target:
    """Resolved URLs of the target and baseline."""

    target: str
    baseline: str | None


def shard_args(spec: ReplayTestSpec, *, events: str, target: Target, shard_count: int) -> list[str]:
    """The ``modelrollout replay`` arguments shared by every shard (no shell involved).

    Success criteria are not passed: a shard sees only part of the run, so the verdict is
    taken on the merged result by :func:`conclude`.
    """
    options = ReplayOptions.model_validate(spec.model_dump(include=set(ReplayOptions.model_fields)))
    args = cliargs.replay_args(
        events=events,
        target=target.target,
        baseline=target.baseline,
        rate=spec.rate,
        selection=spec.selection,
        options=options,
        shard_count=shard_count,
        result_line=True,
    )
    return [*args, "--quiet"]


def events_location(spec: ReplayTestSpec) -> str:
    """Where a Job pod finds the events: a mounted file or the URL."""
    events = spec.events
    if events.url is not None:
        return events.url
    if events.config_map_key_ref is not None:
        return f"{EVENTS_MOUNT}/{events.config_map_key_ref.key}"
    assert events.volume is not None
    return f"{EVENTS_MOUNT}/{events.volume.path.lstrip('/')}"


def job_manifest(
    rt: dict[str, Any],
    spec: ReplayTestSpec,
    *,
    image: str,
    args: list[str],
    pull_policy: str = "IfNotPresent",
) -> dict[str, Any]:
    """The Indexed Job that runs the shards."""
    meta = rt["metadata"]
    name = names.job_name(meta["name"], int(meta.get("generation") or 1))
    labels = {
        LABEL_REPLAY_TEST: meta["name"],
        LABEL_REPLAY_UID: meta["uid"],
        "app.kubernetes.io/managed-by": "modelrollout",
        "app.kubernetes.io/component": "replay",
    }
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if spec.events.config_map_key_ref is not None:
        ref = spec.events.config_map_key_ref
        volumes.append(
            {
                "name": "events",
                "configMap": {"name": ref.name, "items": [{"key": ref.key, "path": ref.key}]},
            }
        )
        mounts.append({"name": "events", "mountPath": EVENTS_MOUNT, "readOnly": True})
    elif spec.events.volume is not None:
        volumes.append(
            {
                "name": "events",
                "persistentVolumeClaim": {
                    "claimName": spec.events.volume.claim_name,
                    "readOnly": True,
                },
            }
        )
        mounts.append({"name": "events", "mountPath": EVENTS_MOUNT, "readOnly": True})
    container = {
        "name": "replay",
        "image": image,
        "imagePullPolicy": pull_policy,
        "args": [*args, "--output", RESULT_PATH],
        "resources": spec.resources or DEFAULT_RESOURCES,
        "volumeMounts": mounts,
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "ReplayTest",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.parallelism,
            "parallelism": spec.parallelism,
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(1, int(parse_duration(spec.active_deadline))),
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def pod_outcome(pod: dict[str, Any], parse: Any) -> ShardOutcome:
    """Classify one Job pod. ``parse`` reads the pod's log into a result (or None)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    index = int(labels.get("batch.kubernetes.io/job-completion-index", 0))
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in TERMINAL_WAITING:
            return ShardOutcome(
                index,
                "failed",
                reason=str(waiting["reason"]),
                message=str(waiting.get("message", "")),
            )
    if phase == "Succeeded":
        return ShardOutcome(index, "succeeded", result=parse(pod))
    if phase == "Failed":
        message = status.get("message") or _termination_message(status)
        return ShardOutcome(
            index, "failed", reason=str(status.get("reason") or "PodFailed"), message=message
        )
    return ShardOutcome(index, "running" if phase == "Running" else "pending")


def _termination_message(status: dict[str, Any]) -> str:
    for cs in status.get("containerStatuses") or []:
        terminated = (cs.get("state") or {}).get("terminated") or {}
        if terminated:
            return f"exit code {terminated.get('exitCode')}: {terminated.get('message', '')}"
    return ""


@dataclass
class Conclusion:
    status: ReplayTestStatus
    events: list[tuple[str, str, str]] = field(default_factory=list)
    done: bool = False


def _percentiles(source: Any) -> Percentiles:
    return Percentiles(
        p50=source.p50,
        p90=source.p90,
        p95=source.p95,
        p99=source.p99,
        p999=source.p999,
        max=source.max,
        mean=source.mean,
    )


def _rounded(value: Any) -> Any:
    """Floats to six significant digits: far below the measurement error, and readable
    in ``kubectl get``."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def summarize(result: ReplayResult) -> ReplaySummary:
    """The status summary of a merged result, rounded for display."""
    summary = _summary(result)
    return ReplaySummary.model_validate(_rounded(summary.model_dump()))


def _summary(result: ReplayResult) -> ReplaySummary:
    quality = None
    if result.quality is not None:
        q = result.quality
        quality = QualitySummary(
            labeled=q.labeled,
            accuracy=q.accuracy,
            precision=q.precision,
            recall=q.recall,
            auc=q.auc,
        )
    comparison = None
    if result.comparison is not None:
        c = result.comparison
        comparison = ComparisonSummary(
            agreement=c.agreement,
            mean_abs_score_diff=c.score_diff.mean_abs if c.score_diff else None,
            baseline_p99_ms=c.baseline.latency_ms.p99 if c.baseline else None,
            baseline_error_rate=c.baseline.error_rate if c.baseline else None,
            baseline_accuracy=(
                c.baseline.quality.accuracy if c.baseline and c.baseline.quality else None
            ),
        )
    counts = result.counts
    return ReplaySummary(
        rate=RateSummary(target=result.rate.target, achieved=result.rate.achieved),
        counts=ReplayCounts(
            selected=counts.selected,
            sent=counts.sent,
            ok=counts.ok,
            errors=counts.errors,
            dropped=counts.dropped,
            malformed=counts.malformed,
        ),
        errors=dict(result.errors),
        error_rate=result.error_rate,
        availability=result.availability,
        throughput=result.throughput,
        latency_ms=_percentiles(result.latency_ms),
        service_time_ms=_percentiles(result.service_time_ms),
        quality=quality,
        comparison=comparison,
    )


def conclude(
    previous: ReplayTestStatus,
    spec: ReplayTestSpec,
    outcomes: list[ShardOutcome],
    *,
    generation: int,
    now: datetime,
    job_failure: tuple[str, str] | None = None,
) -> Conclusion:
    """Fold the shards' outcomes into the next status (pure)."""
    status = previous.model_copy(deep=True)
    out = Conclusion(status=status)

    def cond(type_: str, ok: bool | None, reason: str, message: str) -> None:
        value: ConditionStatus = "Unknown" if ok is None else ("True" if ok else "False")
        status.conditions = set_condition(
            status.conditions,
            type=type_,
            status=value,
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        )

    by_index = {o.index: o for o in outcomes}
    shards = [by_index.get(i, ShardOutcome(i, "pending")) for i in range(spec.parallelism)]
    status.progress = ReplayProgress(
        shards=spec.parallelism,
        succeeded=sum(s.state == "succeeded" for s in shards),
        failed=sum(s.state == "failed" for s in shards),
        active=sum(s.state == "running" for s in shards),
    )
    status.observed_generation = generation
    if status.start_time is None:
        status.start_time = rfc3339(now)
    deadline = parse_duration(spec.active_deadline)
    failed = [s for s in shards if s.state == "failed"]
    if job_failure is None and failed:
        first = failed[0]
        job_failure = (
            first.reason or REASON_SHARD_FAILED,
            f"shard {first.index} failed: {first.reason} {first.message}".strip(),
        )
    if job_failure is None and (now - parse_rfc3339(status.start_time)).total_seconds() > deadline:
        job_failure = (REASON_DEADLINE, f"the replay did not finish within {spec.active_deadline}")
    missing_results = [s.index for s in shards if s.state == "succeeded" and s.result is None]
    if job_failure is None and missing_results:
        job_failure = (
            REASON_BAD_RESULT,
            f"shards {missing_results} finished without a readable result line",
        )
    if job_failure is not None:
        reason, message = job_failure
        status.phase = "Failed"
        status.verdict = "Failed"
        status.reasons = [message]
        status.completion_time = rfc3339(now)
        cond(COMPLETE, False, reason, message)
        cond(PASSED, False, reason, message)
        out.events.append(("Warning", reason, message))
        out.done = True
        return out
    if any(s.state != "succeeded" for s in shards):
        status.phase = "Running"
        message = (
            f"{status.progress.succeeded}/{spec.parallelism} shards finished, "
            f"{status.progress.active} running"
        )
        cond(COMPLETE, False, REASON_RUNNING, message)
        cond(PASSED, None, REASON_RUNNING, "the replay has not finished")
        return out
    results = [s.result for s in shards if s.result is not None]
    merged = merge_results(results)
    verdict = evaluate(merged, spec.success_criteria)
    status.result = summarize(merged)
    status.phase = "Succeeded"
    status.verdict = "Passed" if verdict.passed else "Failed"
    status.reasons = list(verdict.reasons)[:64]
    status.completion_time = rfc3339(now)
    summary = "; ".join(status.reasons) or "no criteria set"
    cond(COMPLETE, True, REASON_SUCCEEDED, f"all {spec.parallelism} shards finished")
    cond(
        PASSED,
        verdict.passed,
        REASON_CRITERIA_MET if verdict.passed else REASON_CRITERIA_FAILED,
        summary,
    )
    out.events.append(
        (
            "Normal" if verdict.passed else "Warning",
            REASON_CRITERIA_MET if verdict.passed else REASON_CRITERIA_FAILED,
            f"replay {status.verdict.lower()}: {summary}",
        )
    )
    out.done = True
    return out
