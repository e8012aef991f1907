"""The HTML replay report: sections, values, escaping, charts and the report command."""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from modelrollout.cli import main as cli_main
from modelrollout.cli.replay import _finish, add_replay_arguments, build_run, result_json
from modelrollout.core.replay.accumulator import ReplayAccumulator
from modelrollout.core.replay.criteria import SuccessCriteria
from modelrollout.core.replay.quality import Prediction, PredictionReader
from modelrollout.core.replay.report import latency_series, percentile_chart, render_report
from modelrollout.core.replay.result import (
    LatencySummary,
    ReplayResult,
    RunInfo,
    ShardInfo,
    format_result_line,
    result_from_run,
)
from modelrollout.core.replay.run import RUN_ENV, ReplayRun

TARGET = "http://127.0.0.1:1/v1/models/m:predict"
BASELINE = "http://127.0.0.1:2/v1/models/m:predict"
HOSTILE = "http://x/<script>alert(1)</script>?a=1&b=2"
READER = PredictionReader.create("predictions[0]")
ERROR_KINDS = ("http_500", "timeout", "connection")

SECTIONS = ("summary", "rate", "latency", "errors", "comparison", "quality", "verdict")


def _result(
    seconds: int = 10,
    per_second: int = 20,
    *,
    target: str = TARGET,
    baseline: bool = True,
    labels: bool = True,
    errors: bool = True,
    criteria: SuccessCriteria | None = None,
    silent_seconds: tuple[int, ...] = (),
) -> ReplayResult:
    """A run of ``seconds`` x ``per_second`` sends through the real accumulator.

    Seconds in ``silent_seconds`` have no successful response (their sends all fail).
    """
    rng = random.Random(7)
    acc = ReplayAccumulator(baseline=baseline, reader=READER if labels else None)
    total = seconds * per_second
    for k in range(total):
        offset = k / per_second
        second = int(offset)
        for which in (0, 1) if baseline else (0,):
            kind = "ok"
            if second in silent_seconds:
                kind = "http_503"
            elif errors and rng.random() < 0.1:
                kind = rng.choice(ERROR_KINDS)
            score = rng.random()
            prediction = Prediction(positive=score >= 0.5, score=score) if labels else None
            label = str(rng.randint(0, 1)) if labels else None
            acc.completed(
                which,
                k,
                offset,
                0.0005,
                rng.lognormvariate(-5, 0.4) * (1.2 if which == 0 else 1.0),
                kind,
                prediction if kind == "ok" else None,
                label,
            )
    info = RunInfo(
        target=target,
        baseline=BASELINE if baseline else None,
        started_at="2024-05-01T00:00:00.000Z",
        finished_at=f"2024-05-01T00:00:{seconds:02d}.000Z",
        duration_seconds=float(seconds),
        planned_seconds=float(seconds),
        criteria=criteria,
        lines=total,
        selected=total,
    )
    return result_from_run(acc, info)


FULL_CRITERIA = SuccessCriteria(max_p99_ms=1.0, min_agreement=0.2, max_error_rate=0.5)


def _section_ids(page: str) -> set[str]:
    return set(re.findall(r'<section id="([a-z]+)">', page))


def _polylines(page: str, series: str) -> list[int]:
    """The number of points of each polyline of ``series``, in order."""
    found = re.findall(rf'<polyline data-series="{re.escape(series)}"[^>]*points="([^"]*)"', page)
    return [len(points.split()) for points in found]


@pytest.mark.parametrize(
    ("kwargs", "present", "absent"),
    [
        ({"criteria": FULL_CRITERIA}, set(SECTIONS), set()),
        ({"baseline": False}, {"summary", "rate", "latency", "errors", "quality", "verdict"},
         {"comparison"}),
        ({"baseline": False, "labels": False}, {"summary", "rate", "latency", "errors", "verdict"},
         {"comparison", "quality"}),
        ({"labels": False}, {"summary", "comparison", "verdict"}, {"quality"}),
        ({"seconds": 1, "per_second": 1, "baseline": False, "labels": False, "errors": False},
         {"summary", "rate", "latency", "errors", "verdict"}, {"comparison", "quality"}),
        ({"seconds": 0, "baseline": False, "labels": False},
         {"summary", "rate", "latency", "errors", "verdict"}, {"comparison", "quality"}),
    ],
)  # fmt: skip
def test_sections_present_and_absent(
    kwargs: dict[str, object], present: set[str], absent: set[str]
) -> None:
    page = render_report(_result(**kwargs))  # type: ignore[arg-type]
    ids = _section_ids(page)
    assert present <= ids
    assert not absent & ids
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")


def test_the_summary_shows_the_measurements() -> None:
    result = _result(criteria=FULL_CRITERIA)
    page = render_report(result)
    lat = result.latency_ms
    assert lat.p50 is not None
    assert lat.p90 is not None
    assert lat.p99 is not None
    assert lat.p999 is not None
    for value in (lat.p50, lat.p90, lat.p99, lat.p999):
        assert f"{value:,.2f} ms" in page
    assert f"{result.rate.target:,.2f} req/s" in page
    assert f"{result.rate.achieved:,.2f} req/s" in page
    assert f"{result.throughput:,.2f} ok/s" in page
    assert f"{result.counts.sent:,} sent of {result.counts.scheduled:,} scheduled" in page
    assert result.availability is not None
    assert f"{result.availability * 100:.3f} %" in page
    assert "10.0 s" in page
    for kind in ERROR_KINDS:
        assert kind in result.errors
        assert f'data-bar="{kind}"' in page


def test_the_comparison_and_quality_values_appear() -> None:
    result = _result(criteria=FULL_CRITERIA)
    page = render_report(result)
    comparison = result.comparison
    assert comparison is not None
    assert comparison.agreement is not None
    assert f"{comparison.agreement * 100:.2f} %" in page
    assert comparison.score_diff is not None
    assert comparison.score_diff.mean_abs is not None
    assert f"{comparison.score_diff.mean_abs:,.4f}" in page
    b = comparison.baseline.latency_ms
    assert b.p99 is not None
    assert f"{b.p99:,.2f}" in page
    quality = result.quality
    assert quality is not None
    for value in (quality.accuracy, quality.precision, quality.recall, quality.auc):
        assert value is not None
        assert f"{value:,.4f}" in page


def test_the_comparison_draws_percentiles_side_by_side() -> None:
    page = render_report(_result(labels=False))
    comparison = page[page.index('<section id="comparison">') :]
    for side in ("target", "baseline"):
        for label in ("p50", "p90", "p99", "p99.9"):
            assert f'data-bar="{side} {label}"' in comparison
    assert 'data-bar="target p50"' not in render_report(_result(baseline=False))


@pytest.mark.parametrize(
    ("target", "baseline", "bars"),
    [
        (LatencySummary(p50=1.0, p90=2.0, p99=3.0, p999=4.0), LatencySummary(), 4),
        (LatencySummary(), LatencySummary(p50=1.0, p90=2.0, p99=3.0, p999=4.0), 4),
        (LatencySummary(p50=0.0, p90=0.0, p99=0.0, p999=0.0), LatencySummary(p50=0.0), 5),
        (LatencySummary(), LatencySummary(), 0),
    ],
)
def test_the_percentile_chart_draws_what_was_measured(
    target: LatencySummary, baseline: LatencySummary, bars: int
) -> None:
    chart = percentile_chart(target, baseline)
    assert chart.count("<rect ") == bars
    if not bars:
        assert "no percentile to draw" in chart


def test_the_verdict_lists_each_criterion_with_value_and_threshold() -> None:
    result = _result(criteria=FULL_CRITERIA)
    page = render_report(result)
    verdict = page[page.index('<section id="verdict">') :]
    verdict = verdict[: verdict.index("</section>")]
    assert "FAILED: 2 of 3 criteria met" in verdict
    for name in ("maxP99Ms", "minAgreement", "maxErrorRate"):
        assert f"<code>{name}</code>" in verdict
    assert result.latency_ms.p99 is not None
    assert f"{result.latency_ms.p99:.4g} ms" in verdict
    assert "1 ms" in verdict  # the p99 threshold
    assert "20 %" in verdict
    assert "50 %" in verdict
    assert verdict.count('class="failed">failed') == 1
    assert verdict.count('class="passed">passed') == 2


def test_a_criterion_without_data_shows_why() -> None:
    result = _result(baseline=False, labels=False, criteria=SuccessCriteria(min_accuracy=0.9))
    page = render_report(result)
    assert "FAILED: 0 of 1 criteria met" in page
    assert "accuracy cannot be checked: no labeled prediction" in page


def test_no_criteria_says_so() -> None:
    page = render_report(_result(baseline=False))
    assert "No success criteria were set." in page


def test_text_is_escaped() -> None:
    result = _result(target=HOSTILE, baseline=False, labels=False)
    page = render_report(result)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;?a=1&amp;b=2" in page
    result.errors["<b>odd</b>"] = 1
    result.warnings.append('"quoted" & <i>')
    page = render_report(result)
    assert "<b>odd</b>" not in page
    assert "&lt;b&gt;odd&lt;/b&gt;" in page
    assert "&quot;quoted&quot; &amp; &lt;i&gt;" in page


@pytest.mark.parametrize("seconds", [1, 2, 10, 61])
def test_polylines_have_one_point_per_timeline_point(seconds: int) -> None:
    result = _result(seconds=seconds, per_second=10, labels=False, errors=False)
    assert len(result.timeline) == seconds
    page = render_report(result)
    for series in ("sent/s", "ok/s", "asked rate", "p50", "p90", "p99"):
        assert _polylines(page, series) == [seconds], series
    circles = page.count('<circle data-series="')
    assert circles == (6 if seconds == 1 else 0)


def test_latency_lines_break_at_seconds_without_a_success() -> None:
    result = _result(seconds=8, per_second=10, labels=False, errors=False, silent_seconds=(3,))
    assert [p.p99_ms is None for p in result.timeline].count(True) == 1
    page = render_report(result)
    assert _polylines(page, "sent/s") == [8]
    assert _polylines(page, "p99") == [3, 4]
    assert _polylines(page, "p50") == [3, 4]


def test_latency_percentiles_per_second_are_ordered() -> None:
    result = _result(seconds=5, per_second=50, baseline=False, labels=False, errors=False)
    p50, p90, p99 = (s.values for s in latency_series(result))
    for low, mid, high in zip(p50, p90, p99, strict=True):
        assert low is not None
        assert mid is not None
        assert high is not None
        assert low <= mid <= high


def test_values_that_are_not_finite_are_gaps() -> None:
    result = _result(seconds=5, per_second=10, baseline=False, labels=False, errors=False)
    result.timeline[2].p99_ms = math.nan
    result.timeline[3].p99_ms = math.inf
    result.latency_ms.p999 = math.inf
    page = render_report(result)
    assert _polylines(page, "p99") == [2, 1]
    assert not re.search(r"\b(nan|inf)\b", page, re.IGNORECASE)


def test_an_empty_run_draws_no_chart() -> None:
    result = _result(seconds=0, baseline=False, labels=False)
    assert result.timeline == []
    page = render_report(result)
    assert "<svg" not in page
    assert "No timeline point in this result" in page
    assert "No error." in page


def test_a_result_without_per_second_state_still_draws_its_p99() -> None:
    result = _result(seconds=4, per_second=10, baseline=False, labels=False, errors=False)
    result.state.target.timeline = []
    page = render_report(result)
    assert _polylines(page, "p99") == [4]
    assert _polylines(page, "p50") == []


def test_the_page_is_self_contained() -> None:
    result = _result(criteria=FULL_CRITERIA)
    page = render_report(result)
    assert "<script" not in page
    assert "<link" not in page
    assert "@import" not in page
    assert "url(" not in page
    assert " src=" not in page
    assert " href=" not in page
    rest = page.replace(TARGET, "").replace(BASELINE, "")
    assert "http://" not in rest
    assert "https://" not in rest
    assert render_report(result) == page  # deterministic


class _Nesting(HTMLParser):
    """Records elements closed out of order and those left open."""

    VOID = frozenset({"meta"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.misplaced: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.misplaced.append(tag)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"criteria": FULL_CRITERIA},
        {"seconds": 0, "baseline": False, "labels": False},
        {"seconds": 1, "per_second": 1, "labels": False},
        {"seconds": 6, "silent_seconds": (0, 5)},
    ],
)
def test_the_page_is_well_nested(kwargs: dict[str, object]) -> None:
    parser = _Nesting()
    parser.feed(render_report(_result(**kwargs)))  # type: ignore[arg-type]
    parser.close()
    assert parser.misplaced == []
    assert parser.open == []


# -- the command --------------------------------------------------------------------------


def test_report_command_writes_the_page(tmp_path: Path) -> None:
    result = _result(criteria=FULL_CRITERIA)
    source = tmp_path / "result.json"
    source.write_text(result_json(result))
    assert cli_main.main(["report", str(source)]) == 0
    page = (tmp_path / "result.html").read_text()
    assert page == render_report(ReplayResult.model_validate_json(source.read_text()))
    out = tmp_path / "sub" / "page.html"
    assert cli_main.main(["report", str(source), "--output", str(out)]) == 0
    assert out.read_text() == page


def _document() -> dict[str, object]:
    document: dict[str, object] = json.loads(result_json(_result(seconds=2, baseline=False)))
    return document


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "not JSON: Expecting property name"),
        ("[]", "neither result JSON nor a MODELROLLOUT_RESULT line"),
        ('{"target": "http://t"}', "not a replay result: durationSeconds: Field required"),
        ("counts.sent=-1", "counts.sent: Input should be greater than or equal to 0"),
        ("rate.target=fast", "rate.target: Input should be a valid number"),
        ("log line\nno result here\n", "neither result JSON nor a MODELROLLOUT_RESULT line"),
    ],
)
def test_bad_input_names_the_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "result.json"
    if content is not None and "=" in content and not content.startswith("{"):
        field, _, value = content.partition("=")
        document = _document()
        section, key = field.split(".")
        part = document[section]
        assert isinstance(part, dict)
        part[key] = int(value) if value.lstrip("-").isdigit() else value
        path.write_text(json.dumps(document))
    elif content is not None:
        path.write_text(content)
    assert cli_main.main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"modelrollout report: {path}" in err
    assert message in err
    assert not (tmp_path / "result.html").exists()


def test_report_refuses_to_overwrite_its_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "result.json"
    path.write_text(result_json(_result(seconds=2, baseline=False)))
    assert cli_main.main(["report", str(path), "--output", str(path)]) == 2
    assert "is the result itself" in capsys.readouterr().err


def test_report_reads_a_result_line_from_a_log(tmp_path: Path) -> None:
    result = _result(seconds=3, baseline=False, labels=False)
    log = tmp_path / "pod.log"
    log.write_text("starting\n" + format_result_line(result) + "\n")
    assert cli_main.main(["report", str(log), "-o", str(tmp_path / "r.html")]) == 0
    assert _polylines((tmp_path / "r.html").read_text(), "sent/s") == [3]


def test_report_is_allowed_beside_a_serialized_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RUN_ENV, ReplayRun(events="e.jsonl", target=TARGET).to_json())
    parser = argparse.ArgumentParser()
    add_replay_arguments(parser)
    args = parser.parse_args(["--report", str(tmp_path / "r.html")])
    assert build_run(args).target == TARGET


def _finish_args(tmp_path: Path, report: Path | None) -> argparse.Namespace:
    return argparse.Namespace(
        output=tmp_path / "result.json", report=report, quiet=True, result_line=False
    )


def test_replay_writes_the_report_at_the_end(tmp_path: Path) -> None:
    result = _result(criteria=FULL_CRITERIA)
    report = tmp_path / "out" / "report.html"
    assert _finish(result, _finish_args(tmp_path, report), interrupted=False) == 1
    assert report.read_text() == render_report(result)
    assert (tmp_path / "result.json").exists()


def test_replay_report_not_writable_is_a_run_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = _finish(
        _result(seconds=2), _finish_args(tmp_path, blocker / "report.html"), interrupted=False
    )
    assert code == 3
    assert "--report: cannot write" in capsys.readouterr().err


def test_replay_merge_writes_the_merged_report(tmp_path: Path) -> None:
    parts = []
    for index in range(2):
        path = tmp_path / f"shard-{index}.json"
        shard = _result(seconds=3, baseline=False, labels=False)
        shard.shard = ShardInfo(index=index, count=2)
        path.write_text(result_json(shard))
        parts.append(str(path))
    report = tmp_path / "merged.html"
    argv = ["replay-merge", *parts, "--quiet", "--report", str(report)]
    assert cli_main.main(argv) == 0
    page = report.read_text()
    assert _polylines(page, "sent/s") == [3]
    assert "2 shard results merged" in page
