"""``modelrollout judge`` run in-process on files: exit codes, the table and verdict.json."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrollout.cli.main import main
from modelrollout.cli.replay import result_json
from modelrollout.core.replay.accumulator import ReplayAccumulator
from modelrollout.core.replay.result import ReplayResult, RunInfo, result_from_run
from support.judging import lognormal


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def _replay(
    seed: int, n: int, *, factor: float = 1.0, error_rate: float = 0.0, sigma: float = 0.4
) -> ReplayResult:
    """A replay result with ``n`` sends: lognormal service times (seconds), some errors."""
    rng = np.random.default_rng(seed)
    acc = ReplayAccumulator(baseline=False, reader=None)
    service = rng.lognormal(np.log(0.02), sigma, n) * factor
    failed = rng.random(n) < error_rate
    for k in range(n):
        kind = "http_500" if failed[k] else "ok"
        acc.completed(0, k, k / 100, 0.0, float(service[k]), kind, None, None)
    return result_from_run(acc, RunInfo(target="http://127.0.0.1:1/", planned_seconds=n / 100))


def _judge(tmp_path: Path, *flags: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "verdict.json"
    out.unlink(missing_ok=True)
    code = main(["judge", *flags, "--output", str(out)])
    return code, json.loads(out.read_text()) if out.exists() else {}


def _arrays(tmp_path: Path, baseline: Any, candidate: Any) -> list[str]:
    b = _write(tmp_path / "B.json", baseline)
    c = _write(tmp_path / "C.json", candidate)
    return ["--baseline", str(b), "--candidate", str(c)]


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 3) for v in values]


@pytest.mark.parametrize(
    ("factor", "code", "verdict"), [(1.0, 0, "Pass"), (1.3, 1, "Fail")], ids=["same", "+30%"]
)
def test_latency_arrays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], factor: float, code: int, verdict: str
) -> None:
    files = _arrays(tmp_path, _rounded(lognormal(1, 3000)), _rounded(lognormal(2, 3000) * factor))
    exit_code, data = _judge(tmp_path, *files, "--metric", "latency")
    assert exit_code == code
    assert data["verdict"] == verdict
    assert {"verdict", "pValue", "effect", "interval", "n", "test", "message", "checks"} <= set(
        data
    )
    assert data["n"] == {"baseline": 3000, "candidate": 3000}
    assert [c["name"] for c in data["checks"]] == ["shift", "tail", "spread"]
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:4] == ["check", "verdict", "p-value", "effect"]
    for name in ("shift", "tail", "spread"):
        assert any(line.startswith(name) for line in table.splitlines())
    assert f"latency: {verdict}" in table


def test_too_few_latencies_exit_3_naming_the_minimum(tmp_path: Path) -> None:
    files = _arrays(tmp_path, _rounded(lognormal(1, 500)), _rounded(lognormal(2, 500)))
    code, data = _judge(tmp_path, *files, "--metric", "latency")
    assert code == 3
    assert data["verdict"] == "Inconclusive"
    assert "need at least 1000 per side" in data["message"]
    assert data["pValue"] is None


@pytest.mark.parametrize(
    ("baseline_errors", "candidate_errors", "flags", "code"),
    [
        (0, 0, [], 0),
        (0, 5, [], 0),
        (0, 5, ["--confidence", "0.95"], 1),
        (2, 30, [], 1),
        (4, 5, ["--tolerance", "0"], 0),
    ],
)
def test_error_flags(
    tmp_path: Path, baseline_errors: int, candidate_errors: int, flags: list[str], code: int
) -> None:
    b = [0] * (1000 - baseline_errors) + [1] * baseline_errors
    c = [False] * (1000 - candidate_errors) + [True] * candidate_errors
    exit_code, data = _judge(tmp_path, *_arrays(tmp_path, b, c), "--metric", "errors", *flags)
    assert exit_code == code
    assert data["n"] == {"baseline": 1000, "candidate": 1000}
    assert data["pValue"] is not None
    assert all(x is not None and math.isfinite(x) for x in data["interval"])


def test_replay_results_latency_from_their_histograms(tmp_path: Path) -> None:
    b = tmp_path / "B.json"
    c = tmp_path / "C.json"
    b.write_text(result_json(_replay(1, 3000)))
    c.write_text(result_json(_replay(2, 3000, factor=1.25)))
    code, data = _judge(
        tmp_path, "--baseline", str(b), "--candidate", str(c), "--metric", "latency"
    )
    assert code == 1
    shift = data["checks"][0]
    assert shift["verdict"] == "Fail"
    assert shift["effect"] == pytest.approx(0.25, abs=0.04)  # 0.5 % buckets: nearly exact
    assert data["n"] == {"baseline": 3000, "candidate": 3000}


def test_replay_results_against_themselves_pass(tmp_path: Path) -> None:
    b = tmp_path / "B.json"
    b.write_text(result_json(_replay(1, 2000)))
    code, data = _judge(
        tmp_path, "--baseline", str(b), "--candidate", str(b), "--metric", "latency"
    )
    assert code == 0
    assert data["checks"][0]["effect"] == pytest.approx(0.0, abs=1e-6)


def test_replay_results_errors_from_their_counts(tmp_path: Path) -> None:
    b = tmp_path / "B.json"
    c = tmp_path / "C.json"
    b.write_text(result_json(_replay(1, 4000, error_rate=0.002)))
    c.write_text(result_json(_replay(2, 4000, error_rate=0.03)))
    code, data = _judge(tmp_path, "--baseline", str(b), "--candidate", str(c), "--metric", "errors")
    assert code == 1
    assert data["n"] == {"baseline": 4000, "candidate": 4000}
    assert data["effect"] > 5


def test_an_array_against_a_replay_result_is_binned(tmp_path: Path) -> None:
    b = tmp_path / "B.json"
    b.write_text(result_json(_replay(1, 3000)))
    c = _write(tmp_path / "C.json", _rounded(lognormal(2, 3000)))  # ms, same distribution
    code, data = _judge(
        tmp_path, "--baseline", str(b), "--candidate", str(c), "--metric", "latency"
    )
    assert code == 0, data["message"]


def test_look_flags_spend_the_confidence(tmp_path: Path) -> None:
    files = _arrays(tmp_path, _rounded(lognormal(1, 3000)), _rounded(lognormal(2, 3000) * 1.13))
    single, _ = _judge(tmp_path, *files, "--metric", "latency")
    first, data = _judge(
        tmp_path, *files, "--metric", "latency", "--look", "1", "--max-looks", "10"
    )
    assert single == 1
    assert first == 0  # the first of ten looks fails only a much larger regression
    assert data["confidence"] > 0.999999


@pytest.mark.parametrize(
    ("baseline", "metric", "message"),
    [
        ([1.0, 2.0, "x"], "latency", 'B.json: item 2: not a number ("x")'),
        ([1.0, None], "latency", "B.json: item 1: not a number (null)"),
        ([1.0, -2.0], "latency", "B.json: item 1: -2.0 is a negative latency"),
        ([0, 1, 2], "errors", "B.json: item 2: 2 is not 0 or 1"),
        ({"le": [1]}, "latency", "B.json: expected a JSON array of per-request values"),
        ({"schemaVersion": "modelrollout.io/replay-result/v1"}, "errors", "B.json: not a valid"),
    ],
)
def test_bad_input_exits_2_naming_file_and_item(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    baseline: Any,
    metric: str,
    message: str,
) -> None:
    files = _arrays(tmp_path, baseline, [1.0, 2.0])
    code, data = _judge(tmp_path, *files, "--metric", metric)
    assert code == 2
    assert data == {}
    assert message in capsys.readouterr().err


def test_unreadable_and_malformed_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = _write(tmp_path / "C.json", [1.0])
    code, _ = _judge(
        tmp_path,
        "--baseline",
        str(tmp_path / "missing.json"),
        "--candidate",
        str(c),
        "--metric",
        "latency",
    )
    assert code == 2
    assert "missing.json: cannot read" in capsys.readouterr().err
    broken = tmp_path / "B.json"
    broken.write_text("[1, 2,")
    code, _ = _judge(
        tmp_path, "--baseline", str(broken), "--candidate", str(c), "--metric", "errors"
    )
    assert code == 2
    assert "B.json: not JSON: line 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--tolerance", "-0.1", "'-0.1' must be in [0, 10]"),
        ("--confidence", "1", "'1' must be in [0.5, 1)"),
        ("--confidence", "high", "'high' is not a number"),
        ("--tolerance", "nan", "'nan' must be in [0, 10]"),
    ],
)
def test_bad_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    files = _arrays(tmp_path, [1.0], [1.0])
    with pytest.raises(SystemExit) as exit_info:
        main(["judge", *files, "--metric", "latency", flag, value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_look_without_max_looks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _arrays(tmp_path, [1.0], [1.0])
    code, _ = _judge(tmp_path, *files, "--metric", "latency", "--look", "2")
    assert code == 2
    assert "--look and --max-looks go together" in capsys.readouterr().err
