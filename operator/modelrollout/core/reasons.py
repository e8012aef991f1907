"""Every condition type and reason the operator writes, in one place.

Reasons are part of the API: they appear in ``kubectl get`` conditions and in Events, and
users alert and script on them (``kubectl wait --for=condition=...``,
``kubectl get events --field-selector reason=RolledBack``). Each one is defined here once,
as a constant, and every module that writes a condition or an Event takes it from here.
"""

from __future__ import annotations

# -- condition types ----------------------------------------------------------------------

# Both kinds
INVALID = "Invalid"
"""True while the object cannot be read by this operator (a field is named)."""
REFERENCES = "ReferencesResolved"
"""Whether every ConfigMap and Secret the spec refers to exists."""

# ModelDeployment
READY = "Ready"
PROGRESSING = "Progressing"
REPLAY_PASSED = "ReplayPassed"
PAUSED = "Paused"
TRAFFIC_APPLIED = "TrafficApplied"
WATCHING = "Watching"
"""True while a promoted version's triggers keep running (stages.production.watch)."""
IN_SYNC = "InSync"
"""False while what runs differs from the spec (a version was reverted)."""

# ReplayTest
COMPLETE = "Complete"
PASSED = "Passed"

# -- reasons of both kinds ------------------------------------------------------------------

INVALID_SPEC = "InvalidSpec"
MISSING_REFERENCE = "MissingReference"
REFERENCES_FOUND = "ReferencesFound"

# -- ModelDeployment ------------------------------------------------------------------------

NEW_CANDIDATE = "NewCandidate"
WAITING_FOR_CANDIDATE = "WaitingForCandidate"
REPLAY_CREATED = "ReplayTestCreated"
REPLAY_RUNNING = "ReplayRunning"
REPLAY_SUCCEEDED = "ReplayPassed"
REPLAY_FAILED = "ReplayFailed"
PROMOTED = "Promoted"
ROLLED_BACK = "RolledBack"
BAKING = "Baking"
STAGE_TIMEOUT = "StageTimeout"
STABLE_SERVING = "StableServing"
NO_STABLE = "NoStableVersion"
PAUSED_BY_SPEC = "PausedBySpec"
NOT_PAUSED = "NotPaused"
GATE_WAITING = "GateWaiting"
WAITING_FOR_APPROVAL = "waiting for approval of "
"""How a GateWaiting message starts; the gate's name follows (steering reads it back)."""
STEP_ADVANCED = "StepAdvanced"
SLO_BREACH = "SLOBreach"
JUDGE_FAILED = "JudgeFailed"
JUDGE_VERDICT = "JudgeVerdict"
SHADOW_STARTED = "ShadowStarted"
SHADOW_PASSED = "ShadowPassed"
SHADOW_FAILED = "ShadowFailed"
SHADOW_WAITING = "ShadowWaiting"
INCONCLUSIVE = "Inconclusive"
ABORTED = "Aborted"
RESUMED = "Resumed"
RETRY = "Retry"
FAILED = "Failed"
PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
TRIGGERS = (
    "TriggerDrift",
    "TriggerAccuracyDrop",
    "TriggerSLOBreach",
    "TriggerAnomaly",
    "TriggerFeatureDrift",
    "TriggerPredictionDrift",
    "TriggerQualityDrop",
)
"""The reason of each trigger type: ``Trigger`` + its type."""
TRAFFIC_ROUTER_ERROR = "TrafficRouterError"
WEIGHTS_IN_EFFECT = "WeightsInEffect"
TRAFFIC_MISMATCH = "TrafficMismatch"
NOTIFICATION_FAILED = "NotificationFailed"
WATCH_STARTED = "WatchStarted"
WATCH_ENDED = "WatchEnded"
REVERTED = "Reverted"
UNDO = "Undo"
UNDO_REFUSED = "UndoRefused"
SPEC_DIFFERS = "SpecDiffers"
SPEC_IN_SYNC = "SpecInSync"

# -- ReplayTest -----------------------------------------------------------------------------

REPLAY_STARTED = "ReplayStarted"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
SHARD_FAILED = "ShardFailed"
DEADLINE_EXCEEDED = "DeadlineExceeded"
BAD_RESULT = "InvalidResult"
CRITERIA_MET = "CriteriaMet"
CRITERIA_FAILED = "CriteriaFailed"
UNSUPPORTED_SOURCE = "UnsupportedSource"
