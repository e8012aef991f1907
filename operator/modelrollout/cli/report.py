"""``modelrollout report``: a replay result as one self-contained HTML page.

The page itself is built by :mod:`modelrollout.core.replay.report`; this module reads
the result (a result.json, or a log holding a ``MODELROLLOUT_RESULT`` line), says what is
wrong with it when it cannot be read, and writes the page atomically. ``modelrollout
replay --report`` uses the same writer at the end of a run.

Exit status: 0 written, 2 bad input (the message names the file and the field), 3 the
page could not be written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelrollout.core.replay.report import render_report
from modelrollout.core.replay.result import ReplayResult, parse_result_line

EXIT_WRITTEN = 0
EXIT_BAD_INPUT = 2
EXIT_WRITE_ERROR = 3


class BadResult(Exception):
    """The result file cannot be used; the message names the file and the field."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="render a replay result as a self-contained HTML report",
        description=(
            "Render a replay result (result.json, or a log holding a MODELROLLOUT_RESULT "
            "line) as one self-contained HTML file: summary, rate and latency over time, "
            "errors, the comparison with the baseline, quality and the verdict. "
            "Exit status: 0 written, 2 bad input, 3 the report could not be written."
        ),
    )
    parser.add_argument("result", type=Path, metavar="RESULT.json", help="the replay result")
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="PATH",
        help="where to write the report (default: RESULT with the .html suffix)",
    )
    parser.set_defaults(func=run)


def _field_errors(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        location = ".".join(str(p) for p in item["loc"]) or "(top level)"
        parts.append(f"{location}: {item['msg']}")
    more = len(error.errors()) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def read_result(path: Path) -> ReplayResult:
    """The result in ``path``; raises :class:`BadResult` naming the file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BadResult(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise BadResult(f"{path}: not a text file") from None
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        try:
            result = parse_result_line(text)
        except ValidationError as error:
            raise BadResult(f"{path}: MODELROLLOUT_RESULT line: {_field_errors(error)}") from None
        except ValueError as error:
            raise BadResult(f"{path}: MODELROLLOUT_RESULT line: {error}") from None
        if result is None:
            raise BadResult(f"{path}: neither result JSON nor a MODELROLLOUT_RESULT line")
        return result
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError as error:
        raise BadResult(
            f"{path}: not JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    try:
        return ReplayResult.model_validate(document)
    except ValidationError as error:
        raise BadResult(f"{path}: not a replay result: {_field_errors(error)}") from None


def write_report(result: ReplayResult, path: Path) -> None:
    """Write the report for ``result`` to ``path`` atomically (raises :class:`OSError`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_report(result), encoding="utf-8")
    tmp.replace(path)


def run(args: argparse.Namespace) -> int:
    """The ``report`` command."""
    try:
        result = read_result(args.result)
    except BadResult as error:
        print(f"modelrollout report: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    output: Path = args.output if args.output is not None else args.result.with_suffix(".html")
    if output.resolve() == args.result.resolve():
        print(
            f"modelrollout report: --output: {output} is the result itself; choose another path",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        write_report(result, output)
    except OSError as error:
        print(
            f"modelrollout report: --output: cannot write {output}: {error.strerror}",
            file=sys.stderr,
        )
        return EXIT_WRITE_ERROR
    print(f"modelrollout report: wrote {output}", file=sys.stderr)
    return EXIT_WRITTEN
