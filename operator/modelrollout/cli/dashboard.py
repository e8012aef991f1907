"""``modelrollout dashboard``: a local web UI over the cluster, as the user.

As a kubectl plugin: ``kubectl modelrollout dashboard`` serves http://127.0.0.1:3200/
until Ctrl-C. It opens no browser; it reads and writes with the kubeconfig identity the
command runs under. See docs/dashboard.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from modelrollout.cli import cluster
from modelrollout.services import dashboard

DEFAULT_PORT = 3200


def _run(args: argparse.Namespace) -> int:
    kube, _ = cluster.connect(args)
    board = dashboard.Dashboard(kube, args.namespace)
    try:
        sock = dashboard.bind(args.address, args.port)
    except (OSError, ValueError) as exc:
        print(f"error: --address/--port: cannot listen on {args.address}:{args.port}: {exc}",
              file=sys.stderr)  # fmt: skip
        return 1
    port = sock.getsockname()[1]
    board.allow(args.address, port)
    host = f"[{args.address}]" if ":" in args.address else args.address
    print(f"modelrollout dashboard on http://{host}:{port}/ ({board.scope}); Ctrl-C stops it",
          flush=True)  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(dashboard.serve(board, sock))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="Serve a local web UI of the rollouts and replay tests (as you, via kubeconfig).",
    )
    cluster.add_arguments(parser, "Show this namespace only (default: all namespaces).")
    parser.add_argument(
        "--address", default="127.0.0.1", help="Address to listen on (default: 127.0.0.1)."
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"Port to listen on (default: {DEFAULT_PORT}; 0 picks a free one).",
    )
    parser.set_defaults(func=_run)
