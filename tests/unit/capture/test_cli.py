"""``modelrollout capture`` flags: settings built from them, and errors that name the flag."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from modelrollout.cli import capture
from modelrollout.cli.main import build_parser
from modelrollout.core.capture.record import RecordContext
from support.imports import hide_module


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["capture", "--dir", "/captures", *argv])


def test_defaults_suit_a_sidecar(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(capture.VERSION_ENV, raising=False)
    monkeypatch.delenv(capture.TRACK_ENV, raising=False)
    args = parse()
    settings = capture.build_settings(args)
    options = capture.build_options(args)
    assert settings.directory == Path("/captures")
    assert (settings.listen, settings.upstream) == (":8081", "http://127.0.0.1:8080")
    assert settings.metrics_listen == ":9464"
    assert settings.context == RecordContext()
    assert options == capture.CaptureOptions()


def test_version_and_track_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(capture.VERSION_ENV, "v7")
    monkeypatch.setenv(capture.TRACK_ENV, "candidate")
    assert capture.build_settings(parse()).context == RecordContext("v7", "candidate")
    flags = parse("--model-version", "v8", "--track", "stable")
    assert capture.build_settings(flags).context == RecordContext("v8", "stable")


def test_every_flag(monkeypatch: pytest.MonkeyPatch):
    args = parse(
        "--listen", "0.0.0.0:9000", "--upstream", "http://localhost:7000/base",
        "--metrics-listen", "off", "--prefix", "pod-1", "--sample", "0.25", "--seed", "3",
        "--max-file-bytes", "8Mi", "--rotate-interval", "10m", "--gzip",
        "--max-total-bytes", "100Mi", "--queue-records", "50", "--queue-bytes", "1Mi",
        "--flush-interval", "250ms", "--id-header", "X-Request-Id",
        "--record-header", "X-Tenant", "--record-header", "X-Region",
        "--max-body-bytes", "1Mi", "--upstream-timeout", "30s", "--shutdown-timeout", "20s",
    )  # fmt: skip
    settings = capture.build_settings(args)
    options = capture.build_options(args)
    assert settings.metrics_listen is None
    assert (settings.prefix, settings.upstream_timeout, settings.shutdown_timeout) == (
        "pod-1",
        30.0,
        20.0,
    )
    assert options.sample == 0.25
    assert options.file_bytes_limit == 8 * 1024**2
    assert options.file_age_limit == 600
    assert options.gzip
    assert options.record_headers == ["X-Tenant", "X-Region"]
    assert options.flush_seconds == 0.25


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-file-bytes", "2Gi"], "--max-file-bytes must not exceed --max-total-bytes"),
        (
            ["--max-file-bytes", "0", "--rotate-interval", "0"],
            "--max-file-bytes and --rotate-interval cannot both be 0",
        ),
        (["--queue-records", "0"], "--queue-records: Input should be greater than or equal to 1"),
        (["--record-header", "bad header"], "--record-header: 'bad header' is not a header name"),
        (["--id-header", "bad header"], "--id-header: 'bad header' is not a header name"),
        (["--upstream", "127.0.0.1:8080"], "--upstream: '127.0.0.1:8080' must be an http:// URL"),
        (["--upstream", "http://host:80/x?y=1"], "--upstream: 'http://host:80/x?y=1' must be"),
        (["--metrics-listen", "nowhere"], "--metrics-listen: address 'nowhere' is not valid"),
        (["--prefix", "a/b"], "--prefix: 'a/b' must be letters"),
        (["--queue-bytes", "0"], "--queue-bytes: must be positive"),
    ],
)
def test_bad_flags_are_named(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]):
    assert capture.run(parse(*argv)) == capture.EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith(f"modelrollout capture: {message}")


def test_a_bad_track_in_the_environment_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv(capture.TRACK_ENV, "canary")
    assert capture.run(parse()) == capture.EXIT_BAD_INPUT
    assert "$MODELROLLOUT_TRACK: 'canary'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--listen", "nowhere"],
        ["--sample", "2"],
        ["--max-file-bytes", "lots"],
        ["--rotate-interval", "soon"],
        ["--track", "canary"],
        ["--upstream-timeout", "0"],
    ],
)
def test_argparse_rejects_malformed_values_with_the_flag(
    argv: list[str], capsys: pytest.CaptureFixture[str]
):
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


def test_dir_is_required(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["capture"])
    assert "--dir" in capsys.readouterr().err


def test_an_unusable_directory_is_a_run_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = parse("--listen", "127.0.0.1:0", "--metrics-listen", "off")
    args.dir = blocker / "sub"
    assert capture.run(args) == capture.EXIT_RUN_ERROR
    assert "--dir:" in capsys.readouterr().err


def test_the_event_loop_is_pythons_own_unless_uvloop_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
):
    assert capture._loop_factory("asyncio") is None
    assert capture._loop_factory("uvloop") is not None
    hide_module(monkeypatch, "uvloop")
    with pytest.raises(capture.BadInput, match="uvloop is not installed"):
        capture._loop_factory("uvloop")


def test_the_lean_path_can_be_turned_off(tmp_path: Path):
    args = parse("--dir", str(tmp_path))
    assert capture.build_settings(args).lean
    assert args.event_loop == "asyncio"
    args = parse("--dir", str(tmp_path), "--no-lean-path", "--event-loop", "uvloop")
    assert not capture.build_settings(args).lean
    assert args.event_loop == "uvloop"
