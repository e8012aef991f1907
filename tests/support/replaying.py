"""Running ``modelrollout replay`` in-process, as a user would from the command line."""

from __future__ import annotations

from pathlib import Path

from modelrollout.cli.replay import main
from modelrollout.core.replay.result import ReplayResult


def replay_cli(tmp_path: Path, *args: str) -> tuple[int, ReplayResult | None]:
    """``modelrollout replay --quiet --output tmp_path/result.json ARGS``: the exit status,
    and the result written (None when there is none)."""
    output = tmp_path / "result.json"
    output.unlink(missing_ok=True)
    code = main(["replay", "--quiet", "--output", str(output), *args])
    result = ReplayResult.model_validate_json(output.read_text()) if output.exists() else None
    return code, result
