"""Accounting, exact shard merging, the result line, verdicts and the API models."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from modelrollout.cli.replay import BadInput, add_replay_arguments, build_run, format_summary
from modelrollout.core.replay.accumulator import ReplayAccumulator, classify_response
from modelrollout.core.replay.criteria import SuccessCriteria
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.quality import Prediction, PredictionReader
from modelrollout.core.replay.rates import RateSpec, parse_pattern
from modelrollout.core.replay.result import (
    RESULT_LINE_PREFIX,
    MalformedLine,
    ReplayResult,
    RunInfo,
    evaluate,
    format_result_line,
    merge_results,
    parse_result_line,
    result_from_run,
    result_is_consistent,
)
from modelrollout.core.replay.run import RUN_ENV, ReplayRun
from modelrollout.core.replay.selection import EventSelection

READER = PredictionReader.create("predictions[0]")
KINDS = ["ok"] * 16 + ["http_500", "http_429", "timeout", "connection", "invalid_response"]


def _outcome(k: int, which: int) -> dict[str, Any]:
    rng = random.Random(k * 2 + which)
    kind = rng.choice(KINDS)
    if rng.random() < 0.05:
        kind = "dropped"
    score = rng.random()
    return {
        "kind": kind,
        "offset": k / 100,
        "lag": rng.expovariate(1000),
        "service": rng.lognormvariate(-5, 0.6) * (1.1 if which == 0 else 1.0),
        "prediction": Prediction(positive=score >= 0.5, score=score) if kind == "ok" else None,
        "label": None if k % 7 == 0 else str(rng.randint(0, 1)),
    }


def _simulate(
    total: int, shard: tuple[int, int] = (0, 1), *, baseline: bool = True, malformed: int = 0
) -> ReplayResult:
    index, count = shard
    acc = ReplayAccumulator(baseline=baseline, reader=READER)
    mine = [k for k in range(total) if k % count == index]
    # Complete target and baseline in an interleaved order, like a real run.
    order = [(k, w) for k in mine for w in ((0, 1) if baseline else (0,))]
    random.Random(index).shuffle(order)
    for k, which in order:
        o = _outcome(k, which)
        if o["kind"] == "dropped":
            acc.dropped(which, k, o["offset"], 1.5)
        else:
            acc.completed(
                which,
                k,
                o["offset"],
                o["lag"],
                o["service"],
                o["kind"],
                o["prediction"],
                o["label"],
            )
    lines = [n for n in range(1, malformed + 1) if n % count == index]
    info = RunInfo(
        target="http://127.0.0.1:1/v1/models/m:predict",
        baseline="http://127.0.0.1:2/v1/models/m:predict" if baseline else None,
        started_at="2024-05-01T00:00:00.000Z",
        finished_at="2024-05-01T00:00:10.000Z",
        duration_seconds=10.0,
        planned_seconds=total / 100,
        shard_index=index,
        shard_count=count,
        criteria=SuccessCriteria(max_p99_ms=5.0, min_agreement=0.4),
        lines=len([n for n in range(total) if n % count == index]),
        selected=len(mine),
        malformed=len(lines),
        malformed_lines=[MalformedLine(line=n, reason="not JSON") for n in lines[:10]],
    )
    return result_from_run(acc, info)


def test_every_send_is_accounted_for() -> None:
    result = _simulate(2000)
    c = result.counts
    assert result_is_consistent(result)
    assert c.scheduled == 2000
    assert c.scheduled == c.ok + c.errors + c.dropped
    assert c.dropped > 0
    assert c.errors > 0
    assert set(result.errors) == {
        "http_500",
        "http_429",
        "timeout",
        "connection",
        "invalid_response",
    }
    assert sum(result.errors.values()) == c.errors
    timeline = result.timeline
    assert sum(p.sent for p in timeline) == c.sent
    assert sum(p.ok for p in timeline) == c.ok
    assert sum(p.dropped for p in timeline) == c.dropped
    assert result.comparison is not None
    b = result.comparison.baseline.counts
    assert b.scheduled == b.ok + b.errors + b.dropped == 2000
    comparison = result.comparison
    assert comparison.pairs + comparison.target_only_ok + comparison.baseline_only_ok <= 2000
    assert result.latency_ms.count == c.ok


@pytest.mark.parametrize("shards", [2, 3, 5])
def test_merged_shards_equal_the_single_run(shards: int) -> None:
    single = _simulate(3000, malformed=25)
    parts = [_simulate(3000, (i, shards), malformed=25) for i in range(shards)]
    # Through the wire format, as the operator reads them.
    parsed = [parse_result_line("log line\n" + format_result_line(p) + "\n") for p in parts]
    assert all(p is not None for p in parsed)
    merged = merge_results([p for p in parsed if p is not None])
    assert merged.counts == single.counts
    assert merged.errors == single.errors
    for name in ("latency_ms", "service_time_ms", "send_lag_ms"):
        mine, theirs = getattr(merged, name), getattr(single, name)
        for q in ("count", "min", "p50", "p90", "p95", "p99", "p999", "max"):
            assert getattr(mine, q) == getattr(theirs, q), (name, q)
        assert mine.mean == pytest.approx(theirs.mean)
    assert merged.quality == single.quality
    assert merged.comparison is not None
    assert single.comparison is not None
    assert merged.comparison.pairs == single.comparison.pairs
    assert merged.comparison.agreement == single.comparison.agreement
    assert merged.comparison.baseline.latency_ms.p99 == single.comparison.baseline.latency_ms.p99
    assert merged.comparison.score_diff is not None
    assert single.comparison.score_diff is not None
    assert merged.comparison.score_diff.p95_abs == single.comparison.score_diff.p95_abs
    assert [(p.second, p.sent, p.ok, p.p99_ms) for p in merged.timeline] == [
        (p.second, p.sent, p.ok, p.p99_ms) for p in single.timeline
    ]
    assert merged.malformed_lines == single.malformed_lines
    assert merged.rate.target == pytest.approx(single.rate.target)
    assert merged.verdict == single.verdict
    assert merged.shard.index is None
    assert merged.shard.merged == shards


def test_a_merge_names_every_client_and_event_loop_its_shards_used() -> None:
    parts = [_simulate(300, (i, 3)) for i in range(3)]
    sent = [("lean", "asyncio"), ("aiohttp", "uvloop"), ("lean", "asyncio")]
    parts = [
        p.model_copy(update={"client": client, "event_loop": loop})
        for p, (client, loop) in zip(parts, sent, strict=True)
    ]
    merged = merge_results(parts)
    assert (merged.client, merged.event_loop) == ("lean,aiohttp", "asyncio,uvloop")
    same = merge_results([*parts[::2], parts[1].model_copy(update={"client": "lean"})])
    assert same.client == "lean"
    older = merge_results(
        [p.model_copy(update={"client": None, "event_loop": None}) for p in parts]
    )
    assert (older.client, older.event_loop) == (None, None)
    assert "eventLoop" not in json.loads(format_result_line(older).split(" ", 1)[1])


def test_merge_rejects_mixed_inputs() -> None:
    a = _simulate(100, (0, 2))
    with pytest.raises(ValueError, match="appears twice"):
        merge_results([a, a])
    with pytest.raises(ValueError, match="no result"):
        merge_results([])
    other = a.model_copy(update={"target": "http://elsewhere"})
    with pytest.raises(ValueError, match="different"):
        merge_results(
            [a, other.model_copy(update={"shard": a.shard.model_copy(update={"index": 1})})]
        )
    no_baseline = _simulate(100, (1, 2), baseline=False)
    with pytest.raises(ValueError, match="baseline"):
        merge_results([a, no_baseline.model_copy(update={"baseline": a.baseline})])


def test_result_line_is_compact_and_parses_back() -> None:
    result = _simulate(1500)
    line = format_result_line(result)
    assert line.startswith(RESULT_LINE_PREFIX)
    assert "\n" not in line
    assert len(line) < 40_000
    parsed = parse_result_line(f"2024-05-01T00:00:00Z {line}")
    assert parsed is not None
    assert parsed.model_dump() == result.model_dump()
    assert parse_result_line("no result here\n") is None
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic ValidationError
        parse_result_line(line[:-20])


def test_classify_response() -> None:
    assert classify_response(200, b'{"predictions": [0.9]}', READER) == (
        "ok",
        Prediction(positive=True, score=0.9),
    )
    assert classify_response(200, b"{}", READER) == ("invalid_response", None)
    assert classify_response(200, b"<html>", None) == ("ok", None)
    assert classify_response(503, b"", READER) == ("http_503", None)
    assert classify_response(302, b"", None) == ("http_302", None)


def _result_with(**changes: Any) -> ReplayResult:
    base = _simulate(400)
    return base.model_copy(update=changes)


@pytest.mark.parametrize(
    ("criteria", "passed", "fragment"),
    [
        ({}, True, None),
        ({"maxP99Ms": 1000}, True, None),
        ({"maxP99Ms": 0.0001}, False, "p99 latency"),
        ({"maxErrorRate": 0.5}, True, None),
        ({"maxErrorRate": 0.01}, False, "error rate"),
        ({"minAvailability": 0.99}, False, "availability"),
        ({"maxDropRate": 0.0}, False, "drop rate"),
        ({"minRequests": 10}, True, None),
        ({"minRequests": 100000}, False, "requests sent"),
        ({"minAccuracy": 0.0}, True, None),
        ({"minAccuracy": 1.0}, False, "accuracy"),
        ({"minAuc": 0.99}, False, "ROC AUC"),
        ({"minAgreement": 0.0}, True, None),
        ({"maxP99RatioToBaseline": 1000}, True, None),
        ({"maxP99RatioToBaseline": 0.001}, False, "p99 / baseline p99"),
        ({"maxErrorRateDeltaToBaseline": 1.0}, True, None),
        ({"maxAccuracyDropToBaseline": 1.0}, True, None),
        ({"maxMeanAbsScoreDiff": 0.0001}, False, "mean |score diff|"),
        ({"minThroughputRatio": 0.5}, True, None),
        ({"minThroughputRatio": 5}, False, "achieved/target"),
    ],
)
def test_verdict_table(criteria: dict[str, float], passed: bool, fragment: str | None) -> None:
    result = _simulate(400)
    verdict = evaluate(result, SuccessCriteria.model_validate(criteria))
    assert verdict.passed is passed
    assert len(verdict.checks) == len(criteria)
    if fragment is not None:
        assert any(fragment in reason for reason in verdict.reasons), verdict.reasons
    else:
        assert verdict.reasons == []


@pytest.mark.parametrize(
    ("criteria", "why"),
    [
        ({"maxP99RatioToBaseline": 2}, "no baseline endpoint"),
        ({"minAgreement": 0.5}, "no baseline endpoint"),
        ({"maxAccuracyDropToBaseline": 0.1}, "no baseline endpoint"),
    ],
)
def test_relative_criteria_without_a_baseline_fail_with_a_reason(
    criteria: dict[str, float], why: str
) -> None:
    result = _simulate(200, baseline=False)
    verdict = evaluate(result, SuccessCriteria.model_validate(criteria))
    assert not verdict.passed
    assert why in verdict.reasons[0]


def test_criteria_without_data_fail() -> None:
    result = _simulate(200)
    no_labels = result.model_copy(update={"quality": None})
    verdict = evaluate(no_labels, SuccessCriteria(min_accuracy=0.5))
    assert not verdict.passed
    assert "no labeled prediction" in verdict.reasons[0]
    nothing_ok = result.model_copy(update={"counts": result.counts.model_copy(update={"ok": 0})})
    assert (
        "no successful response" in evaluate(nothing_ok, SuccessCriteria(max_p99_ms=9)).reasons[0]
    )


def test_relative_latency_criterion_uses_the_ratio() -> None:
    result = _simulate(1000)
    assert result.comparison is not None
    ratio = result.latency_ms.p99 / result.comparison.baseline.latency_ms.p99  # type: ignore[operator]
    assert evaluate(result, SuccessCriteria(max_p99_ratio_to_baseline=ratio * 1.01)).passed
    assert not evaluate(result, SuccessCriteria(max_p99_ratio_to_baseline=ratio * 0.99)).passed
    assert result.comparison.deltas.p99_ratio == pytest.approx(ratio)


def _models() -> list[type[BaseModel]]:
    import modelrollout.core.replay.criteria as criteria_module
    import modelrollout.core.replay.histogram as histogram_module
    import modelrollout.core.replay.options as options_module
    import modelrollout.core.replay.quality as quality_module
    import modelrollout.core.replay.rates as rates_module
    import modelrollout.core.replay.result as result_module
    import modelrollout.core.replay.selection as selection_module
    from modelrollout.core.api.base import ApiModel

    found = []
    for module in (
        criteria_module,
        histogram_module,
        options_module,
        quality_module,
        rates_module,
        result_module,
        selection_module,
    ):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, ApiModel) and value is not ApiModel:
                found.append(value)
    return sorted(set(found), key=lambda m: m.__name__)


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_field_is_documented_and_crd_friendly(model: type[BaseModel]) -> None:
    for name, info in model.model_fields.items():
        assert info.description, f"{model.__name__}.{name} has no description"
    text = json.dumps(model.model_json_schema())
    assert '"anyOf": [{"type": "object"' not in text
    assert '"additionalProperties": true' not in text


FLAGS = [
    "--events", "/data/events.jsonl", "--target", "http://127.0.0.1:1/p",
    "--baseline", "http://127.0.0.1:2/p", "--pattern", "steps:50@30s,100@1m", "--duration", "2m",
    "--since", "2024-05-01T00:00:00Z", "--filter", "region=eu", "--sample", "0.5", "--seed", "3",
    "--max-events", "9", "--concurrency", "7", "--timeout", "2s",
    "--prediction-path", "predictions[0]", "--threshold", "0.7", "--positive-label", "fraud",
    "--header", "Host: model.example", "--use-event-path",
    "--max-p99-ms", "50", "--min-requests", "10", "--max-p99-ratio-to-baseline", "1.2",
]  # fmt: skip
EXPECTED = ReplayRun(
    events="/data/events.jsonl",
    target="http://127.0.0.1:1/p",
    baseline="http://127.0.0.1:2/p",
    rate=RateSpec(pattern=parse_pattern("steps:50@30s,100@1m"), duration="2m"),
    selection=EventSelection(
        since="2024-05-01T00:00:00Z", filters={"region": "eu"}, sample=0.5, seed=3, max_events=9
    ),
    options=ReplayOptions(
        concurrency=7,
        timeout="2s",
        prediction_path="predictions[0]",
        threshold=0.7,
        positive_label="fraud",
        headers={"Host": "model.example"},
        use_event_path=True,
    ),
    criteria=SuccessCriteria(max_p99_ms=50, min_requests=10, max_p99_ratio_to_baseline=1.2),
    shard_index=0,
)


def _run(argv: list[str]) -> ReplayRun:
    parser = argparse.ArgumentParser()
    add_replay_arguments(parser)
    return build_run(parser.parse_args(argv))


def test_the_flags_build_the_run_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    monkeypatch.delenv("MODELROLLOUT_SHARD_COUNT", raising=False)
    assert _run(FLAGS) == EXPECTED


def test_a_serialized_run_runs_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sharded = EXPECTED.model_copy(update={"shard_index": None, "shard_count": 4})
    path = tmp_path / "run.json"
    path.write_text(sharded.to_json())
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    from_file = _run(["--run", str(path)])
    assert from_file == sharded.model_copy(update={"shard_index": 2})
    monkeypatch.setenv(RUN_ENV, sharded.to_json())
    from_env = _run(["--shard-index", "3", "--output", "/tmp/r.json"])
    assert from_env == sharded.model_copy(update={"shard_index": 3})


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--rate", "5"], None, "--events and --target are required"),
        (["--target", "http://t/p"], None, "--events is required"),
        (["--concurrency", "3", "--max-p99-ms", "9"], "RUN",
         "--concurrency, --max-p99-ms: not allowed with $MODELROLLOUT_REPLAY_RUN"),
        ([], '{"events": "e.jsonl"}', "$MODELROLLOUT_REPLAY_RUN: target: Field required"),
        (["--shard-index", "4"], "RUN", "--shard-index: 4 is not in [0, 1)"),
    ],
)  # fmt: skip
def test_bad_runs_name_the_flag_or_field(
    argv: list[str], env: str | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RUN_ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(RUN_ENV, EXPECTED.to_json() if env == "RUN" else env)
    with pytest.raises(BadInput) as caught:
        _run(argv)
    assert message in str(caught.value)


def test_summary_mentions_the_verdict() -> None:
    text = format_summary(_simulate(300))
    assert "verdict: FAILED" in text or "verdict: PASSED" in text
    assert "latency p99 ms" in text
    assert "agreement with baseline" in text


def test_the_summary_is_the_results_own_measurements() -> None:
    result = _simulate(300)
    summary = result.summary()
    assert set(type(summary).model_fields) < set(type(result).model_fields)
    assert summary.counts == result.counts
    assert summary.latency_ms.p99 == pytest.approx(result.latency_ms.p99, rel=1e-5)
    assert summary.comparison is not None
    assert summary.comparison.agreement == pytest.approx(result.comparison.agreement, rel=1e-5)
    # result.json reads from who and when to the measurements, with the mergeable state last
    keys = list(json.loads(result.model_dump_json(by_alias=True)))
    assert keys[:6] == ["schemaVersion", "target", "baseline", "startedAt", "finishedAt", "shard"]
    assert keys[-1] == "state"
