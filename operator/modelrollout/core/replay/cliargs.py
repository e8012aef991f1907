"""The ``modelrollout replay`` command line for given settings.

The operator runs replays as pods (one per shard, in an Indexed Job) or as local
processes, both through the CLI. Building the argument list here, next to the models,
keeps one mapping between the API models and the flags: the CLI parser derives its
criteria flags from the same :func:`criteria_flag`, and a test parses what
:func:`replay_args` produces and checks that the models come back unchanged.
"""

from __future__ import annotations

from modelrollout.core.replay.criteria import SuccessCriteria
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.rates import RateSpec
from modelrollout.core.replay.selection import EventSelection


def criteria_flag(field_name: str) -> str:
    """``max_p99_ms`` → ``--max-p99-ms``."""
    return "--" + field_name.replace("_", "-")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def replay_args(
    *,
    events: str,
    target: str,
    rate: RateSpec,
    baseline: str | None = None,
    selection: EventSelection | None = None,
    options: ReplayOptions | None = None,
    criteria: SuccessCriteria | None = None,
    shard_count: int | None = None,
    output: str | None = None,
    result_line: bool = True,
) -> list[str]:
    """Arguments after the program name, starting with ``replay``.

    ``--shard-index`` is left out on purpose: in an Indexed Job each pod takes its index
    from ``JOB_COMPLETION_INDEX``.
    """
    args = ["replay", "--events", events, "--target", target]
    if baseline is not None:
        args += ["--baseline", baseline]
    if rate.rate is not None:
        args += ["--rate", _num(rate.rate)]
    elif rate.speed is not None:
        args += ["--speed", _num(rate.speed)]
    elif rate.pattern is not None:
        args += ["--pattern", rate.pattern.to_spec()]
    if rate.duration is not None:
        args += ["--duration", rate.duration]
    if rate.count is not None:
        args += ["--count", str(rate.count)]
    if selection is not None:
        if selection.since is not None:
            args += ["--since", selection.since]
        if selection.until is not None:
            args += ["--until", selection.until]
        for key, value in selection.filters.items():
            args += ["--filter", f"{key}={value}"]
        if selection.sample is not None:
            args += ["--sample", _num(selection.sample)]
        if selection.seed:
            args += ["--seed", str(selection.seed)]
        if selection.max_events is not None:
            args += ["--max-events", str(selection.max_events)]
    if options is not None:
        defaults = ReplayOptions()
        if options.concurrency != defaults.concurrency:
            args += ["--concurrency", str(options.concurrency)]
        if options.timeout != defaults.timeout:
            args += ["--timeout", options.timeout]
        if options.max_lag != defaults.max_lag:
            args += ["--max-lag", options.max_lag]
        if options.prediction_path is not None:
            args += ["--prediction-path", options.prediction_path]
        if options.prediction_kind != defaults.prediction_kind:
            args += ["--prediction-kind", options.prediction_kind]
        if options.label_field != defaults.label_field:
            args += ["--label-field", options.label_field]
        if options.threshold != defaults.threshold:
            args += ["--threshold", _num(options.threshold)]
        if options.positive_label != defaults.positive_label:
            args += ["--positive-label", options.positive_label]
        if options.use_event_path:
            args.append("--use-event-path")
        for key, value in options.headers.items():
            args += ["--header", f"{key}: {value}"]
    if criteria is not None:
        for name in SuccessCriteria.model_fields:
            value = getattr(criteria, name)
            if value is not None:
                args += [criteria_flag(name), _num(value)]
    if shard_count is not None and shard_count > 1:
        args += ["--shard-count", str(shard_count)]
    if output is not None:
        args += ["--output", output]
    if result_line:
        args.append("--result-line")
    return args
