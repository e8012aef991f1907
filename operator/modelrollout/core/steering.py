"""What each steering command writes: approve, abort, resume, retry and undo.

The command line and the dashboard steer a rollout the same way, so the decision of what
to write lives here, once: each function takes the ModelDeployment's name and status as
last read and returns either a :class:`Steer` (the status merge patch and what it does,
in words) or a refusal, a sentence saying why nothing is written. Time comes in as an
argument, so the decisions are pure and table-tested.

Only the status subresource is written (``status.approvals``, ``status.aborted``,
``status.resumedAt``, ``status.retryRequestedAt``, ``status.undo``), never the spec: a
ModelDeployment kept in Git stays in sync with Argo CD or Flux. The write itself, with the
object's resourceVersion and retried on a conflict, is
:func:`modelrollout.services.steering.steer`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from modelrollout.core import reasons
from modelrollout.core.api.base import readable
from modelrollout.core.api.modeldeployment import GateName, ModelDeploymentStatus
from modelrollout.core.clock import rfc3339

GATES: tuple[str, ...] = get_args(GateName)
MAX_APPROVALS = 32
"""The status keeps this many approvals, the newest."""
ROLLING_OUT = ("NonProduction", "Baking")


@dataclass(frozen=True)
class Steer:
    """A status merge patch to write, and what it does in words."""

    patch: dict[str, Any]
    message: str


Decision = Steer | str
"""A patch to write, or a refusal (why not)."""
Decide = Callable[[ModelDeploymentStatus], Decision]


def status_of(raw: dict[str, Any]) -> ModelDeploymentStatus:
    """The typed status of a ModelDeployment as read: the framework's bookkeeping and the
    fields this version does not know (a newer operator wrote them) are left out."""
    body = readable(raw, ModelDeploymentStatus, drop_invalid=False).get("status") or {}
    return ModelDeploymentStatus.model_validate(body)


def waiting_gate(status: ModelDeploymentStatus) -> str | None:
    """The gate the rollout waits at (from its Paused condition), or None."""
    for cond in status.conditions:
        if cond.type == reasons.PAUSED and cond.reason == reasons.GATE_WAITING:
            return next(
                (
                    g
                    for g in GATES
                    if cond.message.startswith(f"{reasons.WAITING_FOR_APPROVAL}{g} ")
                ),
                None,
            )
    return None


def approve(name: str, status: ModelDeploymentStatus, gate: str, version: str | None) -> Decision:
    """Open ``gate`` for ``version`` (default: the candidate)."""
    if gate not in GATES:
        return f"unknown gate {gate!r}; choose one of {', '.join(GATES)}"
    version = version or status.candidate_version
    if version is None:
        return f"{name} has no candidate to approve; pass --version"
    approvals = [a.to_wire() for a in status.approvals]
    entry = {"gate": gate, "version": version}
    if entry not in approvals:
        approvals.append(entry)
    return Steer(
        {"approvals": approvals[-MAX_APPROVALS:]},
        f"approved {gate} for {name} version {version}",
    )


def abort(name: str, status: ModelDeploymentStatus) -> Decision:
    """Roll the candidate back now."""
    if status.phase not in ROLLING_OUT:
        return f"{name} is {status.phase}: there is no rollout to abort"
    return Steer({"aborted": True}, f"aborting the rollout of {name} {status.candidate_version}")


def resume(name: str, status: ModelDeploymentStatus, now: datetime) -> Decision:
    """Lift a hold for inconclusive data or a trigger."""
    return Steer({"resumedAt": rfc3339(now)}, f"resuming {name}")


def retry(name: str, status: ModelDeploymentStatus, now: datetime) -> Decision:
    """Roll a rolled-back or failed candidate out again."""
    if status.phase not in ("RolledBack", "Failed"):
        return f"{name} is {status.phase}: only a rolled-back or failed rollout is retried"
    version = status.candidate_version or (status.reverted and status.reverted.version)
    return Steer({"retryRequestedAt": rfc3339(now)}, f"retrying {name} {version}")


def undo(
    name: str, status: ModelDeploymentStatus, to_version: str | None, now: datetime
) -> Decision:
    """Put an earlier stable version (default: the previous one) back in production."""
    if status.phase in ROLLING_OUT:
        return f"{name} is rolling out {status.candidate_version}: use kubectl modelrollout abort"
    kept = [r.version for r in status.revisions]
    if not kept:
        return f"{name} keeps no earlier version to go back to"
    if to_version is not None and to_version not in kept:
        return f"{name} keeps no template of {to_version} (kept: {', '.join(kept)})"
    target = to_version or kept[0]
    request = {"requestedAt": rfc3339(now)}
    if to_version is not None:
        request["toVersion"] = to_version
    return Steer({"undo": request}, f"reverting {name} from {status.stable_version} to {target}")


def for_action(action: str, name: str, fields: Mapping[str, str], now: datetime) -> Decide | None:
    """The decision of a named action (approve, abort, resume, retry, undo) with its
    fields as a form sends them (``gate``, ``version``, ``to_version``; empty means not
    given); None for an unknown action."""

    def given(key: str) -> str | None:
        return fields.get(key, "").strip() or None

    decisions: dict[str, Decide] = {
        "approve": lambda s: approve(name, s, given("gate") or "", given("version")),
        "abort": lambda s: abort(name, s),
        "resume": lambda s: resume(name, s, now),
        "retry": lambda s: retry(name, s, now),
        "undo": lambda s: undo(name, s, given("to_version"), now),
    }
    return decisions.get(action)
