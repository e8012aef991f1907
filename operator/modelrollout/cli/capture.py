"""``modelrollout capture``: record live traffic as replay datasets, beside the model.

A reverse proxy meant to run as a sidecar in the model's pods: clients call it instead of
the model, it forwards every request and returns the model's answer unchanged, and it
writes each request with its answer, latency, inference id, version and track into
rotated JSON Lines files under ``--dir`` that ``modelrollout replay --events`` reads as
they are. Capture never slows a request down: when the writer falls behind, records are
dropped and counted. SIGTERM stops it in order (in-flight requests answered, queued
records written, the open file closed).

Exit status: 0 stopped by SIGTERM or SIGINT, 2 bad flags, 3 cannot listen or use --dir.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from yarl import URL

from modelrollout.cli import argtypes
from modelrollout.core.api.base import parse_duration
from modelrollout.core.capture import ids
from modelrollout.core.capture.options import CaptureOptions, parse_listen, parse_size
from modelrollout.core.capture.record import RecordContext
from modelrollout.core.capture.rotation import PREFIX_PATTERN
from modelrollout.core.monitoring.live import LiveWindow
from modelrollout.core.workloads import Track
from modelrollout.services.capture import (
    DirectoryError,
    ListenError,
    ProxySettings,
    RunningCapture,
    running_capture,
)
from modelrollout.services.capture.server import (
    DEFAULT_LISTEN,
    DEFAULT_METRICS_LISTEN,
    DEFAULT_UPSTREAM,
)
from modelrollout.services.capture.shadow import ShadowForwarder
from modelrollout.services.monitoring.live import LabelsFollower, SharedWindow

EXIT_STOPPED = 0
EXIT_BAD_INPUT = 2
EXIT_RUN_ERROR = 3

WINDOW_PREDICTION_PATH = "response.payload.predictions[0]"
"""Where a capture record keeps the model's first prediction (a KServe v1 answer)."""
VERSION_ENV = "MODELROLLOUT_VERSION"
TRACK_ENV = "MODELROLLOUT_TRACK"
TRACKS: tuple[Track, ...] = ("stable", "candidate")
OFF = "off"
SWITCH_INTERVAL = 0.0005
EVENT_LOOPS = argtypes.EVENT_LOOPS

DESCRIPTION = """\
Run a reverse proxy in front of a model server that returns every answer unchanged and
records each request, with the answer, latency, inference id, version and track, into
rotated JSON Lines files under --dir. The files are replay datasets as they stand
(modelrollout replay --events FILE). Capture never delays a request: when the writer is
behind, records are dropped and counted (see /metrics on --metrics-listen).

exit status: 0 stopped by SIGTERM/SIGINT, 2 bad flags, 3 cannot listen or use --dir
docs: docs/capture.md"""

_FIELD_FLAGS = {
    "sample": "--sample",
    "seed": "--seed",
    "max_file_bytes": "--max-file-bytes",
    "rotate_interval": "--rotate-interval",
    "max_total_bytes": "--max-total-bytes",
    "queue_records": "--queue-records",
    "queue_bytes": "--queue-bytes",
    "flush_interval": "--flush-interval",
    "id_header": "--id-header",
    "record_headers": "--record-header",
    "max_body_bytes": "--max-body-bytes",
}


class BadInput(Exception):
    """A flag or environment problem; the message names the culprit."""


# -- argument types -----------------------------------------------------------------------


def _checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type that validates the text with ``parse`` and keeps it as text."""

    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return text.strip()

    return check


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


# -- the parser -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = CaptureOptions()
    net = parser.add_argument_group("where")
    net.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        type=_checked(parse_listen),
        metavar="ADDR",
        help="address the proxy listens on: :PORT (every interface) or HOST:PORT "
        "(default %(default)s)",
    )
    net.add_argument(
        "--upstream",
        default=DEFAULT_UPSTREAM,
        metavar="URL",
        help="the model server, usually on localhost in the same pod (default %(default)s)",
    )
    net.add_argument(
        "--metrics-listen",
        default=DEFAULT_METRICS_LISTEN,
        metavar="ADDR",
        help="address of /metrics and /healthz, kept apart from the model's own paths; "
        f"'{OFF}' for none (default %(default)s)",
    )
    net.add_argument(
        "--dir",
        required=True,
        type=Path,
        metavar="DIR",
        help="directory of the capture files (created if missing); nothing is written elsewhere",
    )
    net.add_argument(
        "--prefix",
        default="capture",
        metavar="NAME",
        help="file name prefix, e.g. the pod name, to keep several proxies' files apart "
        "(default %(default)s)",
    )

    tags = parser.add_argument_group("what each record says about the model")
    tags.add_argument(
        "--model-version",
        default=None,
        metavar="V",
        help=f"model version recorded with each request (default ${VERSION_ENV})",
    )
    tags.add_argument(
        "--track",
        default=None,
        choices=TRACKS,
        help=f"stable or candidate (default ${TRACK_ENV})",
    )
    tags.add_argument(
        "--id-header",
        default=defaults.id_header,
        metavar="NAME",
        help="header carrying the inference id: kept from the request when present, "
        "generated otherwise, and returned in the response (default %(default)s)",
    )
    tags.add_argument(
        "--record-header",
        action="append",
        default=[],
        metavar="NAME",
        help="also record this request header (repeatable; none by default: headers "
        "often carry credentials)",
    )

    files = parser.add_argument_group("recording and files (sizes: 1048576, 500k, 64Mi, 1Gi)")
    files.add_argument(
        "--sample",
        type=_fraction,
        default=defaults.sample,
        metavar="F",
        help="fraction of requests recorded, decided by the inference id (default 1)",
    )
    files.add_argument(
        "--seed",
        type=argtypes.non_negative_int,
        default=defaults.seed,
        metavar="N",
        help="sampling seed (default 0)",
    )
    files.add_argument(
        "--max-file-bytes",
        default=defaults.max_file_bytes,
        type=_checked(parse_size),
        metavar="SIZE",
        help="close a file before it passes this size on disk; 0 for no limit "
        "(default %(default)s)",
    )
    files.add_argument(
        "--rotate-interval",
        default=defaults.rotate_interval,
        type=_checked(parse_duration),
        metavar="D",
        help="close a file once open this long; 0 for no limit (default %(default)s)",
    )
    files.add_argument("--gzip", action="store_true", help="write .jsonl.gz files")
    files.add_argument(
        "--max-total-bytes",
        default=defaults.max_total_bytes,
        type=_checked(parse_size),
        metavar="SIZE",
        help="most disk used by the capture files; the oldest are deleted (default %(default)s)",
    )
    files.add_argument(
        "--flush-interval",
        default=defaults.flush_interval,
        type=_checked(parse_duration),
        metavar="D",
        help="flush compressed data this often (default %(default)s)",
    )

    window = parser.add_argument_group(
        "the live window (served at /monitoring/window on the metrics port)"
    )
    window.add_argument(
        "--window-prediction-path",
        default=WINDOW_PREDICTION_PATH,
        metavar="PATH",
        help="where the prediction is in each record (default %(default)s)",
    )
    window.add_argument(
        "--window-keep",
        type=argtypes.positive_seconds,
        default=3600.0,
        metavar="D",
        help="how long the window and predictions waiting for labels are kept (default 1h)",
    )
    labels = window.add_mutually_exclusive_group()
    labels.add_argument(
        "--labels-file",
        type=Path,
        metavar="PATH",
        help='delayed labels, JSON Lines of {"inferenceId", "label"}, read again and again',
    )
    labels.add_argument("--labels-url", metavar="URL", help="the same, from an http(s) URL")
    window.add_argument(
        "--labels-interval",
        type=argtypes.positive_seconds,
        default=10.0,
        metavar="D",
        help="how often the labels are read again (default 10s)",
    )

    serving = parser.add_argument_group("how requests are served")
    serving.add_argument(
        "--no-lean-path",
        dest="lean_path",
        action="store_false",
        help="serve every request with aiohttp's server and client, instead of only those "
        "the lean path hands over (chunked uploads, Upgrade, Expect); slower",
    )
    serving.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default=EVENT_LOOPS[0],
        help="the event loop: Python's own, or uvloop (libuv) where the uvloop package is "
        "installed; the benchmark found no gain in latency from it (default %(default)s)",
    )

    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--queue-records",
        type=argtypes.non_negative_int,  # 0 reaches the options, which name the limit
        default=defaults.queue_records,
        metavar="N",
        help="most records waiting for the writer; more are dropped and counted "
        "(default %(default)s)",
    )
    limits.add_argument(
        "--queue-bytes",
        default=defaults.queue_bytes,
        type=_checked(parse_size),
        metavar="SIZE",
        help="most body bytes waiting for the writer (default %(default)s)",
    )
    limits.add_argument(
        "--max-body-bytes",
        default=defaults.max_body_bytes,
        type=_checked(parse_size),
        metavar="SIZE",
        help="largest request body; larger ones are answered 413 (default %(default)s)",
    )
    limits.add_argument(
        "--upstream-timeout",
        type=argtypes.positive_seconds,
        default=300.0,
        metavar="D",
        help="longest wait for the model's answer before answering 504 (default 5m)",
    )
    limits.add_argument(
        "--shutdown-timeout",
        type=argtypes.positive_seconds,
        default=10.0,
        metavar="D",
        help="on SIGTERM, longest wait for requests in flight, then again for queued "
        "records (default 10s)",
    )


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "capture",
        help="record live requests and answers as replay datasets (a sidecar proxy)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


# -- from flags to settings ------------------------------------------------------------------


def _flag_message(error: ValidationError) -> str:
    messages = []
    for item in error.errors():
        where = [str(part) for part in item["loc"]]
        flag = _FIELD_FLAGS.get(where[0], where[0]) if where else ""
        text = item["msg"].removeprefix("Value error, ")
        for field, name in _FIELD_FLAGS.items():
            text = text.replace(field, name)
        messages.append(f"{flag}: {text}" if flag else text)
    return "; ".join(messages)


def build_options(args: argparse.Namespace) -> CaptureOptions:
    try:
        return CaptureOptions(
            sample=args.sample,
            seed=args.seed,
            max_file_bytes=args.max_file_bytes,
            rotate_interval=args.rotate_interval,
            max_total_bytes=args.max_total_bytes,
            gzip=args.gzip,
            queue_records=args.queue_records,
            queue_bytes=args.queue_bytes,
            flush_interval=args.flush_interval,
            id_header=args.id_header,
            record_headers=args.record_header,
            max_body_bytes=args.max_body_bytes,
        )
    except ValidationError as error:
        raise BadInput(_flag_message(error)) from None


def _context(args: argparse.Namespace) -> RecordContext:
    version = args.model_version
    if version is None:
        version = os.environ.get(VERSION_ENV) or None
    track = args.track
    if track is None:
        track = os.environ.get(TRACK_ENV) or None
        if track is not None and track not in TRACKS:
            raise BadInput(f"${TRACK_ENV}: {track!r} is not one of {', '.join(TRACKS)}")
    return RecordContext(version=version, track=track)


def _upstream(text: str) -> str:
    try:
        url = URL(text)
    except ValueError:
        url = URL()
    if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
        raise BadInput(f"--upstream: {text!r} must be an http:// URL such as {DEFAULT_UPSTREAM}")
    return text


def build_settings(args: argparse.Namespace) -> ProxySettings:
    if re.fullmatch(PREFIX_PATTERN, args.prefix) is None:
        raise BadInput(
            f"--prefix: {args.prefix!r} must be letters, digits, '.', '_' or '-' "
            "(at most 100, starting with a letter or digit)"
        )
    if re.fullmatch(ids.HEADER_PATTERN, args.id_header) is None:
        raise BadInput(f"--id-header: {args.id_header!r} is not a header name")
    metrics_listen: str | None = args.metrics_listen.strip()
    if metrics_listen == OFF:
        metrics_listen = None
    elif metrics_listen is not None:
        try:
            parse_listen(metrics_listen)
        except ValueError as error:
            raise BadInput(f"--metrics-listen: {error}") from None
    if args.labels_url is not None and not args.labels_url.startswith(("http://", "https://")):
        raise BadInput(f"--labels-url: {args.labels_url!r} must be an http:// or https:// URL")
    window = SharedWindow(
        LiveWindow(prediction_path=args.window_prediction_path, keep=args.window_keep)
    )
    follower = None
    if args.labels_file is not None or args.labels_url is not None:
        follower = LabelsFollower(
            window, path=args.labels_file, url=args.labels_url, interval=args.labels_interval
        )
    return ProxySettings(
        directory=args.dir,
        listen=args.listen,
        upstream=_upstream(args.upstream),
        metrics_listen=metrics_listen,
        prefix=args.prefix,
        context=_context(args),
        upstream_timeout=args.upstream_timeout,
        shutdown_timeout=args.shutdown_timeout,
        window=window,
        labels=follower,
        lean=args.lean_path,
        shadow=ShadowForwarder(_upstream(args.upstream), args.window_prediction_path),
    )


# -- running ----------------------------------------------------------------------------------


def _say(text: str) -> None:
    print(f"modelrollout capture: {text}", file=sys.stderr, flush=True)


def _summary(running: RunningCapture) -> str:
    total = running.metrics.total
    return (
        f"{total('modelrollout_capture_requests_total'):.0f} requests; records: "
        f"{total('modelrollout_capture_records_written_total'):.0f} written, "
        f"{total('modelrollout_capture_records_dropped_total'):.0f} dropped, "
        f"{total('modelrollout_capture_records_skipped_total'):.0f} skipped, "
        f"{total('modelrollout_capture_records_sampled_out_total'):.0f} sampled out"
    )


async def _serve(settings: ProxySettings, options: CaptureOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        async with running_capture(settings, options) as running:
            for name in running.recovered:
                _say(f"finished {name}, left open by an earlier run")
            metrics = f"; metrics {running.metrics_url}/metrics" if running.metrics_url else ""
            _say(
                f"{running.url} -> {settings.upstream}, recording to {settings.directory}{metrics}"
            )
            # What start-up made lives as long as the process: out of the collector's sight,
            # a full collection no longer walks it (a pause of milliseconds otherwise).
            gc.collect()
            gc.freeze()
            await stop.wait()
            _say("stopping: finishing requests in flight and queued records")
        _say(f"stopped: {_summary(running)}")
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        return argtypes.event_loop_factory(name)
    except ValueError as error:
        raise BadInput(f"--event-loop: {error}") from None


def run(args: argparse.Namespace) -> int:
    """The ``capture`` command."""
    try:
        settings = build_settings(args)
        options = build_options(args)
    except BadInput as error:
        _say(str(error))
        return EXIT_BAD_INPUT
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # The writer thread encodes records while the event loop serves requests. When both
    # want the interpreter lock, the loop waits at most this long (the default is 5 ms).
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        loop_factory = _loop_factory(args.event_loop)
    except BadInput as error:
        _say(str(error))
        return EXIT_BAD_INPUT
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(_serve(settings, options))
    except DirectoryError as error:
        _say(f"--dir: {error}")
        return EXIT_RUN_ERROR
    except ListenError as error:
        _say(str(error))
        return EXIT_RUN_ERROR
    finally:
        sys.setswitchinterval(previous)
    return EXIT_STOPPED


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``capture`` without the rest of the command line."""
    parser = argparse.ArgumentParser(prog="modelrollout capture", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
