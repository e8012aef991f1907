"""``modelrollout run``: start the operator.

It watches the namespaces given with ``--namespace`` (repeatable) or all of them with
``--all-namespaces``, serves a liveness endpoint for probes, and logs as JSON or text.
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any, cast

from modelrollout.services.config import CONFIG


def _endpoint(text: str) -> tuple[str, str]:
    key, sep, url = text.partition("=")
    if not sep or "/" not in key or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(
            f"--endpoint {text!r}: expected NAMESPACE/SERVICE=http://host:port"
        )
    return key, url


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("run", help="Run the operator.")
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], help="Watch this namespace (repeatable)."
    )
    scope.add_argument(
        "--all-namespaces",
        "-A",
        action="store_true",
        help="Watch every namespace (needs the ClusterRole).",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=8080,
        help="Port of the /healthz liveness endpoint (0 disables it).",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=8081,
        help="Port of the /metrics endpoint (0 disables it).",
    )
    parser.add_argument("--log-format", choices=["json", "text"], default="text")
    parser.add_argument("--log-level", choices=["debug", "info", "warning"], default="info")
    parser.add_argument(
        "--replay-executor",
        choices=["job", "local"],
        default=os.environ.get("MODELROLLOUT_REPLAY_EXECUTOR", "job"),
        help="job runs each ReplayTest as a Kubernetes Job (the default); local runs the "
        "same replay command as a local process, for development clusters without nodes.",
    )
    parser.add_argument(
        "--replay-image",
        default=os.environ.get("MODELROLLOUT_REPLAY_IMAGE", "modelrollout:latest"),
        help="Image of the replay Job pods (normally the operator's own image).",
    )
    parser.add_argument(
        "--replay-image-pull-policy",
        choices=["Always", "IfNotPresent", "Never"],
        default=os.environ.get("MODELROLLOUT_REPLAY_IMAGE_PULL_POLICY", "IfNotPresent"),
        help="Pull policy of the replay Job pods' image (default IfNotPresent).",
    )
    parser.add_argument(
        "--endpoint",
        action="append",
        type=_endpoint,
        default=[],
        help="With the local executor: reach Service NAMESPACE/SERVICE at this URL "
        "(repeatable), e.g. demo/fraud-candidate=http://127.0.0.1:9001.",
    )
    parser.add_argument(
        "--resync",
        type=float,
        default=60.0,
        help="Seconds between two reconciles of an idle object.",
    )
    parser.add_argument(
        "--no-wait-for-ready",
        dest="wait_for_ready",
        action="store_false",
        help="Do not wait for candidate pods to be ready before replaying (for "
        "development clusters without nodes, together with the local executor).",
    )
    parser.add_argument("--kubeconfig", default=None, help="Kubeconfig outside a cluster.")
    election = parser.add_argument_group("leader election (several replicas, one actor)")
    election.add_argument(
        "--leader-elect",
        action="store_true",
        help="Reconcile only while holding the Lease; other replicas wait to take it over.",
    )
    election.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        help="Namespace of the Lease (default: $POD_NAMESPACE, else default).",
    )
    election.add_argument("--leader-election-id", default="modelrollout", help="Name of the Lease.")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import kopf

    from modelrollout.handlers import metrics, operator  # noqa: F401  (registers handlers)

    CONFIG.namespaces = list(args.namespace)
    CONFIG.all_namespaces = bool(args.all_namespaces)
    CONFIG.replay_executor = args.replay_executor
    CONFIG.replay_image = args.replay_image
    CONFIG.replay_image_pull_policy = args.replay_image_pull_policy
    CONFIG.endpoints = dict(args.endpoint)
    CONFIG.resync_seconds = args.resync
    CONFIG.wait_for_ready = args.wait_for_ready
    CONFIG.kubeconfig = args.kubeconfig
    CONFIG.identity = os.environ.get("POD_NAME") or socket.gethostname()
    CONFIG.leader_elect = args.leader_elect
    CONFIG.lease_namespace = args.leader_election_namespace
    CONFIG.lease_name = args.leader_election_id
    metrics.PORT = args.metrics_port
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    kopf.configure(
        verbose=args.log_level == "debug",
        quiet=args.log_level == "warning",
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL,
    )
    liveness = f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None
    kopf.run(
        # kopf would otherwise name itself after getpass.getuser(), which fails for a uid
        # without a passwd entry (the image runs as 65532).
        # (kopf.run's parameter is typed with a NewType of str that kopf does not export).
        identity=cast(Any, CONFIG.identity),
        standalone=True,
        clusterwide=CONFIG.all_namespaces,
        namespaces=CONFIG.namespaces,
        liveness_endpoint=liveness,
    )
    return 0
