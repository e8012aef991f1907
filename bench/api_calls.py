"""Kubernetes API requests per idle reconcile, against a real control plane.

Run with ``.venv/bin/python bench/api_calls.py [--label NAME]``. It starts the local
one-node cluster (``hack/cluster.py``, through the same fixture code the tests use, so it
waits for the machine's cluster lock like a test session and stops everything it started),
installs the CRDs and runs the two reconcile services in this process, as the operator
runs them, against the cluster's apiserver:

1. a ModelDeployment (``tests/factories.py``'s ``model_deployment("v1")``) is brought to
   Production: its replay runs with the local executor against a model server started
   here, and ``wait_for_ready=False`` lets it advance without pods, as the tests do;
2. then ``--reconciles`` idle reconciles of the ModelDeployment (Production, nothing to
   change) and of its finished ReplayTest are run one after another, each inside an
   :func:`modelrollout.services.apicalls.tally`, which counts the requests it sends by
   verb and resource. The new TCP connections the client's urllib3 pool opens during the
   same reconciles are counted too (a new connection to the apiserver is a TLS handshake).

The operator's watch-fed cache (:mod:`modelrollout.services.cache`) is fed here the way
kopf feeds it in the operator, by watches of the namespace running in threads on their own
client (``tests/support/watchfeed.py``); ``--no-cache`` runs without it, every read and
apply going to the apiserver. Nothing else in the process talks to the apiserver through
the operator's client while the reconciles run, so the counts are exact, not sampled. The
figures are written to ``bench/results/api_calls-<label>.json`` and printed;
docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from factories import events_configmap, model_deployment  # noqa: E402
from modelrollout.core.api import modeldeployment, replaytest  # noqa: E402
from modelrollout.services import apicalls, reconciling, rollouts  # noqa: E402
from modelrollout.services.cache import ObjectCache  # noqa: E402
from modelrollout.services.kube import Kube  # noqa: E402
from modelrollout.services.replay import service as replaytests  # noqa: E402
from modelrollout.services.replay.executors.local import LocalExecutor  # noqa: E402
from support.cluster import Cluster, running_cluster  # noqa: E402
from support.modelservers import model_servers  # noqa: E402
from support.wait import poll_until  # noqa: E402
from support.watchfeed import WatchFeed  # noqa: E402

NAMESPACE = "bench-api-calls"
MD = "md"
PRODUCTION_TIMEOUT = 180.0


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def connections(api: client.ApiClient) -> int:
    """TCP connections the client's urllib3 pools have opened so far."""
    pools = api.rest_client.pool_manager.pools
    # RecentlyUsedContainer refuses iteration; keys() gives a copy.
    return sum(pools[key].num_connections for key in pools.keys())  # noqa: SIM118


@contextmanager
def namespace(cluster: Cluster, name: str) -> Iterator[str]:
    cluster.kubectl("create", "namespace", name)
    poll_until(
        lambda: (
            cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode
            == 0
        ),
        timeout=30,
        message=f"the default ServiceAccount in {name}",
    )
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def apply(cluster: Cluster, ns: str, *objects: dict[str, Any]) -> None:
    for obj in objects:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def to_production(
    kube: Kube, md_service: rollouts.RolloutService, rt_service: replaytests.ReplayTestService
) -> str:
    """Reconcile the ModelDeployment, and the ReplayTest it creates, until Production; the
    name of the (finished) ReplayTest."""

    def step() -> str | None:
        md_service.reconcile(NAMESPACE, MD)
        md = kube.get_custom(modeldeployment.PLURAL, NAMESPACE, MD) or {}
        status = md.get("status") or {}
        replay = status.get("replayTest")
        if replay:
            rt_service.reconcile(NAMESPACE, replay)
        phase = status.get("phase")
        if phase in ("RolledBack", "Failed"):
            raise SystemExit(f"the ModelDeployment ended in {phase}: {status}")
        return str(replay) if phase == "Production" and replay else None

    replay: str = poll_until(
        step, timeout=PRODUCTION_TIMEOUT, interval=0.3, message="the ModelDeployment in Production"
    )
    rt = kube.get_custom(replaytest.PLURAL, NAMESPACE, replay) or {}
    phase = (rt.get("status") or {}).get("phase")
    if phase not in ("Succeeded", "Failed"):
        raise SystemExit(f"the ReplayTest {replay} is not finished: {phase}")
    return replay


def idle_reconciles(
    api: client.ApiClient,
    reconcile: Callable[[str, str], reconciling.Result],
    name: str,
    count: int,
) -> dict[str, Any]:
    """``count`` reconciles of one object in a row: requests and new connections of each."""
    totals: list[int] = []
    opened: list[int] = []
    seconds: list[float] = []
    calls: dict[str, int] = {}
    results: set[str] = set()
    for _ in range(count):
        before = connections(api)
        started = time.perf_counter()
        with apicalls.tally() as counted:
            result = reconcile(NAMESPACE, name)
        seconds.append(time.perf_counter() - started)
        opened.append(connections(api) - before)
        totals.append(counted.total)
        results.add(type(result).__name__)
        for (verb, resource), n in counted.calls.items():
            key = f"{verb} {resource}"
            calls[key] = calls.get(key, 0) + n
    return {
        "reconciles": count,
        "requestsPerReconcile": statistics.mean(totals),
        "requestsMin": min(totals),
        "requestsMax": max(totals),
        "requestsByKind": {k: v / count for k, v in sorted(calls.items())},
        "newConnectionsPerReconcile": statistics.mean(opened),
        "medianMilliseconds": round(statistics.median(seconds) * 1000, 2),
        "results": sorted(results),
    }


def run(workdir: Path, count: int, cached: bool) -> dict[str, Any]:
    with running_cluster(workdir / "cluster") as cluster:
        log(f"cluster up in {cluster.start_seconds:.1f}s")
        cluster.install_crds()
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(cluster.kubeconfig)
        )
        watches: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(cluster.kubeconfig)
        )
        servers_dir = workdir / "servers"
        servers_dir.mkdir()
        cache = ObjectCache(namespaces=[NAMESPACE]) if cached else None
        feed: AbstractContextManager[object] = (
            WatchFeed(watches, cache, NAMESPACE) if cache is not None else nullcontext()
        )
        with (
            namespace(cluster, NAMESPACE),
            feed,
            model_servers(servers_dir, v1=["--model-version", "v1"]) as servers,
        ):
            url = servers["v1"].url
            endpoints = {f"{NAMESPACE}/{MD}-candidate": url, f"{NAMESPACE}/{MD}-stable": url}
            kube = Kube(api, cache=cache)
            executor = LocalExecutor(kube, endpoints)
            try:
                md_service = rollouts.RolloutService(kube, rollouts.Settings(wait_for_ready=False))
                rt_service = replaytests.ReplayTestService(kube, executor)
                apply(cluster, NAMESPACE, events_configmap(), model_deployment("v1"))
                started = time.monotonic()
                replay = to_production(kube, md_service, rt_service)
                log(f"Production in {time.monotonic() - started:.1f}s; replay {replay}")
                figures = {
                    "ModelDeployment": idle_reconciles(api, md_service.reconcile, MD, count),
                    "ReplayTest": idle_reconciles(api, rt_service.reconcile, replay, count),
                }
            finally:
                executor.close()
                api.close()
                watches.close()
    if isinstance(feed, WatchFeed) and feed.errors:
        raise SystemExit(f"a watch failed: {feed.errors[0]}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--label", default="latest", help="names the results file")
    parser.add_argument("--reconciles", type=int, default=20, help="idle reconciles per kind")
    parser.add_argument(
        "--no-cache", action="store_true", help="without the watch-fed cache: every call is sent"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelrollout-bench-calls-") as tmp:
        figures = run(Path(tmp), args.reconciles, cached=not args.no_cache)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    data = {
        "label": args.label,
        "commit": commit,
        "cache": not args.no_cache,
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "idle": figures,
    }
    out = ROOT / "bench" / "results" / f"api_calls-{args.label}.json"
    out.write_text(json.dumps(data, indent=2) + "\n")
    for kind, row in figures.items():
        print(
            f"{kind}: {row['requestsPerReconcile']:g} requests per idle reconcile "
            f"({', '.join(f'{k} {v:g}' for k, v in row['requestsByKind'].items()) or 'none'}); "
            f"{row['newConnectionsPerReconcile']:g} new connections; "
            f"{row['medianMilliseconds']} ms median"
        )
    log(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
