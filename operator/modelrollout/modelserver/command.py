"""``modelrollout serve-model`` (and ``python -m modelrollout.modelserver``): the model
server's command line.

The server is a test double with a real model inside (see :mod:`modelrollout.modelserver`):
replay tests, benchmarks and demos point at it. Latency and errors can be injected to
rehearse a bad rollout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from modelrollout.modelserver.app import ServerConfig
from modelrollout.modelserver.model import LogisticModel
from modelrollout.modelserver.server import serve

DESCRIPTION = (
    "Serve a small logistic-regression model over the KServe v1 protocol "
    "(POST /v1/models/NAME:predict), with /healthz, Prometheus /metrics and /stats "
    "(the server's own per-request service times). Latency and errors can be injected."
)


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument("--port-file", type=Path, help="write the bound port to this file")
    parser.add_argument("--model-name", default="model", help="served model name (URL path)")
    parser.add_argument(
        "--model-version", default="v1", help="version label; v1 and v2 have built-in weights"
    )
    parser.add_argument(
        "--weights", type=Path, help='JSON file {"weights": [...], "bias": b} instead'
    )
    parser.add_argument(
        "--latency-ms", type=_non_negative, default=0.0, help="added latency per request"
    )
    parser.add_argument(
        "--latency-jitter-ms",
        type=_non_negative,
        default=0.0,
        help="mean of an exponential extra latency",
    )
    parser.add_argument(
        "--error-rate", type=_fraction, default=0.0, help="fraction answered with HTTP 500"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the injected faults")
    parser.add_argument(
        "--faults-after-requests",
        type=int,
        default=0,
        metavar="N",
        help="answer the first N predictions without the injected latency and errors",
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.weights is not None:
            model = LogisticModel.from_file(args.weights, args.model_version)
        else:
            model = LogisticModel.builtin(args.model_version)
    except (OSError, ValueError) as error:
        print(f"serve-model: --weights: {error}", file=sys.stderr)
        return 2
    config = ServerConfig(
        model_name=args.model_name,
        model=model,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        error_rate=args.error_rate,
        seed=args.seed,
        faults_after_requests=args.faults_after_requests,
    )
    try:
        asyncio.run(serve(config, args.host, args.port, args.port_file))
    except OSError as error:
        print(f"serve-model: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 3
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelrollout serve-model", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
