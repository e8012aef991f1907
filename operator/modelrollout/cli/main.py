"""Entry point of the ``modelrollout`` command (and of ``kubectl modelrollout``).

Each sub-command lives in its own module, which exposes ``register(subparsers)``. A
registered parser sets ``func`` to a callable taking the parsed namespace and returning
the process exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from modelrollout import __version__

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrars() -> list[Registrar]:
    from modelrollout.cli import (
        capture,
        catalog,
        control,
        crds,
        dashboard,
        judge,
        monitor,
        replay,
        report,
        run,
        serve_model,
    )

    modules = (
        run, control, dashboard, replay, report, serve_model, crds, monitor, judge, capture,
        catalog,
    )  # fmt: skip
    return [m.register for m in modules]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelrollout",
        description="Take machine learning models into production safely.",
    )
    parser.add_argument("--version", action="version", version=f"modelrollout {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrars():
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
