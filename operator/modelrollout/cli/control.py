"""``modelrollout status | approve | abort | resume | retry | undo``: look at and steer a
rollout.

These commands write only the status subresource (``status.approvals``,
``status.aborted``, ``status.resumedAt``, ``status.retryRequestedAt``, ``status.undo``),
never the spec,
so a ModelDeployment kept in Git stays in sync with Argo CD or Flux. Approvals can also be
kept in Git, in ``spec.approvals``. Each write carries the object's resourceVersion, so a
command never overwrites a status the operator wrote in between; it retries instead.

As a kubectl plugin: ``kubectl modelrollout approve fraud-scorer --gate BeforeProduction``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from modelrollout.cli import cluster
from modelrollout.core import errors
from modelrollout.core.api import modeldeployment
from modelrollout.core.api.modeldeployment import ModelDeploymentStatus
from modelrollout.core.clock import rfc3339, utcnow
from modelrollout.services.kube import Kube

ATTEMPTS = 5


def _load(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    raw = kube.get_custom(modeldeployment.PLURAL, namespace, name)
    if raw is None:
        raise SystemExit(f"error: ModelDeployment {namespace}/{name} not found")
    return raw


def _write(
    args: argparse.Namespace, change: Callable[[dict[str, Any]], dict[str, Any] | str]
) -> int:
    """Read, compute the status change, write it with the resourceVersion; retry conflicts."""
    kube, namespace = cluster.connect(args)
    for _ in range(ATTEMPTS):
        raw = _load(kube, namespace, args.name)
        patch = change(raw)
        if isinstance(patch, str):
            print(f"error: {patch}", file=sys.stderr)
            return 1
        try:
            kube.patch_status(
                modeldeployment.PLURAL,
                namespace,
                args.name,
                patch,
                resource_version=raw["metadata"]["resourceVersion"],
            )
        except errors.Conflict:
            continue
        return 0
    print("error: the object kept changing; try again", file=sys.stderr)
    return 1


def _status(raw: dict[str, Any]) -> ModelDeploymentStatus:
    body = {k: v for k, v in (raw.get("status") or {}).items() if k != "kopf"}
    return ModelDeploymentStatus.model_validate(body)


def _approve(args: argparse.Namespace) -> int:
    def change(raw: dict[str, Any]) -> dict[str, Any] | str:
        status = _status(raw)
        version = args.version or status.candidate_version
        if version is None:
            return f"{args.name} has no candidate to approve; pass --version"
        approvals = [a.to_wire() for a in status.approvals]
        entry = {"gate": args.gate, "version": version}
        if entry not in approvals:
            approvals.append(entry)
        print(f"approved {args.gate} for {args.name} version {version}")
        return {"approvals": approvals[-32:]}

    return _write(args, change)


def _abort(args: argparse.Namespace) -> int:
    def change(raw: dict[str, Any]) -> dict[str, Any] | str:
        status = _status(raw)
        if status.phase not in ("NonProduction", "Baking"):
            return f"{args.name} is {status.phase}: there is no rollout to abort"
        print(f"aborting the rollout of {args.name} {status.candidate_version}")
        return {"aborted": True}

    return _write(args, change)


def _resume(args: argparse.Namespace) -> int:
    def change(raw: dict[str, Any]) -> dict[str, Any] | str:
        print(f"resuming {args.name}")
        return {"resumedAt": rfc3339(utcnow())}

    return _write(args, change)


def _retry(args: argparse.Namespace) -> int:
    def change(raw: dict[str, Any]) -> dict[str, Any] | str:
        status = _status(raw)
        if status.phase not in ("RolledBack", "Failed"):
            return f"{args.name} is {status.phase}: only a rolled-back or failed rollout is retried"
        version = status.candidate_version or (status.reverted and status.reverted.version)
        print(f"retrying {args.name} {version}")
        return {"retryRequestedAt": rfc3339(utcnow())}

    return _write(args, change)


def _undo(args: argparse.Namespace) -> int:
    def change(raw: dict[str, Any]) -> dict[str, Any] | str:
        status = _status(raw)
        if status.phase in ("NonProduction", "Baking"):
            return (
                f"{args.name} is rolling out {status.candidate_version}: "
                "use kubectl modelrollout abort"
            )
        kept = [r.version for r in status.revisions]
        if not kept:
            return f"{args.name} keeps no earlier version to go back to"
        if args.to_version is not None and args.to_version not in kept:
            return f"{args.name} keeps no template of {args.to_version} (kept: {', '.join(kept)})"
        target = args.to_version or kept[0]
        print(f"reverting {args.name} from {status.stable_version} to {target}")
        request = {"requestedAt": rfc3339(utcnow())}
        if args.to_version is not None:
            request["toVersion"] = args.to_version
        return {"undo": request}

    return _write(args, change)


def _show(args: argparse.Namespace) -> int:
    kube, namespace = cluster.connect(args)
    status = _status(_load(kube, namespace, args.name))
    weight = status.traffic.candidate_weight if status.traffic else 0
    print(f"Name:       {namespace}/{args.name}")
    print(f"Phase:      {status.phase}")
    print(f"Stable:     {status.stable_version or '-'}")
    print(f"Candidate:  {status.candidate_version or '-'}  ({weight}% of live traffic)")
    if status.current_step is not None:
        print(f"Step:       {status.current_step + 1}")
    print(f"Message:    {status.message or '-'}")
    if status.conditions:
        print("Conditions:")
        for cond in status.conditions:
            print(f"  {cond.type:<20} {cond.status:<8} {cond.reason:<22} {cond.message}")
    if status.shadow is not None:
        shadow = status.shadow
        print(f"Shadow:     {shadow.outcome}  {shadow.message or '-'}")
    if status.analysis:
        print("Analysis:")
        for tally in status.analysis:
            last = tally.measurements[-1] if tally.measurements else None
            value = "-" if last is None or last.value is None else f"{last.value:g}"
            print(
                f"  {tally.name:<20} ok {tally.successful:<4} failed {tally.failed:<4} "
                f"inconclusive {tally.inconclusive:<4} errors {tally.error:<4} last {value}"
            )
            if last is not None and last.message:
                print(f"  {'':<20} {last.message}")
    if status.revisions:
        kept = ", ".join(r.version for r in status.revisions)
        print(f"Revisions:  {kept}  (kubectl modelrollout undo restores them)")
    if status.history:
        print("History:")
        for entry in status.history:
            print(f"  {entry.finished_at}  {entry.version:<16} {entry.outcome:<11} {entry.reason}")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="Name of the ModelDeployment.")
    cluster.add_arguments(parser)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = subparsers.add_parser("status", help="Show a ModelDeployment's rollout.")
    _common(status)
    status.set_defaults(func=_show)
    approve = subparsers.add_parser("approve", help="Open a manual gate for a version.")
    _common(approve)
    approve.add_argument("--gate", required=True, choices=["BeforeBaking", "BeforeProduction"])
    approve.add_argument("--version", default=None, help="Version (default: the candidate).")
    approve.set_defaults(func=_approve)
    abort = subparsers.add_parser("abort", help="Roll the candidate back now.")
    _common(abort)
    abort.set_defaults(func=_abort)
    resume = subparsers.add_parser(
        "resume", help="Lift a hold for inconclusive data or a trigger (rollback off)."
    )
    _common(resume)
    resume.set_defaults(func=_resume)
    retry = subparsers.add_parser("retry", help="Roll a rolled-back candidate out again.")
    _common(retry)
    retry.set_defaults(func=_retry)
    undo = subparsers.add_parser(
        "undo",
        help="Put an earlier stable version back in production now, without a Git change.",
    )
    _common(undo)
    undo.add_argument(
        "--to-version",
        default=None,
        metavar="V",
        help="The version to restore (default: the previous one); see status Revisions.",
    )
    undo.set_defaults(func=_undo)
