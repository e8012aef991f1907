"""``modelrollout profile`` and ``modelrollout drift``: baselines and drift checks.

``profile`` summarises a dataset (replay events as JSON Lines, or CSV) into a small,
mergeable baseline profile: a quantile sketch and exact moments per numeric feature,
capped frequencies per categorical one, plus the predictions and the labels. Large
datasets are profiled in shards (``--shard-index/--shard-count``) and merged with
``profile --merge``.

``profile --job`` runs the shards as the pods of an Indexed Job and merges them here
(:mod:`.profile_job`).

``drift`` compares a window (a dataset, or another profile) with a baseline profile,
prints a table and writes ``drift.json``.

Exit status of ``drift``: 0 no drift, 1 drift, 2 bad input (flags, files, lines; the
message names the file, line and field), 3 run error (output not writable). ``profile``
exits 0, 2 or 3 the same way (3 also when a Job shard fails or the Job times out).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelrollout.cli import argtypes, profile_job
from modelrollout.core.monitoring import sketches
from modelrollout.core.monitoring.builder import DEFAULT_MAX_FEATURES
from modelrollout.core.monitoring.drift import CategoricalStatistics, NumericStatistics
from modelrollout.core.monitoring.profile import (
    CONFIGMAP_BYTES,
    DEFAULT_CATEGORY_LIMIT,
    Profile,
    ProfileMergeError,
    merge_profiles,
)
from modelrollout.core.monitoring.profile_job import profile_line
from modelrollout.core.monitoring.rows import EventRows
from modelrollout.core.monitoring.verdict import (
    Comparison,
    ComparisonError,
    DriftThresholds,
    FeatureComparison,
    compare,
)
from modelrollout.core.replay.jsonpath import compile_path
from modelrollout.services.monitoring.datasets import (
    DataError,
    ReadOptions,
    load_profile,
    profile_dataset,
    read_window,
    write_text,
)

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_BAD_INPUT = 2
EXIT_RUN_ERROR = 3

PROFILE_DESCRIPTION = """\
Profile a dataset into a baseline: for each feature (the payload's fields, nested paths
joined with dots), the predictions (@prediction) and the labels (@label), a quantile
sketch with exact count, missing, mean, std, min and max for numbers, or capped
frequencies for categories. Profiles are versioned JSON, fit a ConfigMap (up to 115
features at the defaults) and merge exactly: profile shards, then --merge them, or let
--job run the shards as the pods of an Indexed Job and merge them.

examples:
  modelrollout profile --data events.jsonl.gz --output baseline.json
  modelrollout profile --data big.jsonl --shard-index 0 --shard-count 4 --output p0.json
  modelrollout profile --merge p0.json p1.json p2.json p3.json --output baseline.json
  kubectl modelrollout profile --job -n ml --data-volume datasets/2024/events.jsonl.gz \\
      --shard-count 8 --to-configmap fraud-baseline --output baseline.json
docs: docs/monitoring.md"""

DRIFT_DESCRIPTION = """\
Compare a window of data (a dataset, or a profile) with a baseline profile, feature by
feature: Kolmogorov-Smirnov, PSI, Jensen-Shannon, Wasserstein, CDF distance and L-inf for
numbers; chi-square, L-inf and Jensen-Shannon for categories. A feature drifts when it
has enough values, a distance exceeds its threshold and the test is significant.

exit status: 0 no drift, 1 drift, 2 bad input, 3 run error
docs: docs/monitoring.md"""


class BadInput(Exception):
    """A flag or file problem; the message names the culprit."""


# -- argument types -----------------------------------------------------------------------


def _limit(text: str) -> float | None:
    """A positive number, or ``off``."""
    if text.strip().lower() in {"off", "none"}:
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (or off)") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive (or off)")
    return value


# -- parsers ------------------------------------------------------------------------------


def _add_reading_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--format",
        choices=["jsonl", "csv"],
        help="dataset format (default: csv for *.csv and *.csv.gz, else jsonl)",
    )
    group.add_argument(
        "--prediction-field",
        metavar="PATH",
        help="the prediction: a path in each event (default response.predictions[0], the "
        "recorded response) or a CSV column (default prediction); '' for none",
    )
    group.add_argument(
        "--label-field",
        metavar="NAME",
        help="the ground truth: an event field, dots reach inside, or a CSV column "
        "(default label); '' for none",
    )


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data",
        metavar="PATH|URL",
        help="dataset: JSONL events or CSV, a file, a directory of one file or an http(s) URL",
    )
    source.add_argument(
        "--merge", metavar="PROFILE", type=Path, nargs="+", help="profiles to merge into one"
    )
    parser.add_argument(
        "--output", metavar="PATH", type=Path, help="write the profile here (default stdout)"
    )
    parser.add_argument(
        "--profile-line",
        action="store_true",
        help="print the profile on stdout as one line, MODELROLLOUT_PROFILE {...}, as the "
        "shards of --job do",
    )
    reading = parser.add_argument_group("reading the dataset")
    _add_reading_arguments(reading)
    reading.add_argument(
        "--categorical",
        metavar="NAME",
        action="append",
        default=[],
        help="treat this feature as categorical even if it holds numbers (repeatable)",
    )
    reading.add_argument(
        "--feature",
        metavar="NAME",
        action="append",
        default=None,
        help="profile only this feature (repeatable; default every field)",
    )
    sizes = parser.add_argument_group("sizes")
    sizes.add_argument(
        "--sketch-k",
        type=argtypes.int_at_least(sketches.MIN_K, sketches.MAX_K),
        default=sketches.DEFAULT_K,
        metavar="K",
        help="KLL sketch parameter: 200 gives 1.33%% rank error in about 7 KB per feature "
        "(default %(default)s)",
    )
    sizes.add_argument(
        "--category-limit",
        type=argtypes.int_at_least(1),
        default=DEFAULT_CATEGORY_LIMIT,
        metavar="N",
        help="values kept per categorical feature, the rest counted as other (default %(default)s)",
    )
    sizes.add_argument(
        "--max-features",
        type=argtypes.int_at_least(1),
        default=DEFAULT_MAX_FEATURES,
        metavar="N",
        help="refuse a dataset with more fields than this (default %(default)s)",
    )
    shard = parser.add_argument_group("sharding")
    shard.add_argument(
        "--shard-index",
        type=argtypes.int_at_least(0),
        default=None,
        metavar="I",
        help="this shard: the lines numbered I modulo N (default $JOB_COMPLETION_INDEX or 0)",
    )
    shard.add_argument(
        "--shard-count",
        type=argtypes.int_at_least(1),
        default=None,
        metavar="N",
        help="number of shards (default $MODELROLLOUT_SHARD_COUNT or 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no summary on stderr")
    profile_job.add_arguments(parser, source)


def add_drift_arguments(parser: argparse.ArgumentParser) -> None:
    io = parser.add_argument_group("inputs and output")
    io.add_argument(
        "--baseline", metavar="PROFILE", type=Path, required=True, help="the baseline profile"
    )
    io.add_argument(
        "--data",
        metavar="PATH",
        type=Path,
        required=True,
        help="the window: JSONL events, CSV, or a profile",
    )
    io.add_argument("--output", metavar="PATH", type=Path, help="write drift.json here")
    reading = parser.add_argument_group(
        "reading the window (default: as the baseline was read, for the same format)"
    )
    _add_reading_arguments(reading)
    limits = parser.add_argument_group("thresholds", "a distance threshold of 'off' disables it")
    defaults = DriftThresholds()
    for name, info in DriftThresholds.model_fields.items():
        default = getattr(defaults, name)
        shown = "off" if default is None else default
        help_text = f"{info.description} (default {shown})".replace("%", "%%")
        if name == "min_samples":
            limits.add_argument(
                argtypes.flag(name),
                type=argtypes.int_at_least(1),
                default=default,
                metavar="N",
                help=help_text,
            )
        else:
            limits.add_argument(
                argtypes.flag(name), type=_limit, default=default, metavar="X", help=help_text
            )
    parser.add_argument("--quiet", action="store_true", help="no table on stdout")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    profile = subparsers.add_parser(
        "profile",
        help="profile a dataset into a mergeable baseline, or merge profiles",
        description=PROFILE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_profile_arguments(profile)
    profile.set_defaults(func=run_profile)
    drift = subparsers.add_parser(
        "drift",
        help="compare a window of data with a baseline profile",
        description=DRIFT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_drift_arguments(drift)
    drift.set_defaults(func=run_drift)


# -- profile --------------------------------------------------------------------------------


def _read_options(args: argparse.Namespace, *, shards: bool) -> ReadOptions:
    if args.prediction_field:
        try:
            compile_path(args.prediction_field)
        except ValueError as error:
            raise BadInput(f"--prediction-field: {error}") from None
    if args.label_field:
        try:
            EventRows(prediction_path=None, label_field=args.label_field)
        except ValueError as error:
            raise BadInput(f"--label-field: {error}") from None
    shard_index, shard_count = 0, 1
    if shards:
        shard_count = (
            args.shard_count
            if args.shard_count is not None
            else argtypes.env_int("MODELROLLOUT_SHARD_COUNT", 1)
        )
        shard_index = (
            args.shard_index
            if args.shard_index is not None
            else argtypes.env_int("JOB_COMPLETION_INDEX", 0)
        )
        if shard_count < 1 or not 0 <= shard_index < shard_count:
            raise BadInput(
                f"--shard-index: {shard_index} is not in [0, {shard_count}) (--shard-count)"
            )
    return ReadOptions(
        format=args.format,
        prediction_field=args.prediction_field,
        label_field=args.label_field,
        categorical=frozenset(getattr(args, "categorical", ())),
        only=frozenset(args.feature) if getattr(args, "feature", None) else None,
        shard_index=shard_index,
        shard_count=shard_count,
    )


def profile_summary(profile: Profile, size: int) -> str:
    numeric = sum(1 for c in profile.features.values() if c.kind == "numeric")
    categorical = len(profile.features) - numeric
    lines = [
        f"profiled {profile.rows} rows ({profile.malformed} malformed lines skipped) from "
        f"{profile.shards} shard(s): {numeric} numeric and {categorical} categorical "
        f"features, {size / 1024:.1f} KiB"
    ]
    if size > CONFIGMAP_BYTES:
        lines.append(
            f"warning: {size / 1024 / 1024:.2f} MiB is more than a ConfigMap holds (1 MiB); "
            "profile fewer features (--feature) or lower --sketch-k / --category-limit"
        )
    return "\n".join(lines)


def _build_profile(args: argparse.Namespace) -> Profile:
    if args.merge is not None:
        profiles = []
        for path in args.merge:
            try:
                profiles.append(load_profile(path))
            except DataError as error:
                raise BadInput(f"--merge: {error}") from None
        try:
            return merge_profiles(profiles)
        except ProfileMergeError as error:
            raise BadInput(f"--merge: {error}") from None
    options = _read_options(args, shards=True)
    try:
        return profile_dataset(
            args.data,
            options,
            k=args.sketch_k,
            category_limit=args.category_limit,
            max_features=args.max_features,
        )
    except DataError as error:
        raise BadInput(f"--data: {error}") from None


def run_profile(args: argparse.Namespace) -> int:
    """The ``profile`` command: here, or with ``--job`` in the pods of an Indexed Job."""
    cluster: profile_job.ClusterRun | None = None
    try:
        if profile_job.wants_job(args):
            cluster = profile_job.run(args)
            profile = cluster.profile
        else:
            profile = _build_profile(args)
    except (BadInput, profile_job.BadFlags) as error:
        return _failed("profile", str(error), EXIT_BAD_INPUT)
    except profile_job.RunError as error:
        return _failed("profile", str(error), EXIT_RUN_ERROR)
    text = profile.to_json()
    if args.output is not None:
        try:
            write_text(args.output, text)
        except OSError as error:
            message = f"--output: cannot write {args.output}: {error.strerror}"
            return _failed("profile", message, EXIT_RUN_ERROR)
    if cluster is not None:
        problem = cluster.write(text)
        if problem is not None:
            return _failed("profile", problem, EXIT_RUN_ERROR)
    if args.profile_line:
        sys.stdout.write(profile_line(profile))
    elif args.output is None and (cluster is None or cluster.target is None):
        sys.stdout.write(text)
    if not args.quiet:
        print(profile_summary(profile, len(text.encode())), file=sys.stderr)
        if cluster is not None:
            print(cluster.note(args.shard_count), file=sys.stderr)
    return EXIT_OK


def _failed(command: str, message: str, code: int) -> int:
    print(f"modelrollout {command}: {message}", file=sys.stderr)
    return code


# -- drift ------------------------------------------------------------------------------------


def _thresholds(args: argparse.Namespace) -> DriftThresholds:
    values = {name: getattr(args, name) for name in DriftThresholds.model_fields}
    try:
        return DriftThresholds.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        flag = argtypes.flag(str(first["loc"][0])) if first["loc"] else "thresholds"
        raise BadInput(f"{flag}: {first['msg']}") from None


def _compare(args: argparse.Namespace) -> Comparison:
    thresholds = _thresholds(args)
    options = _read_options(args, shards=False)
    try:
        baseline = load_profile(args.baseline)
    except DataError as error:
        raise BadInput(f"--baseline: {error}") from None
    try:
        window = read_window(args.data, baseline, options)
    except DataError as error:
        raise BadInput(f"--data: {error}") from None
    try:
        return compare(baseline, window, thresholds)
    except ComparisonError as error:
        raise BadInput(f"--data: {error}") from None


def _g(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.3e}"


def _row(feature: FeatureComparison) -> list[str]:
    s = feature.statistics
    cells = [feature.name, feature.kind[:3], str(feature.baseline_count), str(feature.window_count)]
    if isinstance(s, NumericStatistics):
        cells += [
            f"ks {_g(s.ks.statistic)}",
            _g(s.ks.p_value),
            _g(s.wasserstein),
            _g(s.linf),
            _g(s.jensen_shannon),
            _g(s.psi),
            _g(s.cdf_distance),
        ]
    elif isinstance(s, CategoricalStatistics):
        cells += [
            f"chi2 {_g(s.chi_square.statistic)}",
            _g(s.chi_square.p_value),
            "-",
            _g(s.linf),
            _g(s.jensen_shannon),
            "-",
            "-",
        ]
    else:
        cells += ["-"] * 7
    status = {"drifted": "DRIFT", "stable": "ok", "insufficient": "insufficient"}
    return [*cells, status[feature.status]]


def format_table(comparison: Comparison) -> str:
    """The drift table: one line per feature, then the reasons and a verdict line."""
    header = [
        "feature",
        "kind",
        "baseline",
        "window",
        "test",
        "p-value",
        "wasserstein",
        "linf",
        "js",
        "psi",
        "cdf",
        "verdict",
    ]
    rows = [header, *(_row(f) for f in comparison.features)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(widths[i]) if i in (0, 1, 4, 11) else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    for feature in comparison.features:
        if feature.status != "stable" or feature.reasons:
            lines.append(f"  {feature.name}: {'; '.join(feature.reasons)}")
    if comparison.ignored:
        shown = ", ".join(comparison.ignored[:5])
        more = f" and {len(comparison.ignored) - 5} more" if len(comparison.ignored) > 5 else ""
        lines.append(f"  not in the baseline, not compared: {shown}{more}")
    drifted = comparison.drifted
    insufficient = comparison.insufficient
    verdict = (
        f"drift: {len(drifted)} of {len(comparison.features)} features drifted "
        f"({', '.join(drifted)})"
        if drifted
        else f"no drift in {len(comparison.features)} features"
    )
    if insufficient:
        verdict += f"; {len(insufficient)} with too few values: {', '.join(insufficient)}"
    lines.append(verdict)
    return "\n".join(lines)


def run_drift(args: argparse.Namespace) -> int:
    """The ``drift`` command."""
    try:
        comparison = _compare(args)
    except BadInput as error:
        print(f"modelrollout drift: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.output is not None:
        try:
            write_text(args.output, comparison.report().to_json())
        except OSError as error:
            print(
                f"modelrollout drift: --output: cannot write {args.output}: {error.strerror}",
                file=sys.stderr,
            )
            return EXIT_RUN_ERROR
    if not args.quiet:
        print(format_table(comparison), flush=True)
    return EXIT_DRIFT if comparison.drifted else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``profile`` or ``drift`` without the rest of the command line."""
    parser = argparse.ArgumentParser(prog="modelrollout")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
