"""``modelrollout profile`` and ``modelrollout drift``, run in-process on files."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelrollout.cli.main import main
from modelrollout.core.monitoring.profile import CategoricalProfile, NumericProfile, Profile
from support.serving import serving_directory


def _events(path: Path, n: int, *, seed: int, shift: float = 0.0, eu: float = 0.6) -> Path:
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        x = rng.normal(shift, 1, size=2)
        event = {
            "payload": {
                "instances": [[round(float(x[0]), 5), round(float(x[1]), 5)]],
                "region": "eu" if rng.random() < eu else "us",
            },
            "label": int(rng.random() < 0.3),
            "response": {"predictions": [round(float(1 / (1 + np.exp(-x[0]))), 5)]},
        }
        lines.append(json.dumps(event))
    data = ("\n".join(lines) + "\n").encode()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    data = _events(tmp_path / "baseline.jsonl.gz", 6000, seed=1)
    out = tmp_path / "baseline.json"
    assert main(["profile", "--data", str(data), "--output", str(out), "--quiet"]) == 0
    return out


def _drift(
    tmp_path: Path, baseline: Path, data: Path, *flags: str
) -> tuple[int, dict[str, object]]:
    out = tmp_path / "drift.json"
    out.unlink(missing_ok=True)
    code = main(
        ["drift", "--baseline", str(baseline), "--data", str(data), "--output", str(out), *flags]
    )
    return code, json.loads(out.read_text()) if out.exists() else {}


def test_profile_reads_features_predictions_and_labels(baseline: Path) -> None:
    profile = Profile.model_validate_json(baseline.read_text())
    assert profile.rows == 6000
    assert profile.source.prediction_field == "response.predictions[0]"
    assert profile.kinds() == {
        "@label": "categorical",
        "@prediction": "numeric",
        "instances.0.0": "numeric",
        "instances.0.1": "numeric",
        "region": "categorical",
    }
    x = profile.features["instances.0.0"]
    assert isinstance(x, NumericProfile)
    assert (x.count, x.missing) == (6000, 0)
    assert x.mean == pytest.approx(0, abs=0.05)
    assert x.std == pytest.approx(1, abs=0.05)
    label = profile.features["@label"]
    assert isinstance(label, CategoricalProfile)
    assert set(label.frequencies) == {"0", "1"}


def test_same_distribution_exits_0_and_a_shift_exits_1(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = _events(tmp_path / "same.jsonl", 3000, seed=2)
    code, report = _drift(tmp_path, baseline, same)
    assert code == 0
    assert report["drifted"] == []
    out = capsys.readouterr().out
    assert "no drift in 5 features" in out

    shifted = _events(tmp_path / "shifted.jsonl", 3000, seed=3, shift=0.5, eu=0.3)
    code, report = _drift(tmp_path, baseline, shifted)
    assert code == 1
    assert report["drifted"] == ["@prediction", "instances.0.0", "instances.0.1", "region"]
    out = capsys.readouterr().out
    assert "DRIFT" in out
    assert "drift: 4 of 5 features drifted" in out
    assert "instances.0.0: wasserstein" in out


def test_a_small_window_is_insufficient_not_drifted(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = _events(tmp_path / "small.jsonl", 200, seed=4, shift=2.0)
    code, report = _drift(tmp_path, baseline, small)
    assert code == 0
    features = report["features"]
    assert isinstance(features, dict)
    assert all(feature["drifted"] is None for feature in features.values())
    assert "5 with too few values" in capsys.readouterr().out
    code, report = _drift(tmp_path, baseline, small, "--min-samples", "100")
    assert code == 1


def test_thresholds_can_be_turned_off(tmp_path: Path, baseline: Path) -> None:
    shifted = _events(tmp_path / "shifted.jsonl", 3000, seed=3, shift=0.5, eu=0.3)
    off = ["--max-wasserstein", "off", "--max-linf", "off", "--max-jensen-shannon", "off"]
    code, report = _drift(tmp_path, baseline, shifted, *off, "--max-psi", "off", "--quiet")
    assert (code, report["drifted"]) == (0, [])
    code, report = _drift(tmp_path, baseline, shifted, *off, "--max-ks", "0.1", "--quiet")
    assert (code, report["drifted"]) == (1, ["@prediction", "instances.0.0", "instances.0.1"])


def test_shards_merge_into_the_whole_and_a_profile_can_be_the_window(
    tmp_path: Path, baseline: Path
) -> None:
    data = _events(tmp_path / "big.jsonl", 4000, seed=5)
    shards = []
    for index in range(3):
        out = tmp_path / f"shard-{index}.json"
        args = ["profile", "--data", str(data), "--output", str(out), "--quiet"]
        assert main([*args, "--shard-index", str(index), "--shard-count", "3"]) == 0
        shards.append(out)
    whole = tmp_path / "whole.json"
    assert main(["profile", "--data", str(data), "--output", str(whole), "--quiet"]) == 0
    merged = tmp_path / "merged.json"
    assert main(["profile", "--merge", *map(str, shards), "--output", str(merged)]) == 0
    rows = [Profile.model_validate_json(p.read_text()).rows for p in shards]
    assert rows == [1333, 1334, 1333]  # lines numbered i modulo 3
    m = Profile.model_validate_json(merged.read_text())
    w = Profile.model_validate_json(whole.read_text())
    assert (m.rows, m.shards) == (4000, 3)
    assert m.features["region"] == w.features["region"]
    mx, wx = m.features["instances.0.1"], w.features["instances.0.1"]
    assert isinstance(mx, NumericProfile)
    assert isinstance(wx, NumericProfile)
    assert (mx.count, mx.min, mx.max) == (wx.count, wx.min, wx.max)
    assert mx.mean == pytest.approx(wx.mean, abs=1e-12)
    code, report = _drift(tmp_path, baseline, merged)
    assert (code, report["drifted"]) == (0, [])


def test_shard_index_comes_from_the_job_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _events(tmp_path / "e.jsonl", 10, seed=6)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    monkeypatch.setenv("MODELROLLOUT_SHARD_COUNT", "2")
    out = tmp_path / "p.json"
    assert main(["profile", "--data", str(data), "--output", str(out), "--quiet"]) == 0
    assert Profile.model_validate_json(out.read_text()).rows == 5


def test_csv_datasets(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    lines = ["amount,country,zip,prediction,label"]
    for _ in range(3000):
        lines.append(
            f"{rng.lognormal():.4f},{rng.choice(['fr', 'de'])},75001,{rng.random():.3f},true"
        )
    (tmp_path / "base.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "p.json"
    args = ["profile", "--data", str(tmp_path / "base.csv"), "--output", str(out), "--quiet"]
    assert main([*args, "--categorical", "zip"]) == 0
    profile = Profile.model_validate_json(out.read_text())
    assert profile.kinds() == {
        "amount": "numeric",
        "country": "categorical",
        "zip": "categorical",
        "@prediction": "numeric",
        "@label": "categorical",
    }
    label = profile.features["@label"]
    assert isinstance(label, CategoricalProfile)
    assert label.frequencies == {"1": 3000}
    code, report = _drift(tmp_path, out, tmp_path / "base.csv", "--quiet")
    assert (code, report["drifted"]) == (0, [])


def test_profile_to_stdout_with_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _events(tmp_path / "e.jsonl", 50, seed=8)
    assert main(["profile", "--data", str(data)]) == 0
    captured = capsys.readouterr()
    assert Profile.model_validate_json(captured.out).rows == 50
    assert "profiled 50 rows (0 malformed lines skipped)" in captured.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"payload": {"x": 1}}\n{"label": 1}\n', "e.jsonl:2: payload: missing"),
        ("not json\n", "e.jsonl:1: not JSON"),
        ('{"payload": {"x": 1}}\n' * 50 + '{"payload": 1}\n', "e.jsonl:51: payload: a profile"),
        ("", "e.jsonl: no row"),
    ],
)
def test_bad_datasets_exit_2_naming_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    data = tmp_path / "e.jsonl"
    data.write_text(content)
    assert main(["profile", "--data", str(data), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modelrollout profile: --data: ")
    assert message in err


def test_one_bad_line_in_a_hundred_and_one_is_skipped_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "e.jsonl"
    data.write_text('{"payload": {"x": 1}}\n' * 100 + "{broken\n")
    out = tmp_path / "p.json"
    assert main(["profile", "--data", str(data), "--output", str(out), "--quiet"]) == 0
    profile = Profile.model_validate_json(out.read_text())
    assert (profile.rows, profile.malformed) == (100, 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "{missing}", "--data", "{data}"], "--baseline: {missing}: cannot read"),
        (["--baseline", "{data}", "--data", "{data}"], "--baseline: {data}:2: not JSON: Extra"),
        (["--baseline", "{other}", "--data", "{data}"], "--baseline: {other}: schemaVersion"),
        (["--baseline", "{broken}", "--data", "{data}"], "--baseline: {broken}: rows:"),
        (["--baseline", "{baseline}", "--data", "{missing}"], "--data: {missing}: does not exist"),
        (
            ["--baseline", "{baseline}", "--data", "{data}", "--prediction-field", "a..b"],
            "--prediction-field: prediction path 'a..b': empty segment",
        ),
    ],
)
def test_bad_drift_inputs_exit_2(
    tmp_path: Path,
    baseline: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    names = {
        "missing": tmp_path / "missing.json",
        "data": _events(tmp_path / "w.jsonl", 20, seed=9),
        "other": tmp_path / "other.json",
        "broken": tmp_path / "broken.json",
        "baseline": baseline,
    }
    names["other"].write_text('{"schemaVersion": "something/else"}')
    document = json.loads(baseline.read_text())
    document["rows"] = -1
    names["broken"].write_text(json.dumps(document))
    filled = [a.format(**names) for a in args]
    assert main(["drift", *filled]) == 2
    assert message.format(**names) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-psi", "-1"], "--max-psi: '-1' must be positive (or off)"),
        (["--max-psi", "x"], "--max-psi: 'x' is not a number (or off)"),
        (["--min-samples", "0"], "--min-samples: '0' must be at least 1"),
        (["--alpha", "2"], "--alpha: Input should be less than or equal to 1"),
    ],
)
def test_bad_threshold_flags_name_the_flag(
    tmp_path: Path,
    baseline: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    data = _events(tmp_path / "w.jsonl", 20, seed=10)
    try:
        code = main(["drift", "--baseline", str(baseline), "--data", str(data), *flags])
    except SystemExit as error:  # argparse rejects the value itself
        code = int(str(error.code))
    assert code == 2
    assert message in capsys.readouterr().err


def test_merge_refuses_mismatched_profiles(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.json"
    document = json.loads(baseline.read_text())
    document["features"]["region"] = document["features"]["instances.0.0"]
    other.write_text(json.dumps(document))
    assert main(["profile", "--merge", str(baseline), str(other)]) == 2
    assert "--merge: feature region: numeric in one profile" in capsys.readouterr().err


def test_an_unwritable_output_is_a_run_error(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    data = _events(tmp_path / "w.jsonl", 20, seed=11)
    out = tmp_path / "file" / "drift.json"
    args = ["drift", "--baseline", str(baseline), "--data", str(data), "--output", str(out)]
    assert main(args) == 3
    assert "--output: cannot write" in capsys.readouterr().err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The directory ``served`` over HTTP; its base URL."""
    root = tmp_path / "served"
    root.mkdir()
    with serving_directory(root) as url:
        yield url


def _profile_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Profile:
    assert main(["profile", *argv, "--quiet"]) == 0, capsys.readouterr().err
    return Profile.model_validate_json(capsys.readouterr().out)


def test_a_dataset_behind_a_url_is_downloaded_and_named_by_its_url(
    tmp_path: Path, served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "served"
    _events(root / "e.jsonl.gz", 500, seed=3)
    local = _profile_of(["--data", str(root / "e.jsonl.gz")], capsys)
    remote = _profile_of(["--data", f"{served}/e.jsonl.gz?sig=x"], capsys)
    assert (remote.rows, remote.source) == (local.rows, local.source)
    assert remote.features["region"] == local.features["region"]
    (root / "t.csv").write_text("a,label\n1,0\n2,1\n")
    assert _profile_of(["--data", f"{served}/t.csv"], capsys).source.format == "csv"
    (root / "bad.jsonl").write_text("{}\n")
    assert main(["profile", "--data", f"{served}/bad.jsonl"]) == 2
    err = capsys.readouterr().err
    assert f"--data: {served}/bad.jsonl:1: payload: missing" in err
    assert main(["profile", "--data", f"{served}/missing.jsonl"]) == 2
    assert f"--data: GET {served}/missing.jsonl returned HTTP 404" in capsys.readouterr().err


def test_a_directory_of_one_file_is_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A ConfigMap mounted whole: the key is a link into a hidden directory.
    mounted = tmp_path / "mounted"
    hidden = mounted / "..2024_01_01"
    hidden.mkdir(parents=True)
    (hidden / "e.csv").write_text("a,label\n1,0\n2,1\n3,1\n")
    (mounted / "..data").symlink_to(hidden.name)
    (mounted / "e.csv").symlink_to("..data/e.csv")
    profile = _profile_of(["--data", str(mounted)], capsys)
    assert (profile.rows, profile.source.format) == (3, "csv")
    (hidden / "f.csv").write_text("a\n1\n")
    (mounted / "f.csv").symlink_to("..data/f.csv")
    assert main(["profile", "--data", str(mounted)]) == 2
    assert "it must hold exactly one dataset file (it holds: e.csv, f.csv)" in (
        capsys.readouterr().err
    )


def test_the_profile_line_is_one_marked_line(
    baseline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _events(tmp_path / "e.jsonl", 300, seed=5)
    assert main(["profile", "--data", str(data), "--profile-line", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith("MODELROLLOUT_PROFILE {")
    assert Profile.model_validate_json(out.split(" ", 1)[1]).rows == 300
