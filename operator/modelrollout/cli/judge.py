"""``modelrollout judge``: compare a candidate with the baseline, statistically.

Each side is a JSON file, either

* an array of per-request values: latencies in milliseconds for ``--metric latency``, or
  error flags (``0``/``1``, ``false``/``true``) for ``--metric errors``; or
* a replay ``result.json`` (``modelrollout replay --output``): its target's latency
  histogram for latency (0.5 % buckets, so the judge's binned-data tests lose almost
  nothing), and its ``counts.sent`` and ``counts.errors`` for errors.

The two sides may be of different kinds; samples compared with a histogram are counted
into its buckets. The command prints a table (the verdict, then each check with its
p-value, effect, interval and sample sizes) and writes the verdict as JSON with
``--output``.

Exit status: 0 Pass, 1 Fail, 3 Inconclusive, 2 bad input (flags or files; the message
names the file, the item and the field).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelrollout.cli import argtypes
from modelrollout.core import judge
from modelrollout.core.judge.latency import percent
from modelrollout.core.replay.histogram import LogHistogram
from modelrollout.core.replay.result import SCHEMA_VERSION, ReplayResult

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_BAD_INPUT = 2
EXIT_INCONCLUSIVE = 3

EXIT_CODES = {
    judge.Outcome.PASS: EXIT_PASS,
    judge.Outcome.FAIL: EXIT_FAIL,
    judge.Outcome.INCONCLUSIVE: EXIT_INCONCLUSIVE,
}

DESCRIPTION = """\
Judge a candidate against the baseline (stable) over the same window: latency by a shift
test (Mann-Whitney U with Hodges-Lehmann effect), a tail test (p99) and a spread test
(Brown-Forsythe), or errors by an exact conditional test that works at zero counts. Fail
only when the candidate is worse by more than --tolerance with --confidence.

inputs: a JSON array of per-request values (latency in ms; 0/1 error flags), or a replay
result.json (its latency histogram, or its sent and error counts)

examples:
  modelrollout judge --baseline stable.json --candidate canary.json --metric latency
  modelrollout judge --baseline v1/result.json --candidate v2/result.json --metric errors \\
      --tolerance 0.1 --confidence 0.95 --output verdict.json

exit status: 0 Pass, 1 Fail, 3 Inconclusive, 2 bad input
docs: docs/judge.md"""


class BadInput(Exception):
    """A flag or file problem; the message names the culprit."""


@dataclass(frozen=True, slots=True)
class ReplaySide:
    """What the judge reads from a replay result."""

    histogram: LogHistogram
    sent: int
    errors: int


Side = list[float] | ReplaySide


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "judge",
        help="compare a candidate with the baseline: Pass, Fail or Inconclusive",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = judge.JudgeSettings()
    io = parser.add_argument_group("inputs and output")
    io.add_argument("--baseline", metavar="FILE", type=Path, required=True, help="stable's data")
    io.add_argument("--candidate", metavar="FILE", type=Path, required=True, help="the candidate's")
    io.add_argument("--metric", choices=["latency", "errors"], required=True, help="what to judge")
    io.add_argument("--output", metavar="FILE", type=Path, help="write the verdict as JSON here")
    io.add_argument("--quiet", action="store_true", help="no table on stdout")
    strictness = parser.add_argument_group("strictness")
    strictness.add_argument(
        "--tolerance",
        type=argtypes.float_between(0.0, 10.0),
        default=defaults.tolerance,
        metavar="X",
        help="relative regression allowed: 0.05 = the median, p99, spread or error rate may "
        "rise 5%% (default %(default)s)",
    )
    strictness.add_argument(
        "--confidence",
        type=argtypes.float_between(0.5, 1.0, high_open=True),
        default=defaults.confidence,
        metavar="C",
        help="one-sided confidence needed to fail (default %(default)s)",
    )
    strictness.add_argument(
        "--min-samples",
        type=argtypes.int_at_least(2),
        default=defaults.min_samples,
        metavar="N",
        help="requests per side below which the verdict is Inconclusive (default %(default)s)",
    )
    strictness.add_argument(
        "--tail-quantile",
        type=argtypes.float_between(0.5, 1.0, high_open=True),
        default=defaults.tail_quantile,
        metavar="Q",
        help="the quantile of the latency tail check (default %(default)s)",
    )
    looks = parser.add_argument_group(
        "repeated looks",
        "judging the same rollout every interval: look K of N spends the confidence's "
        "error budget over the N looks (O'Brien-Fleming), so repeated looks keep it",
    )
    looks.add_argument("--look", type=argtypes.int_at_least(1), metavar="K", help="this look")
    looks.add_argument(
        "--max-looks", type=argtypes.int_at_least(1), metavar="N", help="looks planned in all"
    )


# -- reading -------------------------------------------------------------------------------


def _read(path: Path, metric: str) -> Side:
    name = path.name
    try:
        text = path.read_text()
    except OSError as error:
        raise BadInput(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"{name}: not JSON: line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    if isinstance(data, list):
        return _values(name, data, metric)
    if isinstance(data, dict) and str(data.get("schemaVersion", "")).startswith(
        SCHEMA_VERSION.rsplit("/", 1)[0]
    ):
        return _replay(name, data)
    raise BadInput(
        f"{name}: expected a JSON array of per-request values or a replay result.json "
        f"(schemaVersion {SCHEMA_VERSION})"
    )


def _values(name: str, items: list[Any], metric: str) -> list[float]:
    values: list[float] = []
    for index, item in enumerate(items):
        if metric == "errors":
            if item is True or item is False:
                values.append(float(item))
                continue
            if not isinstance(item, int | float) or item not in (0, 1):
                raise BadInput(f"{name}: item {index}: {json.dumps(item)} is not 0 or 1")
            values.append(float(item))
            continue
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise BadInput(f"{name}: item {index}: not a number ({json.dumps(item)})")
        value = float(item)
        if not math.isfinite(value):
            raise BadInput(f"{name}: item {index}: {item} is not a finite number")
        if value < 0:
            raise BadInput(f"{name}: item {index}: {item} is a negative latency")
        values.append(value)
    return values


def _replay(name: str, data: dict[str, Any]) -> ReplaySide:
    try:
        result = ReplayResult.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "result"
        raise BadInput(f"{name}: not a valid replay result: {where}: {first['msg']}") from None
    target = result.state.target
    try:
        histogram = LogHistogram.from_state(target.latency)
    except ValueError as error:
        raise BadInput(f"{name}: state.target.latency: {error}") from None
    return ReplaySide(histogram, result.counts.sent, result.counts.errors)


def replay_histograms(
    baseline: LogHistogram, candidate: LogHistogram, names: tuple[str, str]
) -> tuple[judge.LatencyHistogram, judge.LatencyHistogram]:
    """Two replay histograms on the same ``le`` bounds: the zero bucket, then every log
    bucket from the lowest to the highest either side filled, then ``+Inf``."""
    if not (
        math.isclose(baseline.alpha, candidate.alpha)
        and math.isclose(baseline.min_value, candidate.min_value)
    ):
        raise BadInput(
            f"{names[1]}: state.target.latency: its accuracy ({candidate.alpha}) differs from "
            f"{names[0]}'s ({baseline.alpha}); results of different replay versions"
        )
    indexes = [i for i in (*baseline.counts, *candidate.counts)]
    first, last = (min(indexes), max(indexes)) if indexes else (0, 0)
    gamma = (1 + baseline.alpha) / (1 - baseline.alpha)
    bounds = [gamma ** (first - 1)] + [gamma**i for i in range(first, last + 1)]
    zero_bound = baseline.min_value
    if zero_bound < bounds[0]:
        bounds.insert(0, zero_bound)
    bounds.append(math.inf)

    def counts(histogram: LogHistogram) -> list[float]:
        per_bucket = [0.0] * len(bounds)
        offset = len(bounds) - 1 - (last - first + 1)  # the zero bucket and the one below
        per_bucket[0] += histogram.zero_count
        for index, count in histogram.counts.items():
            per_bucket[offset + index - first] += count
        return per_bucket

    try:
        return (
            judge.LatencyHistogram.of(bounds, counts(baseline), cumulative=False),
            judge.LatencyHistogram.of(bounds, counts(candidate), cumulative=False),
        )
    except judge.JudgeInputError as error:  # pragma: no cover - the replay state is validated
        raise BadInput(str(error)) from None


def _latency_inputs(
    sides: tuple[Side, Side], names: tuple[str, str]
) -> tuple[judge.LatencyInput, judge.LatencyInput]:
    baseline, candidate = sides
    if isinstance(baseline, ReplaySide) and isinstance(candidate, ReplaySide):
        return replay_histograms(baseline.histogram, candidate.histogram, names)
    if isinstance(baseline, ReplaySide) or isinstance(candidate, ReplaySide):
        histogram = baseline if isinstance(baseline, ReplaySide) else candidate
        assert isinstance(histogram, ReplaySide)
        hb, _ = replay_histograms(histogram.histogram, histogram.histogram, names)
        values = candidate if isinstance(baseline, ReplaySide) else baseline
        assert isinstance(values, list)
        sample = judge.LatencySamples.of(values)
        return (hb, sample) if isinstance(baseline, ReplaySide) else (sample, hb)
    assert isinstance(baseline, list)
    assert isinstance(candidate, list)
    return judge.LatencySamples.of(baseline), judge.LatencySamples.of(candidate)


def _error_counts(side: Side) -> judge.ErrorCounts:
    if isinstance(side, ReplaySide):
        return judge.ErrorCounts.of(side.errors, side.sent)
    return judge.ErrorCounts.of(int(sum(side)), len(side))


def _settings(args: argparse.Namespace) -> judge.JudgeSettings:
    confidence = args.confidence
    if (args.look is None) != (args.max_looks is None):
        raise BadInput("--look and --max-looks go together")
    if args.look is not None:
        if args.look > args.max_looks:
            raise BadInput(f"--look: {args.look} is beyond --max-looks {args.max_looks}")
        confidence = judge.look_confidence(confidence, args.look, args.max_looks)
    try:
        return judge.JudgeSettings(
            tolerance=args.tolerance,
            confidence=confidence,
            min_samples=args.min_samples,
            tail_quantile=args.tail_quantile,
        )
    except judge.JudgeInputError as error:  # pragma: no cover - the flags' types check first
        raise BadInput(str(error)) from None


def evaluate(args: argparse.Namespace) -> judge.Verdict:
    settings = _settings(args)
    names = (args.baseline.name, args.candidate.name)
    sides = (_read(args.baseline, args.metric), _read(args.candidate, args.metric))
    if args.metric == "errors":
        return judge.judge_errors(_error_counts(sides[0]), _error_counts(sides[1]), settings)
    return judge.judge_latency(*_latency_inputs(sides, names), settings)


# -- the table -------------------------------------------------------------------------------


def _effect(verdict: judge.Verdict, value: float | None) -> str:
    if value is None:
        return "-"
    if "difference" in verdict.measure:
        return f"{value * 100:+.3g} pts"
    return percent(value)


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if value >= 1e-4 else f"{value:.1e}"


def _row(verdict: judge.Verdict) -> list[str]:
    interval = "-"
    if verdict.interval is not None:
        low, high = verdict.interval
        interval = f"[{_effect(verdict, low)}, {_effect(verdict, high)}]"
    confidence = "-"
    if verdict.confidence is not None:
        spare = 1.0 - verdict.confidence
        confidence = f"1-{spare:.1e}" if spare < 1e-4 else f"{verdict.confidence:.6g}"
    return [
        verdict.name,
        verdict.verdict.value,
        _p(verdict.p_value),
        _effect(verdict, verdict.effect),
        interval,
        confidence,
        str(verdict.n.baseline),
        str(verdict.n.candidate),
        verdict.test,
    ]


def format_table(verdict: judge.Verdict) -> str:
    header = ["check", "verdict", "p-value", "effect", "interval", "confidence", "n base"]
    header += ["n cand", "test"]
    rows = [header, *(_row(check) for check in verdict.checks or (verdict,))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {2, 3, 5, 6, 7}
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    for check in verdict.checks:
        lines.append(f"  {check.name}: {check.message}")
    headline = f"{verdict.name}: {verdict.verdict.value}"
    if verdict.p_value is not None:
        headline += f" (p = {_p(verdict.p_value)})"
    lines.append(headline + (f": {verdict.message}" if not verdict.checks else ""))
    if verdict.checks and verdict.verdict is not judge.Outcome.PASS:
        lines.append(f"  {verdict.message}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The ``judge`` command."""
    try:
        verdict = evaluate(args)
    except (BadInput, judge.JudgeInputError) as error:
        print(f"modelrollout judge: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.output is not None:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(verdict.to_json())
        except OSError as error:
            print(
                f"modelrollout judge: --output: cannot write {args.output}: {error.strerror}",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
    if not args.quiet:
        print(format_table(verdict), flush=True)
    return EXIT_CODES[verdict.verdict]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``judge`` without the rest of the command line."""
    parser = argparse.ArgumentParser(prog="modelrollout judge", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
