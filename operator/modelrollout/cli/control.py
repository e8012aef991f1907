"""``modelrollout status | approve | abort | resume | retry | undo``: look at and steer a
rollout.

The steering commands write only the status subresource (``status.approvals``,
``status.aborted``, ``status.resumedAt``, ``status.retryRequestedAt``, ``status.undo``),
never the spec,
so a ModelDeployment kept in Git stays in sync with Argo CD or Flux. Approvals can also be
kept in Git, in ``spec.approvals``. Each write carries the object's resourceVersion, so a
command never overwrites a status the operator wrote in between; it retries instead. What
each writes is decided in :mod:`modelrollout.core.steering`, shared with the dashboard.

As a kubectl plugin: ``kubectl modelrollout approve fraud-scorer --gate BeforeProduction``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modelrollout.cli import cluster
from modelrollout.core import steering
from modelrollout.core.api import modeldeployment
from modelrollout.core.clock import utcnow
from modelrollout.services.kube import Kube
from modelrollout.services.steering import Refused, steer


def _load(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    raw = kube.get_custom(modeldeployment.PLURAL, namespace, name)
    if raw is None:
        raise SystemExit(f"error: ModelDeployment {namespace}/{name} not found")
    return raw


def _write(args: argparse.Namespace, decide: steering.Decide) -> int:
    """Write the decision with the resourceVersion (retried on conflicts); print it."""
    kube, namespace = cluster.connect(args)
    try:
        done = steer(kube, namespace, args.name, decide)
    except Refused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 1
    print(done.message)
    return 0


def _approve(args: argparse.Namespace) -> int:
    return _write(args, lambda s: steering.approve(args.name, s, args.gate, args.version))


def _abort(args: argparse.Namespace) -> int:
    return _write(args, lambda s: steering.abort(args.name, s))


def _resume(args: argparse.Namespace) -> int:
    return _write(args, lambda s: steering.resume(args.name, s, utcnow()))


def _retry(args: argparse.Namespace) -> int:
    return _write(args, lambda s: steering.retry(args.name, s, utcnow()))


def _undo(args: argparse.Namespace) -> int:
    return _write(args, lambda s: steering.undo(args.name, s, args.to_version, utcnow()))


def _show(args: argparse.Namespace) -> int:
    kube, namespace = cluster.connect(args)
    status = steering.status_of(_load(kube, namespace, args.name))
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
    approve.add_argument("--gate", required=True, choices=steering.GATES)
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
