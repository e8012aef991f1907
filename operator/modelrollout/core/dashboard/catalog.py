"""The catalog page: every ModelVersion record with what was measured of it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from modelrollout.core import catalog
from modelrollout.core.catalog import Entry
from modelrollout.core.dashboard.page import e, listing_page, phase_badge
from modelrollout.core.replay import report


def _num(value: float | None, spec: str) -> str:
    return report.MISSING if value is None else format(value, spec)


def _text(value: str | None) -> str:
    return report.MISSING if not value else e(value)


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return report.MISSING
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:,.1f} h"


def listing(entries: Sequence[Entry], now: datetime, *, scope: str, problem: str = "") -> str:
    """One row per record: category, stage, the replay's figures, capacity and usage."""
    rows = []
    for entry in entries:
        s = entry.status
        replay = s.replay
        capacity = s.capacity
        cap = report.MISSING
        if capacity is not None and capacity.rate is not None:
            cap = f"{'≥ ' if not capacity.reached else ''}{capacity.rate:,.0f}"
        rows.append(
            [
                e(entry.namespace),
                f'<a href="/md/{e(entry.namespace)}/{e(entry.deployment)}">{e(entry.model)}</a>',
                e(entry.version),
                _text("/".join(x for x in (s.category, s.subcategory) if x)),
                phase_badge(s.stage),
                _num(replay.latency_ms.p99 if replay else None, ",.2f"),
                report.pct(replay.error_rate) if replay else report.MISSING,
                _num(replay.accuracy if replay else None, ".3f"),
                report.pct(replay.agreement) if replay and replay.agreement is not None
                else report.MISSING,
                cap,
                _duration(catalog.production_seconds(s, now)),
                _num(s.usage.live_requests, ",.0f"),
                _text(s.uri),
            ]
        )  # fmt: skip
    head = ["namespace", "model", "version", "category", "stage", "p99 ms", "errors",
            "accuracy", "agreement", "capacity req/s", "in production", "live requests",
            "uri"]  # fmt: skip
    table = report.table(head, rows, numeric=(5, 6, 7, 8, 9, 10, 11)) if rows else ""
    return listing_page("Catalog", "/catalog", "catalog", table, "ModelVersion", scope, problem)
