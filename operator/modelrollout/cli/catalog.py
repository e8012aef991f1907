"""``modelrollout catalog list | show | suggest``: the measured record of every version.

The records are the ModelVersion objects the operator writes (one per version a
ModelDeployment rolled out). ``suggest`` ranks the versions of a category against
constraints and says why each qualifies or not; with ``--manifest`` it prints the
ModelDeployment that rolls the best one out, ready for Git or ``kubectl apply -f -``.

As a kubectl plugin: ``kubectl modelrollout catalog suggest --category fraud --max-p99-ms 50``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

import yaml

from modelrollout.cli import cluster
from modelrollout.core import catalog, schema
from modelrollout.core.api import modeldeployment
from modelrollout.core.catalog import Entry
from modelrollout.core.clock import utcnow
from modelrollout.services import catalog as records
from modelrollout.services.kube import Kube


def _num(value: float | None, spec: str = ".4g", unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _load(args: argparse.Namespace) -> tuple[Kube, list[Entry]]:
    kube, namespace = cluster.connect(args)
    return kube, records.list_records(kube, None if args.all_namespaces else namespace)


def _order(e: Entry) -> tuple[str, str, str]:
    return (e.namespace, e.model, e.status.stages[0].entered_at if e.status.stages else "")


def _list(args: argparse.Namespace) -> int:
    entries = [
        e for e in _load(args)[1] if args.category is None or e.status.category == args.category
    ]
    if not entries:
        print("No ModelVersion records found.", file=sys.stderr)
        return 0
    now = utcnow()
    head = ["NAMESPACE"] if args.all_namespaces else []
    rows = [
        [*head, "MODEL", "VERSION", "CATEGORY", "STAGE", "P99MS", "ERRORS", "ACCURACY",
         "AGREEMENT", "CAPACITY", "IN PROD", "REQUESTS"]
    ]  # fmt: skip
    for e in sorted(entries, key=_order):
        s = e.status
        replay = s.replay
        rows.append(
            [
                *([e.namespace] if args.all_namespaces else []),
                e.model,
                e.version,
                "/".join(x for x in (s.category, s.subcategory) if x) or "-",
                s.stage,
                _num(replay.latency_ms.p99 if replay else None, ".1f"),
                _num(replay.error_rate if replay else None, ".2%"),
                _num(replay.accuracy if replay else None, ".3f"),
                _num(replay.agreement if replay else None, ".1%"),
                _num(s.capacity.rate if s.capacity else None, ".0f", "/s"),
                _duration(catalog.production_seconds(s, now)),
                _num(s.usage.live_requests, ".0f"),
            ]
        )
    print(_table(rows))
    return 0


def _find(entries: list[Entry], ref: str) -> Entry | None:
    """A record by its object name, or by ``DEPLOYMENT/VERSION`` or ``MODEL/VERSION``."""
    for e in entries:
        if ref in (e.name, f"{e.deployment}/{e.version}", f"{e.model}/{e.version}"):
            return e
    return None


def _show(args: argparse.Namespace) -> int:
    _, entries = _load(args)
    entry = _find(entries, args.record)
    if entry is None:
        known = ", ".join(f"{e.deployment}/{e.version}" for e in entries) or "none"
        print(f"error: no record {args.record!r} (known: {known})", file=sys.stderr)
        return 1
    s = entry.status
    if args.output in ("json", "yaml"):
        body = {
            "name": entry.name,
            "namespace": entry.namespace,
            "modelDeployment": entry.deployment,
            "model": entry.model,
            "version": entry.version,
            "record": s.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        text = json.dumps(body, indent=2) if args.output == "json" else yaml.safe_dump(body)
        print(text.rstrip())
        return 0
    print(f"Record:      {entry.namespace}/{entry.name}")
    print(f"Model:       {entry.model} {entry.version}  (ModelDeployment {entry.deployment})")
    print(f"Stage:       {s.stage}")
    print(f"Category:    {'/'.join(x for x in (s.category, s.subcategory) if x) or '-'}")
    print(f"URI:         {s.uri or '-'}")
    print(f"Framework:   {s.framework or '-'}")
    print(f"Replicas:    {_num(s.replicas, 'd')}")
    for res in s.resources:
        requests = ", ".join(f"{k}={v}" for k, v in res.requests.items()) or "-"
        limits = ", ".join(f"{k}={v}" for k, v in res.limits.items()) or "-"
        print(f"Resources:   {res.container}: requests {requests}; limits {limits}")
    if s.replay is not None:
        r = s.replay
        lat = r.latency_ms
        print(f"Replay:      {r.replay_test} ({r.verdict}), {r.requests} requests")
        print(
            f"  latency    p50 {_num(lat.p50, '.2f')} ms, p90 {_num(lat.p90, '.2f')} ms, "
            f"p99 {_num(lat.p99, '.2f')} ms, p99.9 {_num(lat.p999, '.2f')} ms"
        )
        print(
            f"  served     {r.throughput:.1f} ok/s, error rate {_num(r.error_rate, '.2%')}, "
            f"availability {_num(r.availability, '.2%')}"
        )
        print(f"  quality    accuracy {_num(r.accuracy, '.4f')}, AUC {_num(r.auc, '.4f')}")
        if r.agreement is not None:
            print(f"  agreement  {r.agreement:.2%} with {r.predecessor or 'its predecessor'}")
    if s.capacity is not None:
        c = s.capacity
        bound = "" if c.reached else " (at least)"
        print(
            f"Capacity:    {_num(c.rate, '.0f', ' req/s')}{bound} with p99 <= "
            f"{c.p99_target_ms:g} ms, from {c.replay_test}: {c.message}"
        )
    if s.bake is not None:
        b = s.bake
        print(f"Bake:        {b.outcome}")
        for slo in b.slos:
            print(
                f"  {slo.name:<22} last {_num(slo.value)}  ok {slo.successful}  failed {slo.failed}"
            )
        if b.shadow_agreement is not None:
            print(f"  shadow agreement {b.shadow_agreement:.2%}")
    now = utcnow()
    print(
        f"Usage:       {_duration(catalog.production_seconds(s, now))} in production, "
        f"{_num(s.usage.live_requests, '.0f')} live requests"
        + (f" (at {s.usage.measured_at})" if s.usage.measured_at else "")
    )
    if s.api is not None:
        samples = f" from {s.api.samples} samples" if s.api.samples else ""
        print(f"API:         {s.api.source}{samples}")
        for label, doc in (("request", s.api.request), ("response", s.api.response)):
            if doc is not None:
                lines = schema.describe(doc)
                print(f"  {label}: {lines[0].strip()}")
                for line in lines[1:]:
                    print(f"    {line}")
    print("Stages:")
    for st in s.stages:
        left = st.left_at or "now"
        print(f"  {st.stage:<14} {st.entered_at} -> {left}  {st.reason}".rstrip())
    return 0


def _suggest(args: argparse.Namespace) -> int:
    kube, entries = _load(args)
    want = catalog.Constraints(
        category=args.category,
        subcategory=args.subcategory,
        max_p99_ms=args.max_p99_ms,
        min_accuracy=args.min_accuracy,
        min_capacity=args.min_capacity,
        max_error_rate=args.max_error_rate,
    )
    ranked = catalog.suggest(entries, want)
    if not ranked:
        known = sorted({e.status.category for e in entries if e.status.category})
        print(
            f"error: no version in category {args.category!r} "
            f"(categories: {', '.join(known) or 'none'})",
            file=sys.stderr,
        )
        return 1
    chosen = next((s for s in ranked if s.qualifies), None)
    if args.manifest:
        if chosen is None:
            print("error: no version meets the constraints; nothing to roll out", file=sys.stderr)
            _print_ranking(ranked, sys.stderr)
            return 1
        entry = chosen.entry
        current = kube.get_custom(modeldeployment.PLURAL, entry.namespace, entry.deployment)
        if current is None:
            print(
                f"error: ModelDeployment {entry.namespace}/{entry.deployment} is gone; "
                "its record cannot be turned into a manifest",
                file=sys.stderr,
            )
            return 1
        print(yaml.safe_dump(catalog.manifest(current, entry), sort_keys=False).rstrip())
        return 0
    _print_ranking(ranked, sys.stdout)
    return 0 if chosen is not None else 1


def _print_ranking(ranked: list[catalog.Suggestion], out: TextIO) -> None:
    for rank, s in enumerate(ranked, 1):
        e = s.entry
        mark = "qualifies" if s.qualifies else "does not qualify"
        print(f"{rank}. {e.model} {e.version} ({e.namespace}/{e.deployment}): {mark}", file=out)
        for reason in s.reasons:
            print(f"     - {reason}", file=out)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "catalog", help="The measured record of every model version; suggestions."
    )
    commands = parser.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")

    def common(sub: argparse.ArgumentParser) -> None:
        cluster.add_arguments(sub)
        sub.add_argument(
            "--all-namespaces", "-A", action="store_true", help="Records of every namespace."
        )

    listing = commands.add_parser("list", help="List the records.")
    common(listing)
    listing.add_argument("--category", default=None, help="Only this category.")
    listing.set_defaults(func=_list)

    show = commands.add_parser("show", help="Show one record.")
    common(show)
    show.add_argument("record", help="DEPLOYMENT/VERSION, MODEL/VERSION or the object name.")
    show.add_argument("--output", "-o", choices=["text", "json", "yaml"], default="text")
    show.set_defaults(func=_show)

    suggest = commands.add_parser(
        "suggest", help="Rank the versions of a category that meet constraints."
    )
    common(suggest)
    suggest.add_argument("--category", required=True, help="The category (required).")
    suggest.add_argument("--subcategory", default=None, help="Only this subcategory.")
    suggest.add_argument("--max-p99-ms", type=float, default=None, metavar="MS")
    suggest.add_argument("--min-accuracy", type=float, default=None, metavar="A")
    suggest.add_argument("--min-capacity", type=float, default=None, metavar="RPS")
    suggest.add_argument("--max-error-rate", type=float, default=None, metavar="E")
    suggest.add_argument(
        "--manifest",
        action="store_true",
        help="Print the ModelDeployment that rolls the best qualifying version out.",
    )
    suggest.set_defaults(func=_suggest)
