"""The ReplayTest pages: the list, and one test with the replay report's charts.

A ReplayTest's status holds the summary of its merged result (no timeline). The full
result, with the per-second timeline the rate and latency charts need, is what the
shards printed; the server merges it from their logs while the Job's pods are kept, and
the page falls back to the summary without the charts over time when they are gone. The
charts and tables are the replay report's own (:mod:`modelrollout.core.replay.report`).
"""

from __future__ import annotations

from collections.abc import Sequence

from modelrollout.core.api.common import Endpoint
from modelrollout.core.api.replaytest import ReplayTest, ReplayTestStatus
from modelrollout.core.dashboard.page import (
    e,
    layout,
    listing_page,
    or_dash,
    phase_badge,
    rows_table,
    stamp,
)
from modelrollout.core.dashboard.rollouts import conditions_list
from modelrollout.core.replay import report
from modelrollout.core.replay.result import ReplayResult

NO_TIMELINE = (
    '<p class="note">The shards\' logs are gone (or the replay ran in the operator), so '
    "only the summary in the status is shown: no chart over time.</p>"
)


def replay_path(namespace: str, name: str) -> str:
    return f"/replaytests/{e(namespace)}/{e(name)}"


def endpoint_text(endpoint: Endpoint) -> str:
    """Where an endpoint sends requests, in words."""
    if endpoint.service is not None:
        svc = endpoint.service
        return f"{svc.scheme}://{svc.name}:{svc.port}{svc.path} (Service {svc.name})"
    if endpoint.model_deployment is not None:
        ref = endpoint.model_deployment
        return f"the {ref.track} track of ModelDeployment {ref.name}"
    return endpoint.url or ""


def _status(test: ReplayTest) -> ReplayTestStatus:
    return test.status or ReplayTestStatus()


def listing(tests: Sequence[ReplayTest], *, scope: str, problem: str = "") -> str:
    """Every ReplayTest: phase, verdict, target and headline numbers."""
    rows = []
    for test in tests:
        status = _status(test)
        ns, name = str(test.metadata.get("namespace", "")), str(test.metadata.get("name", ""))
        summary = status.result
        rows.append(
            [
                e(ns),
                f'<a href="{replay_path(ns, name)}">{e(name)}</a>',
                phase_badge(status.phase),
                phase_badge(status.verdict),
                stamp(status.start_time),
                "" if summary is None else f"{summary.counts.sent:,}",
                report.MISSING if summary is None else f"{summary.rate.achieved:,.2f}",
                report.MISSING if summary is None else report.pct(summary.error_rate),
            ]
        )
    head = ["namespace", "name", "phase", "verdict", "started", "sent", "req/s", "errors"]
    table = report.table(head, rows, numeric=(5, 6, 7)) if rows else ""
    return listing_page(
        "Replay tests", "/replaytests", "replaytests", table, "ReplayTest", scope, problem
    )


def page(test: ReplayTest, full: ReplayResult | None, *, scope: str) -> str:
    """One ReplayTest: its state, summary, charts over time, errors and comparison."""
    status = _status(test)
    ns, name = str(test.metadata.get("namespace", "")), str(test.metadata.get("name", ""))
    target = endpoint_text(test.spec.target)
    head = [
        ("phase", phase_badge(status.phase)),
        ("verdict", phase_badge(status.verdict)),
        ("why", "<br>".join(e(r) for r in status.reasons) or report.MISSING),
        ("target", f'<span class="url">{e(target)}</span>'),
        ("baseline", or_dash(test.spec.baseline and endpoint_text(test.spec.baseline))),
        ("started", stamp(status.start_time)),
        ("finished", stamp(status.completion_time)),
        ("conditions", conditions_list(status.conditions)),
    ]
    if status.progress is not None:
        p = status.progress
        head.append(("shards", f"{p.succeeded} of {p.shards} done, {p.failed} failed"))
    body = f'<h1>{e(name)} <span class="note">in {e(ns)}</span></h1>'
    body += f'<section id="state"><h2>Replay test</h2>{rows_table(head)}</section>'
    summary = status.result
    if full is not None:
        body += (
            report.verdict_section(full)
            + report.summary_section(full)
            + report.timeline_sections(full)
        )
        summary = full
    elif summary is not None:
        body += (
            f'<section id="summary"><h2>Summary</h2>'
            f"{rows_table(report.measurement_rows(summary))}</section>{NO_TIMELINE}"
        )
    if summary is None:
        body += '<p class="note">No result yet.</p>'
    else:
        body += (
            report.errors_section(summary)
            + report.comparison_section(summary, full.target if full else target)
            + report.quality_section(summary)
        )
    return layout(name, "/replaytests", body, scope=scope)
