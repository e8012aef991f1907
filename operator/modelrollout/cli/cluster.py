"""How the commands that talk to a cluster reach it: kubectl's flags and defaults.

``--kubeconfig`` (default ``$KUBECONFIG``, then ``~/.kube/config``), ``--context`` (default
the current one) and ``--namespace``/``-n`` (default the context's namespace, else
``default``), as kubectl and its plugins read them.
"""

from __future__ import annotations

import argparse

from kubernetes import config as kube_config

from modelrollout.services.kube import Kube


def add_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    namespace_help: str = "Namespace (default: context's).",
) -> None:
    parser.add_argument("--namespace", "-n", default=None, help=namespace_help)
    parser.add_argument("--kubeconfig", default=None, help="Kubeconfig file.")
    parser.add_argument("--context", default=None, help="Kubeconfig context.")


def connect(args: argparse.Namespace) -> tuple[Kube, str]:
    """A client for the chosen context, and the namespace to work in."""
    api = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=args.kubeconfig, context=args.context
    )
    namespace = args.namespace
    if namespace is None:
        contexts, active = kube_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=args.kubeconfig
        )
        if args.context is not None:
            active = next((c for c in contexts if c.get("name") == args.context), active)
        namespace = (active or {}).get("context", {}).get("namespace") or "default"
    return Kube(api), str(namespace)
