"""``modelrollout serve-model``: the model server's own command, as a subcommand.

The arguments and what they do live with the server (:mod:`modelrollout.modelserver.command`),
which stands alone and imports nothing of the CLI.
"""

from __future__ import annotations

import argparse
from typing import Any

from modelrollout.modelserver.command import DESCRIPTION, add_arguments, run


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "serve-model",
        help="serve a small real model (KServe v1 protocol) for tests and demos",
        description=DESCRIPTION,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
