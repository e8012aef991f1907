"""The replay CLI against real model servers on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelrollout.cli.replay import main
from modelrollout.core.replay.result import (
    ReplayResult,
    merge_results,
    parse_result_line,
    result_is_consistent,
)
from support.modelservers import ModelServer
from support.replaying import replay_cli
from support.serving import serving_directory

Events = Callable[..., Path]
PREDICTION = "predictions[0]"


_replay = replay_cli


def test_labeled_run_measures_latency_and_quality(
    tmp_path: Path, servers: dict[str, ModelServer], events: Events
) -> None:
    code, result = _replay(
        tmp_path,
        "--events",
        str(events(400)),
        "--target",
        servers["v2"].predict,
        "--rate",
        "200",
        "--prediction-path",
        PREDICTION,
        "--max-error-rate",
        "0",
        "--min-auc",
        "0.8",
    )
    assert code == 0
    assert result is not None
    assert result_is_consistent(result)
    c = result.counts
    assert (c.selected, c.scheduled, c.sent, c.ok, c.errors, c.dropped) == (
        400,
        400,
        400,
        400,
        0,
        0,
    )
    assert result.rate.target == pytest.approx(200)
    assert result.rate.achieved == pytest.approx(200, rel=0.05)
    assert result.latency_ms.p50 is not None
    assert 0 < result.latency_ms.p50 < 500
    assert result.service_time_ms.p99 is not None
    assert result.latency_ms.p99 is not None
    assert result.service_time_ms.p99 <= result.latency_ms.p99 * 1.01
    assert result.quality is not None
    assert result.quality.labeled == 400
    assert result.quality.auc is not None
    assert result.quality.auc > 0.8
    assert result.verdict.passed
    assert [p.second for p in result.timeline] == [0, 1]
    assert result.state.target.timeline


def test_baseline_comparison(
    tmp_path: Path, servers: dict[str, ModelServer], events: Events
) -> None:
    code, result = _replay(
        tmp_path,
        "--events",
        str(events(300)),
        "--target",
        servers["v2"].predict,
        "--baseline",
        servers["v1"].predict,
        "--rate",
        "300",
        "--prediction-path",
        PREDICTION,
        "--min-agreement",
        "0.8",
        "--max-p99-ratio-to-baseline",
        "1000",
    )
    assert code == 0
    assert result is not None
    comparison = result.comparison
    assert comparison is not None
    assert comparison.pairs == 300
    assert comparison.agreement is not None
    assert 0.8 < comparison.agreement < 1.0  # v2 is a slightly different model
    diff = comparison.score_diff
    assert diff is not None
    assert diff.count == 300
    assert diff.max_abs is not None
    assert 0 < diff.max_abs < 0.5
    assert comparison.baseline.counts.ok == 300
    assert comparison.baseline.quality is not None
    assert comparison.deltas.p99_ratio is not None
    assert [c.criterion for c in result.verdict.checks] == ["minAgreement", "maxP99RatioToBaseline"]


def test_dataset_without_labels(
    tmp_path: Path, servers: dict[str, ModelServer], events: Events
) -> None:
    code, result = _replay(
        tmp_path,
        "--events",
        str(events(100, labels=False)),
        "--target",
        servers["v2"].predict,
        "--rate",
        "200",
        "--prediction-path",
        PREDICTION,
        "--min-accuracy",
        "0.5",
    )
    assert code == 1
    assert result is not None
    assert result.quality is None
    assert result.counts.ok == 100
    assert "no labeled prediction" in result.verdict.reasons[0]


def test_malformed_lines_are_reported_not_fatal(
    tmp_path: Path, servers: dict[str, ModelServer], events: Events
) -> None:
    path = events(50, extra=["{oops", '{"payload": {}, "timestamp": "later"}', "[]"])
    code, result = _replay(
        tmp_path, "--events", str(path), "--target", servers["v2"].predict, "--rate", "500"
    )
    assert code == 0
    assert result is not None
    assert result.counts.malformed == 3
    assert [m.line for m in result.malformed_lines] == [51, 52, 53]
    assert result.malformed_lines[1].reason.startswith("timestamp:")
    assert result.counts.sent == 50


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no usable event"),
        ("garbage\n{}\n", "line 1: not JSON"),
    ],
)
def test_unusable_dataset_is_bad_input(
    tmp_path: Path,
    servers: dict[str, ModelServer],
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    code, result = _replay(tmp_path, "--events", str(path), "--target", servers["v2"].predict)
    assert code == 2
    assert result is None
    err = capsys.readouterr().err
    assert "--events" in err
    assert message in err


def test_selection_that_keeps_nothing_is_bad_input(
    tmp_path: Path,
    servers: dict[str, ModelServer],
    events: Events,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = _replay(
        tmp_path,
        "--events",
        str(events(20)),
        "--target",
        servers["v2"].predict,
        "--filter",
        "region=mars",
    )
    assert code == 2
    assert "the selection" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--events", "/nonexistent.jsonl"], "--events"),
        (["--pattern", "ramp:1"], "--pattern"),
        (["--duration", "soon"], "--duration"),
        (["--rate", "-3"], "--rate"),
        (["--prediction-path", "a..b"], "--prediction-path"),
        (["--since", "yesterday"], "--since"),
        (["--shard-index", "3", "--shard-count", "2"], "--shard-index"),
        (["--target", "ftp://x"], "--target"),
        (["--max-error-rate", "7"], "--max-error-rate"),
    ],
)
def test_bad_flags_name_the_flag(
    tmp_path: Path,
    servers: dict[str, ModelServer],
    events: Events,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    flag: str,
) -> None:
    base = {"--events": str(events(10)), "--target": servers["v2"].predict}
    for key in list(base):
        if key in args:
            del base[key]
    argv = [x for pair in base.items() for x in pair] + args
    try:
        code, _ = _replay(tmp_path, *argv)
    except SystemExit as exit_:  # argparse rejects some flags itself, also with status 2
        code = int(exit_.code or 0)
    assert code == 2
    assert flag in capsys.readouterr().err


def test_criteria_file_and_exit_codes(
    tmp_path: Path,
    servers: dict[str, ModelServer],
    events: Events,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dataset = str(events(100))
    criteria = tmp_path / "criteria.json"
    criteria.write_text(json.dumps({"maxP99Ms": 0.001, "maxErrorRate": 0.5}))
    common = ["--events", dataset, "--target", servers["v2"].predict, "--rate", "500"]
    code, result = _replay(tmp_path, *common, "--criteria", str(criteria))
    assert code == 1
    assert result is not None
    assert not result.verdict.passed
    assert result.verdict.reasons == [c.message for c in result.verdict.checks if not c.passed]
    # A flag overrides the file.
    code, result = _replay(tmp_path, *common, "--criteria", str(criteria), "--max-p99-ms", "5000")
    assert code == 0
    criteria.write_text(json.dumps({"maxP99ms": 5}))
    code, _ = _replay(tmp_path, *common, "--criteria", str(criteria))
    assert code == 2
    assert "maxP99ms" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_target_counts_connection_errors(tmp_path: Path, events: Events) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1/models/model:predict"
    code, result = _replay(
        tmp_path,
        "--events",
        str(events(60)),
        "--target",
        url,
        "--rate",
        "300",
        "--timeout",
        "2s",
        "--wait-for-endpoints",
        "1s",
    )
    assert code == 0  # no criteria: the run itself succeeded
    assert result is not None
    assert result.errors == {"connection": 60}
    assert result.availability == 0
    assert any("failed to connect" in w for w in result.warnings)
    assert any("accepted no connection in the 1 s before the run" in w for w in result.warnings)
    code, _ = _replay(
        tmp_path,
        "--events",
        str(events(60)),
        "--target",
        url,
        "--rate",
        "300",
        "--min-availability",
        "0.9",
        "--wait-for-endpoints",
        "0",
    )
    assert code == 1


def test_timeouts_and_drops_are_counted(
    tmp_path: Path, servers: dict[str, ModelServer], events: Events
) -> None:
    _, result = _replay(
        tmp_path,
        "--events",
        str(events(40)),
        "--target",
        servers["slow"].predict,
        "--rate",
        "40",
        "--timeout",
        "150ms",
    )
    assert result is not None
    assert result.errors == {"timeout": 40}
    # One request at a time against a 400 ms server at 20 req/s: most sends must be
    # dropped after waiting 100 ms, and every send is still accounted for.
    _code, result = _replay(
        tmp_path,
        "--events",
        str(events(20)),
        "--target",
        servers["slow"].predict,
        "--rate",
        "20",
        "--concurrency",
        "1",
        "--max-lag",
        "100ms",
    )
    assert result is not None
    c = result.counts
    assert c.scheduled == 20
    assert c.dropped >= 10
    assert c.sent + c.dropped == 20
    assert c.ok == c.sent
    assert result.send_lag_ms.max is not None
    assert result.send_lag_ms.max <= 100 + 50
    assert any("dropped" in w for w in result.warnings)


def test_errors_by_status(tmp_path: Path, servers: dict[str, ModelServer], events: Events) -> None:
    code, result = _replay(
        tmp_path,
        "--events",
        str(events(200)),
        "--target",
        servers["flaky"].predict,
        "--rate",
        "400",
        "--max-error-rate",
        "0.05",
    )
    assert code == 1
    assert result is not None
    assert set(result.errors) == {"http_500"}
    assert 30 < result.errors["http_500"] < 90
    assert result_is_consistent(result)
    wrong_model = servers["v2"].url + "/v1/models/other:predict"
    _, result = _replay(
        tmp_path, "--events", str(events(10)), "--target", wrong_model, "--rate", "100"
    )
    assert result is not None
    assert result.errors == {"http_404": 10}
    _, result = _replay(
        tmp_path,
        "--events",
        str(events(10)),
        "--target",
        servers["v2"].predict,
        "--rate",
        "100",
        "--prediction-path",
        "outputs[0]",
    )
    assert result is not None
    assert result.errors == {"invalid_response": 10}


def test_speed_mode_loops_to_fill_the_duration(
    tmp_path: Path, servers: dict[str, ModelServer], events: Events
) -> None:
    # 50 events recorded over 0.5 s (100/s); at 2x for 1 s: 200/s, two passes.
    code, result = _replay(
        tmp_path,
        "--events",
        str(events(50)),
        "--target",
        servers["v2"].predict,
        "--speed",
        "2",
        "--duration",
        "1s",
    )
    assert code == 0
    assert result is not None
    assert result.counts.scheduled == 200
    assert result.counts.repeated == 150
    assert result.rate.target == pytest.approx(200)


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[str]:
    directory = tmp_path / "www"
    directory.mkdir()
    with serving_directory(directory) as url:
        yield url


def test_url_source_with_gzip(
    tmp_path: Path, servers: dict[str, ModelServer], events: Events, file_server: str
) -> None:
    source = events(120)
    (tmp_path / "www" / "events.bin").write_bytes(gzip.compress(source.read_bytes()))
    code, result = _replay(
        tmp_path,
        "--events",
        f"{file_server}/events.bin",
        "--target",
        servers["v2"].predict,
        "--rate",
        "400",
        "--prediction-path",
        PREDICTION,
    )
    assert code == 0
    assert result is not None
    assert result.counts.ok == 120
    assert result.quality is not None
    code, _ = _replay(
        tmp_path, "--events", f"{file_server}/missing.jsonl", "--target", servers["v2"].predict
    )
    assert code == 2


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelrollout.cli.replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_shards_merge_to_the_whole_run(
    tmp_path: Path, servers: dict[str, ModelServer], events: Events
) -> None:
    dataset = str(events(240))
    common = [
        "--events",
        dataset,
        "--target",
        servers["v2"].predict,
        "--baseline",
        servers["v1"].predict,
        "--rate",
        "300",
        "--prediction-path",
        PREDICTION,
        "--result-line",
        "--quiet",
        "--shard-count",
        "2",
    ]
    shards = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelrollout.cli.replay",
                "replay",
                *common,
                "--shard-index",
                str(i),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [shard.communicate(timeout=120) for shard in shards]
    results = []
    for i, (stdout, stderr) in enumerate(outputs):
        assert shards[i].returncode == 0, stderr
        assert stdout.splitlines()[-1].startswith("MODELROLLOUT_RESULT ")
        log = tmp_path / f"shard-{i}.log"
        log.write_text(stdout)
        parsed = parse_result_line(stdout)
        assert parsed is not None
        assert parsed.shard.index == i
        assert parsed.counts.scheduled == 120
        results.append(log)
    merged_path = tmp_path / "merged.json"
    done = _cli(
        "replay-merge",
        *map(str, results),
        "--output",
        str(merged_path),
        "--quiet",
        "--min-agreement",
        "0.5",
    )
    assert done.returncode == 0, done.stderr
    merged = ReplayResult.model_validate_json(merged_path.read_text())
    c = merged.counts
    assert (c.selected, c.scheduled, c.ok, c.errors, c.dropped) == (240, 240, 240, 0, 0)
    assert merged.shard.merged == 2
    assert merged.rate.target == pytest.approx(300)
    assert merged.quality is not None
    assert merged.quality.labeled == 240
    assert merged.comparison is not None
    assert merged.comparison.pairs == 240
    again = merge_results(
        [parse_result_line(p.read_text()) for p in results]  # type: ignore[misc]
    )
    assert again.counts == merged.counts
    # Same shard twice is refused.
    done = _cli("replay-merge", str(results[0]), str(results[0]), "--quiet")
    assert done.returncode == 2
    assert "appears twice" in done.stderr


def test_result_line_is_the_last_stdout_line(
    servers: dict[str, ModelServer], events: Events
) -> None:
    done = _cli(
        "replay",
        "--events",
        str(events(30)),
        "--target",
        servers["v2"].predict,
        "--rate",
        "300",
        "--result-line",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    result = parse_result_line(done.stdout)
    assert result is not None
    assert result.counts.ok == 30
    assert "verdict: no success criteria set" in done.stderr  # summary on stderr


@pytest.mark.parametrize("command", ["replay", "replay-merge"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--max-p99-ratio-to-baseline" in out


def test_ramp_reports_capacity_and_the_api_shape(
    tmp_path: Path, servers: dict[str, ModelServer], events: Events
) -> None:
    ramp = ["--events", str(events(300)), "--pattern", "ramp:20:120", "--duration", "4s",
            "--capacity-window", "1s", "--prediction-path", PREDICTION]  # fmt: skip
    code, held = _replay(tmp_path, *ramp, "--target", servers["v2"].predict,
                         "--capacity-p99-ms", "1000")  # fmt: skip
    assert code == 0
    assert held is not None
    assert held.capacity is not None
    assert not held.capacity.reached  # 1 s is far above what this server takes
    assert held.capacity.rate is not None
    assert held.capacity.rate > 20
    assert "at least" in held.capacity.message
    assert held.api is not None
    assert held.api.request_samples == 100
    assert held.api.request["required"] == ["instances"]
    assert held.api.request["properties"]["instances"]["items"]["items"] == {"type": "number"}
    assert held.api.response["properties"]["predictions"]["type"] == "array"

    code, broke = _replay(tmp_path, *ramp, "--target", servers["slow"].predict,
                          "--capacity-p99-ms", "100")  # fmt: skip
    assert broke is not None
    assert broke.capacity is not None
    assert broke.capacity.reached  # 400 ms answers break a 100 ms target at once
    assert broke.capacity.rate is None
    broken_p99 = re.search(r"p99 ([0-9.]+) ms > 100 ms", broke.capacity.message)
    assert broken_p99 is not None, broke.capacity.message
    assert float(broken_p99.group(1)) > 300  # the 400 ms server, within the histogram's error

    code, _ = _replay(tmp_path, *ramp, "--target", servers["v2"].predict,
                      "--capacity-p99-ms", "-3")  # fmt: skip
    assert code == 2
