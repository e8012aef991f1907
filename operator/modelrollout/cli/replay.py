"""``modelrollout replay``: replay recorded production events against a candidate model.

Events an application sent to its model in production (JSON Lines, optionally gzip) are
sent to the candidate endpoint on an open-loop schedule: at a constant ``--rate``, at the
recorded pace scaled by ``--speed``, or following a ``--pattern``. Latency is measured
from each request's intended send time. With ``--baseline`` every event also goes to the
production model and the two are compared. ``--criteria`` and the criteria flags turn the
measurements into a pass/fail verdict.

Exit status: 0 passed (or no criteria), 1 criteria failed, 2 bad input (flags, criteria
file, dataset), 3 run error (dataset download failed, output not writable, interrupted).

``--report`` also writes the result as a self-contained HTML page (see
:mod:`modelrollout.cli.report`).

``modelrollout replay-merge`` merges shard results (result.json files, or logs holding a
``MODELROLLOUT_RESULT`` line) exactly and applies the criteria to the whole.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from modelrollout.cli import argtypes, report
from modelrollout.core.replay.criteria import SuccessCriteria
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.plan import EmptyDatasetError
from modelrollout.core.replay.rates import RateSpec, parse_pattern
from modelrollout.core.replay.result import (
    ReplayResult,
    format_result_line,
    merge_results,
    parse_result_line,
)
from modelrollout.core.replay.run import RUN_ENV, ReplayRun
from modelrollout.core.replay.selection import EventSelection
from modelrollout.services.replay.dataset import DatasetError, DatasetFetchError
from modelrollout.services.replay.runner import REACH_WAIT_SECONDS, Progress, run_replay

EXIT_PASSED = 0
EXIT_CRITERIA_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_RUN_ERROR = 3

NON_TTY_PROGRESS_EVERY = 10.0

DESCRIPTION = """\
Replay recorded production events against a candidate model endpoint at a chosen rate,
measure latency (from each request's intended send time), errors, throughput and, with
labels, prediction quality; with --baseline, compare with the production model on the
same events. Success criteria turn the measurements into a verdict.

patterns:  ramp:FROM:TO  |  steps:RATE@DURATION,...  |  daily:peak=P,trough=T[,start=H]
exit status: 0 passed (or no criteria), 1 criteria failed, 2 bad input, 3 run error
docs: docs/replay.md"""


class BadInput(Exception):
    """A flag, file or dataset problem; the message names the culprit."""


# -- argument types -----------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _duration(text: str) -> str:
    """A positive duration, kept as text."""
    argtypes.positive_seconds(text)
    return text.strip()


def _pattern(text: str) -> str:
    try:
        parse_pattern(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _key_value(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} must be KEY=VALUE")
    return key.strip(), value.strip()


def _header(text: str) -> tuple[str, str]:
    key, colon, value = text.partition(":")
    if not colon or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} must be 'Name: value'")
    return key.strip(), value.strip()


# -- parsers ------------------------------------------------------------------------------


def _add_criteria_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "success criteria", "thresholds; they override the same ones in --criteria"
    )
    group.add_argument(
        "--criteria",
        metavar="FILE.json",
        type=Path,
        help='success criteria as JSON, e.g. {"maxP99Ms": 50, "maxErrorRate": 0.01}',
    )
    for name, info in SuccessCriteria.model_fields.items():
        is_int = info.annotation in (int, int | None)
        group.add_argument(
            argtypes.flag(name),
            dest=f"criterion_{name}",
            metavar="N" if is_int else "X",
            type=argtypes.positive_int if is_int else float,
            help=(info.description or "").replace("%", "%%"),
        )


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    io = parser.add_argument_group("endpoints and data")
    io.add_argument(
        "--run",
        metavar="RUN.json",
        type=Path,
        help=f"the whole run as JSON (what the operator gives each shard in ${RUN_ENV}); "
        "only the output, shard and display flags may be added. Without --run, --events "
        f"and --target, the run is read from ${RUN_ENV}",
    )
    io.add_argument("--events", metavar="PATH|URL", help="JSONL dataset (gzip ok)")
    io.add_argument("--target", metavar="URL", help="candidate model endpoint")
    io.add_argument("--baseline", metavar="URL", help="production model endpoint to compare with")
    io.add_argument("--output", metavar="PATH", type=Path, help="write result.json here")
    io.add_argument(
        "--report",
        metavar="PATH",
        type=Path,
        help="write a self-contained HTML report here at the end (see modelrollout report)",
    )
    io.add_argument(
        "--result-line",
        action="store_true",
        help="print the compact result as the last stdout line, prefixed MODELROLLOUT_RESULT",
    )

    rate = parser.add_argument_group(
        "rate (one of; default --speed 1) and length (one of; default: one pass)"
    )
    mode = rate.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=_positive_float, metavar="N", help="constant requests/s")
    mode.add_argument(
        "--speed", type=_positive_float, metavar="F", help="recorded pace x F (10 = 10x faster)"
    )
    mode.add_argument(
        "--pattern",
        type=_pattern,
        metavar="SPEC",
        help="ramp:10:200 | steps:50@30s,100@30s | daily:peak=200,trough=20[,start=H]",
    )
    length = rate.add_mutually_exclusive_group()
    length.add_argument("--duration", type=_duration, metavar="D", help="run length: 30s, 10m")
    length.add_argument(
        "--count", type=argtypes.positive_int, metavar="N", help="number of requests"
    )

    send = parser.add_argument_group("requests")
    send.add_argument(
        "--concurrency",
        type=argtypes.positive_int,
        default=ReplayOptions().concurrency,
        metavar="C",
        help="most requests in flight per endpoint (default %(default)s)",
    )
    send.add_argument(
        "--timeout",
        type=_duration,
        default=ReplayOptions().timeout,
        metavar="T",
        help="per-request timeout (default %(default)s)",
    )
    send.add_argument(
        "--wait-for-endpoints",
        type=argtypes.non_negative_seconds,
        default=REACH_WAIT_SECONDS,
        metavar="D",
        help="before the clock starts, wait at most this long for the endpoints to accept "
        "a connection (default 30s; 0 does not wait)",
    )
    send.add_argument(
        "--max-lag",
        type=_duration,
        default=ReplayOptions().max_lag,
        metavar="D",
        help="drop a send held this long past its time by the concurrency limit "
        "(default %(default)s)",
    )
    send.add_argument(
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra header on every request (repeatable)",
    )
    send.add_argument(
        "--use-event-path",
        action="store_true",
        help="send to the endpoint origin + each event's recorded path",
    )
    send.add_argument(
        "--client",
        choices=["auto", "lean", "aiohttp", "httpx"],
        default="auto",
        help="HTTP client: lean (HTTP/1.1 on asyncio protocols, the fastest), aiohttp or "
        "httpx; auto is lean when every endpoint is http://, aiohttp otherwise (default "
        "%(default)s)",
    )
    send.add_argument(
        "--event-loop",
        choices=argtypes.EVENT_LOOPS,
        default=argtypes.EVENT_LOOPS[0],
        help="the event loop: Python's own, or uvloop (libuv) where the uvloop package is "
        "installed (default %(default)s)",
    )

    send.add_argument(
        "--capacity-p99-ms",
        type=float,
        metavar="MS",
        help="report the capacity: the highest rate whose p99 stayed within MS "
        "(use with --pattern ramp:FROM:TO)",
    )
    send.add_argument(
        "--capacity-window",
        default=ReplayOptions().capacity_window,
        metavar="DURATION",
        help="windows in which the capacity's p99 is measured (default 5s)",
    )

    quality = parser.add_argument_group("predictions and labels")
    quality.add_argument(
        "--prediction-path",
        metavar="PATH",
        help="prediction in the response: predictions[0], $.predictions.0.score",
    )
    quality.add_argument(
        "--prediction-kind",
        choices=["auto", "score", "class"],
        default="auto",
        help="numbers are scores, strings classes (auto); or force one",
    )
    quality.add_argument(
        "--label-field",
        default="label",
        metavar="NAME",
        help="event field with the ground truth (default label; dots reach inside)",
    )
    quality.add_argument(
        "--threshold", type=float, default=0.5, help="score threshold (default 0.5)"
    )
    quality.add_argument(
        "--positive-label", default="1", metavar="L", help="positive class (default 1)"
    )

    select = parser.add_argument_group("event selection")
    select.add_argument("--since", metavar="TIME", help="events at/after (RFC 3339 or epoch s)")
    select.add_argument("--until", metavar="TIME", help="events before (RFC 3339 or epoch s)")
    select.add_argument(
        "--filter",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="attribute filter, repeatable; all must match",
    )
    select.add_argument("--sample", type=float, metavar="F", help="keep this fraction (0-1]")
    select.add_argument(
        "--seed", type=argtypes.non_negative_int, default=0, help="sampling seed (default 0)"
    )
    select.add_argument(
        "--max-events", type=argtypes.positive_int, metavar="N", help="at most N events"
    )

    shard = parser.add_argument_group("sharding")
    shard.add_argument(
        "--shard-index",
        type=argtypes.non_negative_int,
        default=None,
        metavar="I",
        help="this shard (default $JOB_COMPLETION_INDEX or 0)",
    )
    shard.add_argument(
        "--shard-count",
        type=argtypes.positive_int,
        default=None,
        metavar="N",
        help="number of shards (default $MODELROLLOUT_SHARD_COUNT or 1)",
    )

    _add_criteria_flags(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress and no summary")


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results",
        nargs="+",
        type=Path,
        metavar="RESULT",
        help="result.json files, or logs holding a MODELROLLOUT_RESULT line",
    )
    parser.add_argument("--output", type=Path, metavar="PATH", help="write the merged result")
    parser.add_argument(
        "--report", type=Path, metavar="PATH", help="write the merged result's HTML report"
    )
    parser.add_argument(
        "--result-line", action="store_true", help="print the merged result line last"
    )
    parser.add_argument("--quiet", action="store_true", help="no summary")
    _add_criteria_flags(parser)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    replay = subparsers.add_parser(
        "replay",
        help="replay recorded events against a model endpoint and check success criteria",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_replay_arguments(replay)
    replay.set_defaults(func=run)
    merge = subparsers.add_parser(
        "replay-merge",
        help="merge the results of replay shards",
        description="Merge replay shard results exactly and apply the success criteria.",
    )
    add_merge_arguments(merge)
    merge.set_defaults(func=run_merge)


# -- building the job ---------------------------------------------------------------------


def _load_criteria(args: argparse.Namespace) -> SuccessCriteria | None:
    values: dict[str, Any] = {}
    if args.criteria is not None:
        try:
            document = json.loads(args.criteria.read_text())
        except OSError as error:
            raise BadInput(f"--criteria: cannot read {args.criteria}: {error.strerror}") from None
        except ValueError as error:
            raise BadInput(f"--criteria: {args.criteria} is not JSON: {error}") from None
        if not isinstance(document, dict):
            raise BadInput(f"--criteria: {args.criteria} must hold a JSON object")
        try:
            values = SuccessCriteria.model_validate(document).model_dump(exclude_none=True)
        except ValidationError as error:
            raise BadInput(f"--criteria: {args.criteria}: {_pydantic_message(error)}") from None
    for name in SuccessCriteria.model_fields:
        value = getattr(args, f"criterion_{name}", None)
        if value is not None:
            values[name] = value
    if not values:
        return None
    try:
        return SuccessCriteria.model_validate(values)
    except ValidationError as error:
        raise BadInput(_pydantic_message(error, flags=True)) from None


def _pydantic_message(error: ValidationError, *, flags: bool = False) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"])
        if flags and location:
            location = argtypes.flag(location)
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


RUN_INDEPENDENT = {
    "run",
    "output",
    "report",
    "result_line",
    "shard_index",
    "shard_count",
    "quiet",
    "event_loop",
    "func",
}
"""Flags that are not part of the run itself: the only ones allowed beside --run."""


def _run_flags_given(args: argparse.Namespace) -> list[str]:
    """The flags set to something else than their default that belong to the run."""
    parser = argparse.ArgumentParser()
    add_replay_arguments(parser)
    defaults = vars(parser.parse_args([]))
    given = []
    for dest, default in defaults.items():
        if dest in RUN_INDEPENDENT or getattr(args, dest, default) == default:
            continue
        name = dest.removeprefix("criterion_")
        given.append(argtypes.flag(name))
    return given


def build_run(args: argparse.Namespace) -> ReplayRun:
    """The run the flags describe (or --run, or $MODELROLLOUT_REPLAY_RUN holds), with the
    shard resolved; raises :class:`BadInput` naming the flag or field."""
    if args.run is not None or (args.events is None and args.target is None):
        run = _serialized_run(args)
    else:
        run = _run_from_flags(args)
    shard_count = args.shard_count if args.shard_count is not None else run.shard_count
    shard_index = args.shard_index
    if shard_index is None:
        shard_index = (
            run.shard_index
            if run.shard_index is not None
            else argtypes.env_int("JOB_COMPLETION_INDEX", 0)
        )
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        raise BadInput(f"--shard-index: {shard_index} is not in [0, {shard_count}) (--shard-count)")
    return run.model_copy(update={"shard_index": shard_index, "shard_count": shard_count})


def _serialized_run(args: argparse.Namespace) -> ReplayRun:
    if args.run is not None:
        source = f"--run {args.run}"
        try:
            text = args.run.read_text()
        except OSError as error:
            raise BadInput(f"--run: cannot read {args.run}: {error.strerror}") from None
    else:
        source = f"${RUN_ENV}"
        text = os.environ.get(RUN_ENV, "")
        if not text.strip():
            raise BadInput(f"--events and --target are required (or --run, or ${RUN_ENV})")
    given = _run_flags_given(args)
    if given:
        raise BadInput(f"{', '.join(given)}: not allowed with {source}, which holds the run")
    try:
        return ReplayRun.model_validate_json(text)
    except ValidationError as error:
        raise BadInput(f"{source}: {_pydantic_message(error)}") from None


def _run_from_flags(args: argparse.Namespace) -> ReplayRun:
    for flag, value in (("--events", args.events), ("--target", args.target)):
        if value is None:
            raise BadInput(f"{flag} is required (or --run with the whole run)")
    for flag, url in (("--target", args.target), ("--baseline", args.baseline)):
        if url is not None and not url.startswith(("http://", "https://")):
            raise BadInput(f"{flag}: {url!r} must be an http:// or https:// URL")
    try:
        if args.pattern is not None:
            rate = RateSpec(
                pattern=parse_pattern(args.pattern), duration=args.duration, count=args.count
            )
        elif args.rate is not None:
            rate = RateSpec(rate=args.rate, duration=args.duration, count=args.count)
        else:
            speed = args.speed if args.speed is not None else 1.0
            rate = RateSpec(speed=speed, duration=args.duration, count=args.count)
    except (ValidationError, ValueError) as error:
        message = _pydantic_message(error) if isinstance(error, ValidationError) else str(error)
        raise BadInput(f"rate: {message}") from None
    if args.sample is not None and not 0 < args.sample <= 1:
        raise BadInput(f"--sample: {args.sample} must be in (0, 1]")
    try:
        selection = EventSelection(
            since=args.since,
            until=args.until,
            filters=dict(args.filter),
            sample=args.sample,
            seed=args.seed,
            max_events=args.max_events,
        )
    except ValidationError as error:
        raise BadInput(
            _pydantic_message(error).replace("since:", "--since:").replace("until:", "--until:")
        ) from None
    try:
        options = ReplayOptions(
            concurrency=args.concurrency,
            timeout=args.timeout,
            max_lag=args.max_lag,
            prediction_path=args.prediction_path,
            prediction_kind=args.prediction_kind,
            label_field=args.label_field,
            threshold=args.threshold,
            positive_label=args.positive_label,
            use_event_path=args.use_event_path,
            headers=dict(args.header),
            capacity_p99_ms=args.capacity_p99_ms,
            capacity_window=args.capacity_window,
        )
    except ValidationError as error:
        raise BadInput(_pydantic_message(error, flags=True)) from None
    return ReplayRun(
        events=args.events,
        target=args.target,
        baseline=args.baseline,
        rate=rate,
        selection=selection,
        options=options,
        criteria=_load_criteria(args),
        shard_count=argtypes.env_int("MODELROLLOUT_SHARD_COUNT", 1),
        client=args.client,
    )


# -- display --------------------------------------------------------------------------------


class ProgressDisplay:
    """A one-line bar on a terminal; a line every few seconds otherwise (pod logs)."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self.last_line = 0.0
        self.drawn = False

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        fraction = 0.0
        if progress.planned_seconds > 0:
            fraction = min(progress.elapsed / progress.planned_seconds, 1.0)
        if progress.phase == "done":
            fraction = 1.0
        p99 = "-" if progress.last_second_p99_ms is None else f"{progress.last_second_p99_ms:.1f}"
        stats = (
            f"{progress.elapsed:5.1f}/{progress.planned_seconds:.0f}s  sent {progress.sent}"
            f"  ok {progress.ok}  err {progress.errors}  drop {progress.dropped}"
            f"  inflight {progress.in_flight}  p99 {p99} ms"
        )
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns
            bar_width = max(10, min(30, width - len(stats) - 12))
            filled = int(bar_width * fraction)
            bar = "#" * filled + "-" * (bar_width - filled)
            line = f"[{bar}] {fraction * 100:3.0f}%  {stats}"
            self.stream.write("\r\033[K" + line[: width - 1])
            self.drawn = True
            if progress.phase == "done":
                self.stream.write("\n")
                self.drawn = False
            self.stream.flush()
        else:
            now = time.monotonic()
            if progress.phase == "done" or now - self.last_line >= NON_TTY_PROGRESS_EVERY:
                self.last_line = now
                self.stream.write(f"replay {fraction * 100:3.0f}%  {stats}\n")
                self.stream.flush()


def _f(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def _delta(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "" if value is None else f"{value:+.{digits}f}{suffix}"


def format_summary(result: ReplayResult) -> str:
    """A plain-text summary table of a result."""
    c = result.counts
    lines = [f"replay of {result.settings.events if result.settings else '?'}"]
    if result.client:
        lines.append(f"sent with the {result.client} client on the {result.event_loop} loop")
    rows: list[tuple[str, str, str, str]] = []
    comparison = result.comparison
    b = comparison.baseline if comparison else None
    d = comparison.deltas if comparison else None
    rows.append(("", "target", "baseline" if b else "", "delta" if b else ""))
    rows.append(("endpoint", result.target, b.url if b else "", ""))
    rows.append(("sent", str(c.sent), str(b.counts.sent) if b else "", ""))
    rows.append(("ok", str(c.ok), str(b.counts.ok) if b else "", ""))
    errors = ", ".join(f"{k} {v}" for k, v in result.errors.items()) or "0"
    b_errors = (", ".join(f"{k} {v}" for k, v in b.errors.items()) or "0") if b else ""
    rows.append(("errors", errors, b_errors, ""))
    rows.append(("dropped", str(c.dropped), str(b.counts.dropped) if b else "", ""))
    rows.append(
        (
            "error rate",
            _pct(result.error_rate),
            _pct(b.error_rate) if b else "",
            _delta(d.error_rate * 100 if d and d.error_rate is not None else None, 2, " pt"),
        )
    )
    for name in ("p50", "p90", "p95", "p99", "p999", "max", "mean"):
        mine = getattr(result.latency_ms, name)
        theirs = getattr(b.latency_ms, name) if b else None
        delta = None if mine is None or theirs is None else mine - theirs
        rows.append((f"latency {name} ms", _f(mine), _f(theirs) if b else "", _delta(delta)))
    rows.append(
        (
            "service p99 ms",
            _f(result.service_time_ms.p99),
            _f(b.service_time_ms.p99) if b else "",
            "",
        )
    )
    q = result.quality
    bq = b.quality if b else None
    if q is not None or bq is not None:
        for name in ("accuracy", "precision", "recall", "auc"):
            mine = getattr(q, name) if q else None
            theirs = getattr(bq, name) if bq else None
            delta = None if mine is None or theirs is None else mine - theirs
            rows.append((name, _f(mine, 4), _f(theirs, 4) if b else "", _delta(delta, 4)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    lines.append(
        f"  rate: target {result.rate.target:.2f}/s, achieved {result.rate.achieved:.2f}/s; "
        f"throughput {result.throughput:.2f} ok/s; send lag p99 "
        f"{_f(result.send_lag_ms.p99)} ms"
    )
    lines.append(
        f"  counts: {c.lines} lines, {c.selected} selected, {c.filtered} filtered, "
        f"{c.malformed} malformed; {c.scheduled} scheduled = {c.sent} sent + {c.dropped} dropped"
    )
    if comparison is not None:
        diff = comparison.score_diff
        agreement = _pct(comparison.agreement)
        text = f"  agreement with baseline: {agreement} of {comparison.pairs} pairs"
        if diff is not None:
            text += (
                f"; |score diff| mean {_f(diff.mean_abs, 4)}, p95 {_f(diff.p95_abs, 4)}, "
                f"max {_f(diff.max_abs, 4)}"
            )
        lines.append(text)
    if result.capacity is not None:
        cap = result.capacity
        bound = "" if cap.reached else "at least "
        lines.append(
            f"  capacity (p99 <= {cap.p99_target_ms:g} ms): {bound}{_f(cap.rate)} ok/s; "
            f"{cap.message}"
        )
    for sample in result.malformed_lines[:3]:
        lines.append(f"  malformed line {sample.line}: {sample.reason}")
    for warning in result.warnings:
        lines.append(f"  warning: {warning}")
    verdict = result.verdict
    if not verdict.checks:
        lines.append("verdict: no success criteria set")
    elif verdict.passed:
        lines.append(f"verdict: PASSED ({len(verdict.checks)} criteria met)")
    else:
        lines.append("verdict: FAILED")
        for reason in verdict.reasons:
            lines.append(f"  - {reason}")
    return "\n".join(lines)


def result_json(result: ReplayResult) -> str:
    """result.json text: indented for reading, with the bulky ``state`` kept on one line."""
    document = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    state = document.pop("state")
    text = json.dumps(document, indent=2)
    compact = json.dumps(state, separators=(",", ":"))
    return text[: text.rfind("}")].rstrip() + f',\n  "state": {compact}\n}}\n'


def write_result(result: ReplayResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(result_json(result))
    tmp.replace(path)


def _finish(result: ReplayResult, args: argparse.Namespace, interrupted: bool) -> int:
    if args.output is not None:
        try:
            write_result(result, args.output)
        except OSError as error:
            print(
                f"modelrollout replay: --output: cannot write {args.output}: {error.strerror}",
                file=sys.stderr,
            )
            return EXIT_RUN_ERROR
    report_path: Path | None = getattr(args, "report", None)
    if report_path is not None:
        try:
            report.write_report(result, report_path)
        except OSError as error:
            print(
                f"modelrollout replay: --report: cannot write {report_path}: {error.strerror}",
                file=sys.stderr,
            )
            return EXIT_RUN_ERROR
    if not args.quiet:
        print(format_summary(result), file=sys.stderr, flush=True)
    if args.result_line:
        sys.stdout.write(format_result_line(result) + "\n")
        sys.stdout.flush()
    if interrupted:
        return EXIT_RUN_ERROR
    return EXIT_PASSED if result.verdict.passed else EXIT_CRITERIA_FAILED


# -- commands -------------------------------------------------------------------------------


async def _run_async(
    job: ReplayRun, display: ProgressDisplay, reach_wait: float = REACH_WAIT_SECONDS
) -> tuple[ReplayResult, bool]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        result = await run_replay(job, display, stop=stop, reach_wait=reach_wait)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return result, stop.is_set()


def run(args: argparse.Namespace) -> int:
    """The ``replay`` command."""
    try:
        job = build_run(args)
    except BadInput as error:
        print(f"modelrollout replay: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        loop_factory = argtypes.event_loop_factory(args.event_loop)
    except ValueError as error:
        print(f"modelrollout replay: --event-loop: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    display = ProgressDisplay(sys.stderr, enabled=not args.quiet)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result, interrupted = runner.run(_run_async(job, display, args.wait_for_endpoints))
    except (DatasetError, EmptyDatasetError) as error:
        print(f"modelrollout replay: {_events_message(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DatasetFetchError as error:
        print(f"modelrollout replay: {error}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except OSError as error:
        print(f"modelrollout replay: run failed: {error}", file=sys.stderr)
        return EXIT_RUN_ERROR
    return _finish(result, args, interrupted)


def _events_message(error: Exception) -> str:
    text = str(error)
    return text if text.startswith("--events") else f"--events: {text}"


def _read_result(path: Path) -> ReplayResult:
    try:
        text = path.read_text()
    except OSError as error:
        raise BadInput(f"{path}: cannot read: {error.strerror}") from None
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            return ReplayResult.model_validate_json(stripped)
        result = parse_result_line(text)
    except ValueError as error:
        first = str(error).splitlines()[0]
        raise BadInput(f"{path}: not a replay result: {first}") from None
    if result is None:
        raise BadInput(f"{path}: neither result JSON nor a MODELROLLOUT_RESULT line")
    return result


def run_merge(args: argparse.Namespace) -> int:
    """The ``replay-merge`` command."""
    try:
        results = [_read_result(path) for path in args.results]
        criteria = _load_criteria(args)
        merged = merge_results(results, criteria)
    except BadInput as error:
        print(f"modelrollout replay-merge: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as error:
        print(f"modelrollout replay-merge: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _finish(merged, args, interrupted=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``replay`` or ``replay-merge`` without the rest of the command line."""
    parser = argparse.ArgumentParser(prog="modelrollout")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
