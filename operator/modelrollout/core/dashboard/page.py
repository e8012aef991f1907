"""The frame of every dashboard page: navigation, style, notices, escaping.

A page is one HTML string built by the server from what it read; there is no client-side
framework and nothing is fetched from elsewhere (the style is inline, the charts inline
SVG). The only script is the few lines that poll a rollout's live region. Every text that
comes from the cluster (names, messages, versions) goes through :func:`e`.

A new page is a :data:`NAV` entry here and a handler in the server.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from modelrollout.core.replay import report

NAV: tuple[tuple[str, str], ...] = (
    ("rollouts", "/"),
    ("replay tests", "/replaytests"),
    ("catalog", "/catalog"),
)
"""The navigation bar: (label, path). A new page adds its entry here."""

STYLE = (
    report.STYLE
    + """
body{max-width:80rem}
nav{display:flex;gap:1.5rem;align-items:baseline;border-bottom:2px solid #e5e7eb;
padding-bottom:.5rem;margin-bottom:1rem}
nav .brand{font-weight:700}nav a{color:#1d4ed8;text-decoration:none}
nav a.here{font-weight:600;color:#111827}nav .scope{margin-left:auto;color:#6b7280}
a{color:#1d4ed8}
.phase{display:inline-block;padding:.05rem .5rem;border-radius:.75rem;background:#f3f4f6;
font-weight:600}
.phase.Production,.phase.Succeeded,.phase.Passed,.phase.Promoted,.phase.Pass{background:#dcfce7;color:#166534}
.phase.Baking,.phase.Running,.phase.NonProduction{background:#dbeafe;color:#1e40af}
.phase.RolledBack,.phase.Failed,.phase.Reverted,.phase.Fail{background:#fee2e2;color:#991b1b}
.notice{padding:.5rem 1rem;border-radius:.25rem}
.notice.ok{background:#dcfce7}.notice.error{background:#fee2e2;color:#991b1b;font-weight:600}
.weights{display:flex;width:10rem;height:.8rem;border-radius:.2rem;overflow:hidden;
background:#e5e7eb;margin-top:.2rem}
.weights .stable{background:#9ca3af}.weights .candidate{background:#2563eb}
.actions{display:flex;flex-wrap:wrap;gap:.75rem}
.actions form{border:1px solid #e5e7eb;border-radius:.25rem;padding:.5rem .75rem}
button{font:inherit;padding:.2rem .8rem;cursor:pointer}
ul.timeline{list-style:none;padding:0;margin:0}
ul.timeline li{border-left:3px solid #d1d5db;padding:.15rem .75rem;margin:.2rem 0}
time{white-space:nowrap}
ul.timeline li.Warning,ul.timeline li.Failed,ul.timeline li.Error,
ul.timeline li.Reverted{border-color:#dc2626}
ul.timeline li.Successful,ul.timeline li.Promoted,ul.timeline li.Pass{border-color:#16a34a}
ul.timeline time{color:#6b7280;font-variant-numeric:tabular-nums;margin-right:.5rem}
ul.timeline .source{color:#6b7280;margin-right:.5rem}
.cond-False{color:#b91c1c}
ul.conditions{margin:0;padding-left:1rem;font-size:.85rem}ul.conditions .msg{color:#4b5563}
"""
)

_HERE = ' class="here"'

NoticeKind = Literal["ok", "error"]


@dataclass(frozen=True)
class Notice:
    """A line shown above a page: what an action did, or why it was refused."""

    kind: NoticeKind
    text: str


def e(text: object) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def stamp(value: str | None) -> str:
    """A time from the cluster, kept on one line."""
    return report.MISSING if not value else f"<time>{e(value)}</time>"


def or_dash(value: object) -> str:
    """``value`` escaped, or a dash for nothing."""
    return report.MISSING if value is None or value == "" else e(value)


def phase_badge(phase: str) -> str:
    return f'<span class="phase {e(phase)}">{e(phase)}</span>'


def rows_table(rows: Sequence[tuple[str, str]]) -> str:
    """A two-column table of (label, already escaped value)."""
    body = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def notice(found: Notice | None) -> str:
    if found is None:
        return ""
    role = "alert" if found.kind == "error" else "status"
    prefix = "Refused: " if found.kind == "error" else ""
    return f'<p id="notice" class="notice {found.kind}" role="{role}">{prefix}{e(found.text)}</p>'


def layout(title: str, here: str, body: str, *, scope: str, script: str = "") -> str:
    """A whole page: ``body`` (already HTML) under the navigation, with ``here`` (a NAV
    path) marked; ``scope`` says which namespaces the dashboard shows."""
    links = "".join(
        f'<a href="{path}"{_HERE if path == here else ""}>{e(label)}</a>' for label, path in NAV
    )
    tail = f"<script>{script}</script>" if script else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} - modelrollout</title><style>{STYLE}</style></head><body>"
        f'<nav><span class="brand">modelrollout</span>{links}'
        f'<span class="scope">{e(scope)}</span></nav>'
        f"<main>{body}</main>{tail}</body></html>\n"
    )


def listing_page(
    title: str, here: str, section: str, table: str, kind: str, scope: str, problem: str
) -> str:
    """A page listing objects: ``table`` (already HTML; empty for none) in a section with
    id ``section``, or what could not be read."""
    body = f"<h1>{e(title)}</h1>"
    if problem:
        body += f'<p class="notice error">{e(problem)}</p>'
    if table:
        body += f'<section id="{section}">{table}</section>'
    elif not problem:
        body += f'<p class="note">No {e(kind)} here.</p>'
    return layout(title, here, body, scope=scope)


def error_page(title: str, message: str, *, scope: str) -> str:
    """A page that says what could not be read."""
    return layout(
        title, "", f'<h1>{e(title)}</h1><p class="notice error">{e(message)}</p>', scope=scope
    )
