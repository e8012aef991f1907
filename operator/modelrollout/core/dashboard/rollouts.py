"""The ModelDeployment pages: the overview of all of them, and one in detail.

The detail page has two parts. The live region (status, conditions, measurements,
timeline) is also served alone as a fragment, which the page's script fetches every few
seconds and swaps in, so it follows the rollout without a reload. The actions (approve,
abort, resume, retry, undo) are plain forms posted to the server, each with the process's
CSRF token; what they write is :mod:`modelrollout.core.steering`'s decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelrollout.core.api.common import Condition
from modelrollout.core.api.modeldeployment import ModelDeployment, ModelDeploymentStatus
from modelrollout.core.dashboard.page import (
    Notice,
    e,
    layout,
    listing_page,
    notice,
    or_dash,
    phase_badge,
    rows_table,
    stamp,
)
from modelrollout.core.dashboard.timeline import Entry
from modelrollout.core.replay import report
from modelrollout.core.steering import GATES, waiting_gate

REFRESH_SECONDS = 3


@dataclass(frozen=True)
class Listed:
    """A ModelDeployment of the overview: its namespace and name, and the object (None
    when it could not be read as one; ``problem`` says why)."""

    namespace: str
    name: str
    md: ModelDeployment | None
    problem: str = ""


def md_path(namespace: str, name: str) -> str:
    return f"/md/{e(namespace)}/{e(name)}"


def _status(md: ModelDeployment) -> ModelDeploymentStatus:
    return md.status or ModelDeploymentStatus()


def weights(status: ModelDeploymentStatus) -> str:
    """Stable and candidate weights in words, with a bar."""
    stable = status.traffic.stable_weight if status.traffic else 100
    candidate = status.traffic.candidate_weight if status.traffic else 0
    return (
        f'<span class="weight">{stable} % / {candidate} %</span>'
        f'<div class="weights" title="stable {stable} %, candidate {candidate} %">'
        f'<span class="stable" style="width:{stable}%"></span>'
        f'<span class="candidate" style="width:{candidate}%"></span></div>'
    )


def step(md: ModelDeployment) -> str:
    status = _status(md)
    if status.current_step is None:
        return report.MISSING
    baking = md.spec.stages.baking
    total = len(baking.steps) if baking is not None else 0
    return f"{status.current_step + 1} of {total}" if total else str(status.current_step + 1)


def _message(text: str) -> str:
    return f': <span class="msg">{e(text)}</span>' if text else ""


def conditions_list(conditions: Sequence[Condition]) -> str:
    if not conditions:
        return report.MISSING
    items = "".join(
        f'<li><span class="cond-{e(c.status)}">{e(c.type)}={e(c.status)}</span> '
        f"{e(c.reason)}{_message(c.message)}</li>"
        for c in conditions
    )
    return f'<ul class="conditions">{items}</ul>'


def overview(listed: Sequence[Listed], *, scope: str, problem: str = "") -> str:
    """Every ModelDeployment: phase, versions, weights, step and conditions."""
    head = ["namespace", "name", "phase", "stable", "candidate", "weights (stable / candidate)"]
    head += ["step", "conditions"]
    rows = []
    for item in listed:
        link = f'<a href="{md_path(item.namespace, item.name)}">{e(item.name)}</a>'
        if item.md is None:
            rows.append([e(item.namespace), link, "", "", "", "", "", e(item.problem)])
            continue
        status = _status(item.md)
        rows.append(
            [
                e(item.namespace),
                link,
                phase_badge(status.phase),
                or_dash(status.stable_version),
                or_dash(status.candidate_version),
                weights(status),
                step(item.md),
                conditions_list(status.conditions),
            ]
        )
    table = report.table(head, rows, numeric=()) if rows else ""
    return listing_page("Rollouts", "/", "rollouts", table, "ModelDeployment", scope, problem)


def _summary(md: ModelDeployment) -> str:
    status = _status(md)
    replay = or_dash(status.replay_test)
    if status.replay_test:
        path = f"/replaytests/{e(md.metadata.get('namespace', ''))}/{e(status.replay_test)}"
        replay = f'<a href="{path}">{e(status.replay_test)}</a>'
    rows = [
        ("phase", phase_badge(status.phase)),
        ("stable", or_dash(status.stable_version)),
        ("candidate", or_dash(status.candidate_version)),
        ("weights (stable / candidate)", weights(status)),
        ("step", step(md)),
        ("attempt", or_dash(status.attempt)),
        ("replay test", replay),
        ("message", or_dash(status.message)),
    ]
    return f'<section id="status"><h2>Status</h2>{rows_table(rows)}</section>'


def _conditions(status: ModelDeploymentStatus) -> str:
    rows = [
        [
            e(c.type),
            f'<span class="cond-{e(c.status)}">{e(c.status)}</span>',
            e(c.reason),
            e(c.message),
            stamp(c.last_transition_time),
        ]
        for c in status.conditions
    ]
    head = ["type", "status", "reason", "message", "since"]
    table = report.table(head, rows, numeric=()) if rows else '<p class="note">None yet.</p>'
    return f'<section id="conditions"><h2>Conditions</h2>{table}</section>'


def _analysis(status: ModelDeploymentStatus) -> str:
    if not status.analysis:
        return ""
    rows = []
    for tally in status.analysis:
        last = tally.measurements[-1] if tally.measurements else None
        value = report.MISSING if last is None or last.value is None else f"{last.value:g}"
        rows.append(
            [
                e(tally.name),
                str(tally.successful),
                str(tally.failed),
                str(tally.inconclusive),
                str(tally.error),
                value,
                e(last.message) if last is not None else "",
            ]
        )
    head = ["SLO or trigger", "ok", "failed", "inconclusive", "errors", "last", "why"]
    table = report.table(head, rows, numeric=(1, 2, 3, 4, 5))
    return f'<section id="analysis"><h2>Measurements</h2>{table}</section>'


def _shadow(status: ModelDeploymentStatus) -> str:
    shadow = status.shadow
    if shadow is None:
        return ""
    rows = [
        ("outcome", phase_badge(shadow.outcome)),
        ("started", stamp(shadow.started_at)),
        ("finished", stamp(shadow.finished_at)),
        ("pairs", str(shadow.pairs)),
        ("agreement", report.MISSING if shadow.agreement is None else f"{shadow.agreement:.4f}"),
        ("message", or_dash(shadow.message)),
    ]
    return f'<section id="shadow"><h2>Shadow</h2>{rows_table(rows)}</section>'


def _history(status: ModelDeploymentStatus) -> str:
    rows = [
        [stamp(h.finished_at), e(h.version), phase_badge(h.outcome), e(h.reason)]
        for h in status.history
    ]
    if status.revisions:
        kept = ", ".join(e(r.version) for r in status.revisions)
        revisions = f"<p>Earlier versions kept for undo: {kept}</p>"
    else:
        revisions = ""
    table = (
        report.table(["finished", "version", "outcome", "why"], rows, numeric=())
        if rows
        else '<p class="note">No finished rollout yet.</p>'
    )
    return f'<section id="history"><h2>History</h2>{table}{revisions}</section>'


def timeline_list(entries: Sequence[Entry]) -> str:
    if not entries:
        return '<p class="note">Nothing yet.</p>'
    items = "".join(
        f'<li class="{e(x.kind)}"><time>{e(x.at)}</time><span class="source">{e(x.source)}</span>'
        f"<strong>{e(x.title)}</strong> {e(x.text)}</li>"
        for x in entries
    )
    return f'<ul class="timeline">{items}</ul>'


def live(md: ModelDeployment, entries: Sequence[Entry]) -> str:
    """The part of the detail page that follows the rollout (also served alone)."""
    status = _status(md)
    return (
        _summary(md)
        + _conditions(status)
        + _analysis(status)
        + _shadow(status)
        + _history(status)
        + f'<section id="timeline"><h2>Timeline</h2>{timeline_list(entries)}</section>'
    )


def _form(path: str, action: str, csrf: str, fields: str, label: str) -> str:
    return (
        f'<form method="post" action="{path}/{action}" id="{action}-form">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">{fields}'
        f'<button type="submit" name="action" value="{action}">{label}</button></form>'
    )


def actions(md: ModelDeployment, csrf: str) -> str:
    """The forms of the five actions."""
    status = _status(md)
    namespace, name = str(md.metadata.get("namespace", "")), str(md.metadata.get("name", ""))
    path = md_path(namespace, name)
    waiting = waiting_gate(status)
    gates = "".join(
        f'<option value="{g}"{" selected" if g == waiting else ""}>{g}</option>' for g in GATES
    )
    approve = (
        f'<label>gate <select name="gate">{gates}</select></label> '
        f'<label>version <input name="version" size="10" '
        f'placeholder="{e(status.candidate_version or "")}"></label> '
    )
    kept = "".join(
        f'<option value="{e(r.version)}">{e(r.version)}</option>' for r in status.revisions
    )
    undo = (
        f'<label>to version <select name="to_version"><option value="">the previous one'
        f"</option>{kept}</select></label> "
    )
    forms = [
        _form(path, "approve", csrf, approve, "Approve"),
        _form(path, "abort", csrf, "", "Abort"),
        _form(path, "resume", csrf, "", "Resume"),
        _form(path, "retry", csrf, "", "Retry"),
        _form(path, "undo", csrf, undo, "Undo"),
    ]
    return (
        '<section id="actions"><h2>Actions</h2><p class="note">Each action writes the '
        "status as <code>kubectl modelrollout</code> does, under your kubeconfig identity."
        f'</p><div class="actions">{"".join(forms)}</div></section>'
    )


POLL = """
(function () {
  var box = document.getElementById("live");
  function tick() {
    fetch(box.dataset.src, {cache: "no-store", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) { if (text !== null && text !== box.innerHTML) box.innerHTML = text; })
      .catch(function () {})
      .then(function () { setTimeout(tick, PERIOD); });
  }
  setTimeout(tick, PERIOD);
})();
""".replace("PERIOD", str(REFRESH_SECONDS * 1000))


def detail(
    md: ModelDeployment,
    entries: Sequence[Entry],
    *,
    csrf: str,
    scope: str,
    told: Notice | None = None,
) -> str:
    """One ModelDeployment: its live region, then the actions."""
    namespace, name = str(md.metadata.get("namespace", "")), str(md.metadata.get("name", ""))
    path = md_path(namespace, name)
    body = (
        f'<h1>{e(name)} <span class="note">in {e(namespace)}</span></h1>'
        + notice(told)
        + f'<div id="live" data-src="{path}/live">{live(md, entries)}</div>'
        + actions(md, csrf)
    )
    return layout(name, "/", body, scope=scope, script=POLL)
