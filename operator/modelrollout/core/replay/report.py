"""A replay result as one self-contained HTML page.

A ``result.json`` is complete but written for programs; the people who decide whether a
model goes to production want to *see* the run: did the rate hold, when did latency climb,
which errors, how the candidate compares with production, and which criterion failed.

The page is built here, in the core, as a plain string from a :class:`ReplayResult`, so it
is pure and testable without a browser. It has to travel (attached to a ticket, archived
next to the result, opened from a CI artifact without network access), which settles the
design:

* **one file, nothing fetched**: the CSS is inline, the charts are inline SVG computed in
  Python, and there is no script at all. The only URLs in the page are the endpoints of the
  run, shown as text;
* **every text is escaped** with :func:`html.escape`: endpoint URLs, dataset paths, error
  types and messages come from the run and may hold anything;
* **charts degrade**: no timeline point gives a sentence instead of a chart, one point
  gives a marker instead of a line, and a second without a successful response leaves a
  gap in the latency lines rather than a misleading zero.

Latency over time: a timeline point holds the p99 of its second. The result's state keeps
each second's latency histogram (2 % accuracy), from which the p50 and p90 of the same
second are computed; a result without that state still draws its p99.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from modelrollout.core.replay.criteria import CheckResult, SuccessCriteria
from modelrollout.core.replay.result import (
    RULES,
    EndpointReport,
    LatencySummary,
    QualityReport,
    ReplayResult,
    ReplaySummary,
    TimelineState,
    timeline_histogram,
)

CHART_WIDTH = 720
CHART_HEIGHT = 240
MARGIN_LEFT = 64
MARGIN_RIGHT = 16
MARGIN_TOP = 16
MARGIN_BOTTOM = 36
Y_TICKS = 4

MISSING = "&ndash;"
"""Shown for a value that was not measured (already HTML)."""

COLOURS = {
    "sent": "#2563eb",
    "ok": "#16a34a",
    "target": "#2563eb",
    "baseline": "#9ca3af",
    "asked": "#6b7280",
    "p50": "#16a34a",
    "p90": "#d97706",
    "p99": "#dc2626",
    "error": "#dc2626",
}

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;
max-width:60rem;padding:0 1rem;color:#111827;line-height:1.4}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #e5e7eb;padding-bottom:.25rem}
table{border-collapse:collapse;margin:.5rem 0}
th,td{padding:.25rem .75rem;border-bottom:1px solid #e5e7eb;text-align:left;
vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.url{font-family:ui-monospace,monospace;word-break:break-all}
.passed{color:#15803d;font-weight:600}.failed{color:#b91c1c;font-weight:600}
.verdict{font-size:1.25rem;padding:.5rem 1rem;border-radius:.25rem;display:inline-block}
.verdict.passed{background:#dcfce7}.verdict.failed{background:#fee2e2}
.verdict.none{background:#f3f4f6}
.note{color:#6b7280}.warnings li{color:#92400e}
svg{display:block;margin:.5rem 0;max-width:100%;height:auto}
svg text{font-size:11px;fill:#374151}
.legend span{display:inline-block;margin-right:1rem}
.legend i{display:inline-block;width:1rem;height:.2rem;vertical-align:middle;
margin-right:.3rem}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:,.{digits}f}{suffix}"


def pct(value: float | None, digits: int = 2) -> str:
    return MISSING if value is None or not math.isfinite(value) else f"{value * 100:.{digits}f} %"


def _signed(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return MISSING if value is None or not math.isfinite(value) else f"{value:+,.{digits}f}{suffix}"


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] | None = None
) -> str:
    """A table of already escaped cells; ``numeric`` columns (default: all but the first)
    align right."""

    def cls(i: int) -> str:
        right = i >= 1 if numeric is None else i in numeric
        return ' class="num"' if right else ""

    head = "".join(f"<th{cls(i)}>{cell}</th>" for i, cell in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# -- series -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One line of a chart: a name, a colour and one value per x (``None``: a gap)."""

    name: str
    colour: str
    values: tuple[float | None, ...]
    dashed: bool = False


def _second_quantiles(state: TimelineState, qs: Sequence[float]) -> list[float | None]:
    return timeline_histogram(state).quantiles(qs, clamp=False)


def latency_series(result: ReplayResult) -> list[Series]:
    """p50, p90 and p99 per timeline point (p50 and p90 from the state's histograms)."""
    states = {state.second: state for state in result.state.target.timeline}
    p50: list[float | None] = []
    p90: list[float | None] = []
    p99: list[float | None] = []
    for point in result.timeline:
        state = states.get(point.second)
        low: float | None = None
        mid: float | None = None
        if state is not None and point.ok:
            try:
                low, mid = _second_quantiles(state, (0.5, 0.9))
            except ValueError:  # a tampered state: draw the p99 alone
                low = mid = None
        p50.append(low)
        p90.append(mid)
        p99.append(point.p99_ms)
    series = [
        Series("p50", COLOURS["p50"], tuple(p50)),
        Series("p90", COLOURS["p90"], tuple(p90)),
        Series("p99", COLOURS["p99"], tuple(p99)),
    ]
    return [s for s in series if any(v is not None for v in s.values)]


def rate_series(result: ReplayResult) -> list[Series]:
    """Sends and successes per second, and the asked rate for reference."""
    points = result.timeline
    return [
        Series("sent/s", COLOURS["sent"], tuple(float(p.sent) for p in points)),
        Series("ok/s", COLOURS["ok"], tuple(float(p.ok) for p in points)),
        Series(
            "asked rate",
            COLOURS["asked"],
            tuple(result.rate.target for _ in points),
            dashed=True,
        ),
    ]


# -- charts -------------------------------------------------------------------------------


def _nice_max(value: float) -> float:
    """A round upper bound for an axis (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0 or math.isnan(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power:
            return step * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def _tick(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.3g}"


def line_chart(xs: Sequence[int], series: Sequence[Series], title: str, unit: str) -> str:
    """An SVG line chart over ``xs`` (seconds); one polyline per unbroken run of values.

    An isolated value (one point, or one between gaps) also gets a circle so it shows.
    """
    if not xs or not series:
        return '<p class="note">No timeline point in this result: nothing to draw.</p>'
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    y_max = _nice_max(max(values, default=0.0) * 1.05)
    x_min, x_max = xs[0], xs[-1]
    x_span = max(x_max - x_min, 1)
    plot_w = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = CHART_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def px(x: int) -> float:
        if x_max == x_min:
            return MARGIN_LEFT + plot_w / 2
        return MARGIN_LEFT + (x - x_min) / x_span * plot_w

    def py(y: float) -> float:
        return MARGIN_TOP + plot_h - y / y_max * plot_h

    parts = [
        f'<svg viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" width="{CHART_WIDTH}" '
        f'height="{CHART_HEIGHT}" role="img" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
    ]
    for i in range(Y_TICKS + 1):
        y = y_max * i / Y_TICKS
        parts.append(
            f'<line x1="{MARGIN_LEFT}" y1="{py(y):.1f}" x2="{CHART_WIDTH - MARGIN_RIGHT}" '
            f'y2="{py(y):.1f}" stroke="#e5e7eb"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">'
            f"{_e(_tick(y))}</text>"
        )
    x_ticks = sorted({x_min, x_max, *(x_min + x_span * k // 4 for k in range(1, 4))})
    for x in x_ticks:
        if x > x_max:
            continue
        parts.append(
            f'<text x="{px(x):.1f}" y="{CHART_HEIGHT - MARGIN_BOTTOM + 16}" '
            f'text-anchor="middle">{x}</text>'
        )
    parts.append(
        f'<text x="{MARGIN_LEFT + plot_w / 2:.1f}" y="{CHART_HEIGHT - 4}" '
        f'text-anchor="middle">seconds since the start</text>'
        f'<text x="12" y="{MARGIN_TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {MARGIN_TOP + plot_h / 2:.1f})">{_e(unit)}</text>'
    )
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        for run in _runs(xs, s.values):
            points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            parts.append(
                f'<polyline data-series="{_e(s.name)}" fill="none" stroke="{s.colour}" '
                f'stroke-width="1.5"{dash} points="{points}"/>'
            )
            if len(run) == 1:
                x, y = run[0]
                parts.append(
                    f'<circle data-series="{_e(s.name)}" cx="{px(x):.1f}" cy="{py(y):.1f}" '
                    f'r="3" fill="{s.colour}"/>'
                )
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{s.colour}"></i>{_e(s.name)}</span>' for s in series
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def _runs(xs: Sequence[int], values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for x, value in zip(xs, values, strict=True):
        if value is None or not math.isfinite(value):
            if current:
                runs.append(current)
            current = []
        else:
            current.append((x, value))
    if current:
        runs.append(current)
    return runs


def bar_chart(items: Sequence[tuple[str, int]], title: str) -> str:
    """Horizontal bars, one per (label, count), longest first as given."""
    if not items:
        return ""
    row = 22
    label_w = 160
    bar_w = CHART_WIDTH - label_w - 80
    top = max(count for _, count in items) or 1
    height = row * len(items) + 8
    parts = [
        f'<svg viewBox="0 0 {CHART_WIDTH} {height}" width="{CHART_WIDTH}" height="{height}" '
        f'role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>'
    ]
    for i, (label, count) in enumerate(items):
        y = 4 + i * row
        width = count / top * bar_w
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{_e(label)}</text>'
            f'<rect data-bar="{_e(label)}" x="{label_w}" y="{y + 3}" width="{width:.1f}" '
            f'height="{row - 8}" fill="{COLOURS["error"]}"/>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 14}">{count:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


PERCENTILES = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p999"))


def percentile_chart(target: LatencySummary, baseline: LatencySummary) -> str:
    """Target and baseline latency percentiles as pairs of vertical bars (ms)."""
    pairs = [
        (label, _latency_cell(target, name), _latency_cell(baseline, name))
        for label, name in PERCENTILES
    ]
    values = [v for _, a, b in pairs for v in (a, b) if v is not None and math.isfinite(v)]
    if not values:
        return '<p class="note">No successful response on either side: no percentile to draw.</p>'
    y_max = _nice_max(max(values) * 1.05)
    plot_h = CHART_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    group = (CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / len(pairs)
    bar = group / 3
    title = "Latency percentiles, target and baseline"
    parts = [
        f'<svg viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" width="{CHART_WIDTH}" '
        f'height="{CHART_HEIGHT}" role="img" aria-label="{title}"><title>{title}</title>'
    ]
    for i in range(Y_TICKS + 1):
        tick = y_max * i / Y_TICKS
        y = MARGIN_TOP + plot_h - tick / y_max * plot_h
        parts.append(
            f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{CHART_WIDTH - MARGIN_RIGHT}" '
            f'y2="{y:.1f}" stroke="#e5e7eb"/><text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{_e(_tick(tick))}</text>'
        )
    for i, (label, mine, theirs) in enumerate(pairs):
        left = MARGIN_LEFT + i * group + bar / 2
        for j, (side, value) in enumerate((("target", mine), ("baseline", theirs))):
            if value is None or not math.isfinite(value):
                continue
            height = value / y_max * plot_h
            x = left + j * bar
            parts.append(
                f'<rect data-bar="{side} {label}" x="{x:.1f}" '
                f'y="{MARGIN_TOP + plot_h - height:.1f}" width="{bar - 2:.1f}" '
                f'height="{height:.1f}" fill="{COLOURS[side]}"><title>{side} {label}: '
                f"{_num(value)} ms</title></rect>"
            )
        parts.append(
            f'<text x="{left + bar:.1f}" y="{CHART_HEIGHT - MARGIN_BOTTOM + 16}" '
            f'text-anchor="middle">{label}</text>'
        )
    parts.append(
        f'<text x="12" y="{MARGIN_TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {MARGIN_TOP + plot_h / 2:.1f})">ms</text></svg>'
    )
    legend = "".join(
        f'<span><i style="background:{COLOURS[side]}"></i>{side}</span>'
        for side in ("target", "baseline")
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


# -- sections -----------------------------------------------------------------------------


def measurement_rows(summary: ReplaySummary) -> list[tuple[str, str]]:
    """The headline measurements of a run, as (label, escaped value) rows."""
    c = summary.counts
    lat = summary.latency_ms
    return [
        ("duration", _num(summary.duration_seconds, 1, " s")),
        ("rate asked", _num(summary.rate.target, 2, " req/s")),
        ("rate achieved", _num(summary.rate.achieved, 2, " req/s")),
        ("requests", f"{c.sent:,} sent of {c.scheduled:,} scheduled ({c.dropped:,} dropped)"),
        ("successes", f"{c.ok:,}"),
        ("errors", f"{c.errors:,} ({pct(summary.error_rate)})"),
        ("availability", pct(summary.availability, 3)),
        ("throughput", _num(summary.throughput, 2, " ok/s")),
        ("latency p50", _num(lat.p50, 2, " ms")),
        ("latency p90", _num(lat.p90, 2, " ms")),
        ("latency p99", _num(lat.p99, 2, " ms")),
        ("latency p99.9", _num(lat.p999, 2, " ms")),
    ]


def summary_section(result: ReplayResult) -> str:
    rows = [
        ("target", f'<span class="url">{_e(result.target)}</span>'),
    ]
    if result.baseline:
        rows.append(("baseline", f'<span class="url">{_e(result.baseline)}</span>'))
    if result.settings is not None:
        rows.append(("events", f'<span class="url">{_e(result.settings.events)}</span>'))
    if result.started_at or result.finished_at:
        rows.append(
            (
                "run",
                f"{_e(result.started_at) if result.started_at else MISSING} to "
                f"{_e(result.finished_at) if result.finished_at else MISSING}",
            )
        )
    if result.shard.merged > 1 or result.shard.count > 1:
        where = (
            f"{result.shard.merged} shard results merged"
            if result.shard.index is None
            else f"shard {result.shard.index} of {result.shard.count}"
        )
        rows.append(("shards", _e(where)))
    rows += measurement_rows(result)
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    text = f'<section id="summary"><h2>Summary</h2><table>{body}</table>'
    if result.warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in result.warnings)
        text += f'<h3>Warnings</h3><ul class="warnings">{items}</ul>'
    if result.malformed_lines:
        items = "".join(f"<li>line {m.line}: {_e(m.reason)}</li>" for m in result.malformed_lines)
        text += f"<h3>Malformed lines (first {len(result.malformed_lines)})</h3><ul>{items}</ul>"
    return text + "</section>"


def timeline_sections(result: ReplayResult) -> str:
    xs = [p.second for p in result.timeline]
    rate = line_chart(xs, rate_series(result), "Sends per second", "requests/s")
    latency_lines = latency_series(result)
    if xs and not latency_lines:
        latency = '<p class="note">No successful response: no latency to draw.</p>'
    else:
        latency = line_chart(xs, latency_lines, "Latency percentiles per second", "ms")
    return (
        '<section id="rate"><h2>Rate over time</h2>'
        '<p class="note">Sends and successes per second of intended send time, against '
        f"the asked rate.</p>{rate}</section>"
        '<section id="latency"><h2>Latency over time</h2>'
        '<p class="note">Percentiles of each second\'s successful responses, measured from '
        "the intended send time (2 % accuracy); gaps are seconds without a success.</p>"
        f"{latency}</section>"
    )


def errors_section(result: ReplaySummary) -> str:
    baseline = result.comparison.baseline if result.comparison else None
    kinds = sorted(
        set(result.errors) | set(baseline.errors if baseline else {}),
        key=lambda k: (-result.errors.get(k, 0), k),
    )
    text = '<section id="errors"><h2>Errors by type</h2>'
    if not kinds:
        return text + '<p class="note">No error.</p></section>'
    sent = result.counts.sent
    header = ["type", "target", "share of sent"]
    if baseline is not None:
        header += ["baseline", "share of sent"]
    rows = []
    for kind in kinds:
        count = result.errors.get(kind, 0)
        row = [_e(kind), f"{count:,}", pct(count / sent if sent else None)]
        if baseline is not None:
            theirs = baseline.errors.get(kind, 0)
            b_sent = baseline.counts.sent
            row += [f"{theirs:,}", pct(theirs / b_sent if b_sent else None)]
        rows.append(row)
    bars = [(kind, result.errors[kind]) for kind in kinds if result.errors.get(kind)]
    return text + table(header, rows) + bar_chart(bars, "Target errors by type") + "</section>"


LATENCY_ROWS = (
    ("p50", "p50"),
    ("p90", "p90"),
    ("p95", "p95"),
    ("p99", "p99"),
    ("p99.9", "p999"),
    ("mean", "mean"),
    ("max", "max"),
)


def _latency_cell(summary: LatencySummary, name: str) -> float | None:
    value = getattr(summary, name)
    return None if value is None else float(value)


def comparison_section(result: ReplaySummary, target: str) -> str:
    comparison = result.comparison
    if comparison is None:
        return ""
    b: EndpointReport = comparison.baseline
    rows: list[list[str]] = [
        [
            "endpoint",
            f'<span class="url">{_e(target)}</span>',
            f'<span class="url">{_e(b.url)}</span>',
            "",
        ],
        ["sent", f"{result.counts.sent:,}", f"{b.counts.sent:,}", ""],
        ["ok", f"{result.counts.ok:,}", f"{b.counts.ok:,}", ""],
        [
            "availability",
            pct(result.availability, 3),
            pct(b.availability, 3),
            _signed(
                None
                if comparison.deltas.availability is None
                else comparison.deltas.availability * 100,
                3,
                " pt",
            ),
        ],
        [
            "error rate",
            pct(result.error_rate),
            pct(b.error_rate),
            _signed(
                None
                if comparison.deltas.error_rate is None
                else comparison.deltas.error_rate * 100,
                2,
                " pt",
            ),
        ],
        ["throughput (ok/s)", _num(result.throughput), _num(b.throughput), ""],
    ]
    for label, name in LATENCY_ROWS:
        mine = _latency_cell(result.latency_ms, name)
        theirs = _latency_cell(b.latency_ms, name)
        delta = None if mine is None or theirs is None else mine - theirs
        rows.append([f"latency {label} (ms)", _num(mine), _num(theirs), _signed(delta)])
    if comparison.deltas.p99_ratio is not None:
        rows.append(["p99 ratio", "", "", _num(comparison.deltas.p99_ratio, 3, "&times;")])
    text = '<section id="comparison"><h2>Comparison with the baseline</h2>' + table(
        ["", "target", "baseline", "target &minus; baseline"], rows
    )
    text += percentile_chart(result.latency_ms, b.latency_ms)
    agreement = [
        ["pairs of predictions", f"{comparison.pairs:,}"],
        ["agreed", f"{comparison.agreed:,}"],
        ["agreement", pct(comparison.agreement)],
        ["only the target answered", f"{comparison.target_only_ok:,}"],
        ["only the baseline answered", f"{comparison.baseline_only_ok:,}"],
    ]
    text += "<h3>Agreement</h3>" + table(["", "value"], agreement)
    diff = comparison.score_diff
    if diff is not None and diff.count:
        scores = [
            ["pairs of scores", f"{diff.count:,}"],
            ["mean (target &minus; baseline)", _signed(diff.mean, 4)],
            ["mean |difference|", _num(diff.mean_abs, 4)],
            ["p50 |difference|", _num(diff.p50_abs, 4)],
            ["p95 |difference|", _num(diff.p95_abs, 4)],
            ["max |difference|", _num(diff.max_abs, 4)],
        ]
        text += "<h3>Score differences</h3>" + table(["", "value"], scores)
    else:
        text += '<p class="note">No pair of scores: no score difference.</p>'
    return text + "</section>"


QUALITY_ROWS = (
    ("accuracy", "accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("F1", "f1"),
    ("ROC AUC", "auc"),
)


def _quality_value(quality: QualityReport | None, name: str) -> float | None:
    if quality is None:
        return None
    value = getattr(quality, name)
    return None if value is None else float(value)


def quality_section(result: ReplaySummary) -> str:
    mine = result.quality
    theirs = result.comparison.baseline.quality if result.comparison else None
    if mine is None and theirs is None:
        return ""
    with_baseline = result.comparison is not None
    header = ["", "target"] + (["baseline", "target &minus; baseline"] if with_baseline else [])
    rows = []
    for label, name in QUALITY_ROWS:
        a, b = _quality_value(mine, name), _quality_value(theirs, name)
        row = [label, _num(a, 4)]
        if with_baseline:
            row += [_num(b, 4), _signed(None if a is None or b is None else a - b, 4)]
        rows.append(row)
    for label, name in (
        ("labeled predictions", "labeled"),
        ("true positives", "true_positives"),
        ("false positives", "false_positives"),
        ("true negatives", "true_negatives"),
        ("false negatives", "false_negatives"),
    ):
        a_count = getattr(mine, name) if mine else None
        b_count = getattr(theirs, name) if theirs else None
        row = [label, MISSING if a_count is None else f"{a_count:,}"]
        if with_baseline:
            row += [MISSING if b_count is None else f"{b_count:,}", ""]
        rows.append(row)
    return (
        '<section id="quality"><h2>Prediction quality</h2>' + table(header, rows) + ("</section>")
    )


def _rule_formats() -> dict[str, tuple[bool, str]]:
    formats = {}
    for rule in RULES:
        alias = SuccessCriteria.model_fields[rule.field].alias or rule.field
        formats[alias] = (rule.percent, rule.unit)
    return formats


def _criterion_value(
    check: CheckResult, value: float | None, formats: dict[str, tuple[bool, str]]
) -> str:
    if value is None:
        return MISSING
    percent, unit = formats.get(check.criterion, (False, ""))
    if percent:
        return f"{value * 100:.3g} %"
    return f"{value:.4g}{unit}"


def verdict_section(result: ReplayResult) -> str:
    verdict = result.verdict
    text = '<section id="verdict"><h2>Verdict</h2>'
    if not verdict.checks:
        return text + '<p class="verdict none">No success criteria were set.</p></section>'
    word, cls = ("PASSED", "passed") if verdict.passed else ("FAILED", "failed")
    met = sum(1 for check in verdict.checks if check.passed)
    text += f'<p class="verdict {cls}">{word}: {met} of {len(verdict.checks)} criteria met</p>'
    formats = _rule_formats()
    rows = []
    for check in verdict.checks:
        outcome = (
            '<span class="passed">passed</span>'
            if check.passed
            else '<span class="failed">failed</span>'
        )
        rows.append(
            [
                f"<code>{_e(check.criterion)}</code>",
                _criterion_value(check, check.actual, formats),
                _criterion_value(check, check.threshold, formats),
                outcome,
                _e(check.message),
            ]
        )
    header = ["criterion", "value", "threshold", "outcome", "why"]
    return text + table(header, rows, numeric=(1, 2)) + "</section>"


def render_report(result: ReplayResult) -> str:
    """The whole HTML page for ``result``: deterministic, self-contained, escaped."""
    title = f"Replay of {result.target}"
    sections = [
        verdict_section(result),
        summary_section(result),
        timeline_sections(result),
        errors_section(result),
        comparison_section(result, result.target),
        quality_section(result),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>Replay report</h1><p class="url">{_e(result.target)}</p>'
        + "".join(sections)
        + f'<footer class="note"><p>{_e(result.schema_version)}</p></footer>'
        "</body></html>\n"
    )
