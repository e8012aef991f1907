#!/usr/bin/env python3
"""A local Kubernetes cluster with a real node: hack/controlplane.py + hack/node.py.

    python hack/cluster.py up --dir .dev/cluster --kubeconfig .dev/kubeconfig [--image TAR ...]
    python hack/cluster.py status --dir .dev/cluster
    python hack/cluster.py down --dir .dev/cluster

The control plane (etcd, kube-apiserver on the node address, kube-controller-manager,
kube-scheduler) keeps its files in the directory itself, the node (containerd, kubelet,
kube-proxy, CoreDNS, Traefik) in DIR/node. `up` is idempotent and leaves everything running in
the background; `down` removes all of it, including what the node changed on the host. One
node runs per machine: a second `up` with another directory fails and names the running one.

From Python (tests), the processes die with the calling process, and a watchdog process
tears the host state down if that process dies without calling `stop()`:

    cluster = LocalCluster(workdir, bin_dir)
    cluster.start(wait_for_lock=600)    # waits for another session's node to go away
    cluster.kubeconfig, cluster.node_ip, cluster.gateway_url, cluster.start_seconds
    cluster.import_image(Path("image.tar"))
    cluster.stop()

Stdlib only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN_DIR = REPO_ROOT / ".dev" / "bin"


def _load(name: str, filename: str) -> ModuleType:
    """A sibling script as a module, under the name the tests use (one copy per process)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(filename))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cp = _load("modelrollout_hack_controlplane", "controlplane.py")
node = _load("modelrollout_hack_node", "node.py")

ClusterError = (cp.ControlPlaneError, node.NodeError)


class LocalCluster:
    """A control plane and a real node on this machine, in `workdir`.

    `start()` returns once the node is Ready, CoreDNS answers and the Gateway
    `modelrollout-gateway/modelrollout` is Programmed. Attributes: `kubeconfig` (admin),
    `server`, `node_ip`, `gateway_url`, `start_seconds`. `stop()` removes everything.

    With `daemon=True` (the CLI) the processes outlive this Python process; otherwise they get
    SIGTERM when it dies, and a watchdog process undoes the host state.
    """

    def __init__(
        self,
        workdir: Path,
        bin_dir: Path = DEFAULT_BIN_DIR,
        *,
        daemon: bool = False,
        images: list[Path] | None = None,
        gateway_api_dir: Path = node.DEFAULT_GATEWAY_API_DIR,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.bin_dir = Path(bin_dir).absolute()
        self.daemon = daemon
        self.images = [Path(p) for p in images or []]
        self.plane = cp.ControlPlane(
            self.workdir, self.bin_dir, daemon=daemon, address=node.NODE_IP, scheduler=True
        )
        self.node = node.Node(
            self.workdir / "node",
            self.bin_dir,
            daemon=daemon,
            gateway_api_dir=gateway_api_dir,
            cluster_dir=self.workdir,
        )
        self.node_ip: str = node.NODE_IP
        self.gateway_url: str = node.GATEWAY_URL
        self.start_seconds = 0.0
        self.state_file = self.workdir / "cluster.json"
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watchdog_log: IO[bytes] | None = None

    @property
    def kubeconfig(self) -> Path:
        return Path(self.plane.kubeconfig)

    @property
    def server(self) -> str:
        return str(self.plane.server)

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 180.0, wait_for_lock: float = 0.0) -> None:
        """Claim the machine's node (waiting up to `wait_for_lock` seconds for another one to
        go away), start the control plane and the node; on any failure remove everything."""
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.node.claim_host(wait_for_lock)
        try:
            if not self.daemon:
                self._start_watchdog()
            self.node.setup_network()
            self.plane.start(timeout)
            self.node.record_pids(
                {name: pid for name, pid in self.plane.status()["running"].items() if pid}
            )
            self.node.start(
                self.plane.server, self.plane.kubeconfig, self.plane.pki.dir, self.images, timeout
            )
        except BaseException:
            with contextlib.suppress(*ClusterError):
                self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        self.state_file.write_text(
            json.dumps(
                {
                    "kubeconfig": str(self.kubeconfig),
                    "server": self.server,
                    "node_ip": self.node_ip,
                    "gateway_url": self.gateway_url,
                    "start_seconds": round(self.start_seconds, 2),
                },
                indent=2,
            )
            + "\n"
        )

    def _start_watchdog(self) -> None:
        self.node.logs.mkdir(parents=True, exist_ok=True)
        self._watchdog_log = (self.node.logs / "watchdog.log").open("ab")
        self._watchdog = subprocess.Popen(
            [
                sys.executable, str(Path(__file__).resolve()), "_watch",
                "--dir", str(self.workdir), "--bin-dir", str(self.bin_dir),
                "--parent", str(os.getpid()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._watchdog_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def import_image(self, archive: Path) -> None:
        """Import a docker-archive (or OCI) tar into the node's containerd."""
        self.node.import_image(Path(archive))

    def stop(self) -> None:
        """Stop every process and undo the host state of this cluster's node; idempotent."""
        if self._watchdog is not None:
            with contextlib.suppress(ProcessLookupError):
                self._watchdog.send_signal(signal.SIGTERM)
            self._watchdog.wait()
            self._watchdog = None
        try:
            claim = self.node.claim
            with claim.locked():
                record = claim.read()
            if record is not None and record.get("workdir") == str(self.node.workdir):
                node.teardown(record, claim, stop_others=self.plane.stop)
            else:
                # Not the machine's node (or already torn down): only this directory's
                # processes, never the host state of another directory's node.
                pids = list(self.node.pids().values())
                node._kill_and_wait(pids)
                self.plane.stop()
        finally:
            self.node.close_logs()
            if self._watchdog_log is not None:
                self._watchdog_log.close()
                self._watchdog_log = None
            self.state_file.unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        """What runs, and whether the whole cluster is up."""
        plane = self.plane.status()
        pids = self.node.pids()
        running = {**plane["running"], **{n: pids.get(n) for n in reversed(node.NODE_COMPONENTS)}}
        with self.node.claim.locked():
            record = self.node.claim.read()
        owner = record.get("cluster_dir", record.get("workdir")) if record else None
        ready = plane["ready"] and all(running.values()) and owner == str(self.workdir)
        state: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            state = json.loads(self.state_file.read_text())
        return {
            "running": running,
            "server": plane["server"],
            "kubeconfig": plane["kubeconfig"],
            "gateway_url": state.get("gateway_url"),
            "host_claimed_by": owner,
            "ready": ready and bool(state),
        }

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------- CLI
def _watch(workdir: Path, bin_dir: Path, parent: int) -> int:
    """Tear the cluster down once `parent` is gone (a test run killed without cleanup)."""
    start = node._proc_start_time(parent)
    stopping = False

    def on_term(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    while not stopping and node._same_process(parent, start):
        time.sleep(0.5)
    if stopping:
        return 0
    print(f"parent {parent} is gone: tearing down {workdir}", flush=True)
    LocalCluster(workdir, bin_dir, daemon=True).stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start in the background (no-op if already running)")
    up.add_argument("--dir", type=Path, required=True, help="work directory (state, logs)")
    up.add_argument("--kubeconfig", type=Path, help="also write the admin kubeconfig here")
    up.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR)
    up.add_argument("--image", type=Path, action="append", default=[], help="image tar to import")
    up.add_argument("--timeout", type=float, default=180.0)
    up.add_argument(
        "--wait-for-lock", type=float, default=0.0, help="seconds to wait for another node"
    )
    down = sub.add_parser("down", help="stop everything and remove what the node made")
    down.add_argument("--dir", type=Path, required=True)
    status = sub.add_parser("status", help="show what runs; exit 1 unless ready")
    status.add_argument("--dir", type=Path, required=True)
    watch = sub.add_parser("_watch")  # internal: the watchdog of a test session's cluster
    watch.add_argument("--dir", type=Path, required=True)
    watch.add_argument("--bin-dir", type=Path, required=True)
    watch.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)

    if args.command == "_watch":
        return _watch(args.dir, args.bin_dir, args.parent)
    bin_dir = getattr(args, "bin_dir", DEFAULT_BIN_DIR)
    cluster = LocalCluster(args.dir, bin_dir, daemon=True, images=getattr(args, "image", []))
    try:
        if args.command == "up":
            current = cluster.status()
            if current["ready"]:
                for image in args.image:
                    cluster.import_image(image)
                _copy_kubeconfig(cluster, args.kubeconfig)
                print(f"cluster already running at {current['server']}")
                return 0
            cluster.stop()  # whatever is left of an earlier run of this directory
            cluster.start(timeout=args.timeout, wait_for_lock=args.wait_for_lock)
            _copy_kubeconfig(cluster, args.kubeconfig)
            print(
                f"cluster running at {cluster.server} (started in {cluster.start_seconds:.1f}s); "
                f"node {node.NODE_NAME} {cluster.node_ip}; gateway {cluster.gateway_url}; "
                f"kubeconfig: {args.kubeconfig or cluster.kubeconfig}; "
                f"logs: {cluster.plane.logs} {cluster.node.logs}"
            )
        elif args.command == "down":
            started = time.monotonic()
            cluster.stop()
            print(f"cluster in {cluster.workdir} removed in {time.monotonic() - started:.1f}s")
        else:
            current = cluster.status()
            for name, pid in current["running"].items():
                print(f"{name:<24} {'running, pid ' + str(pid) if pid else 'stopped'}")
            print(f"{'server':<24} {current['server'] or '-'}")
            print(f"{'gateway':<24} {current['gateway_url'] or '-'}")
            print(f"{'host claimed by':<24} {current['host_claimed_by'] or '-'}")
            print(f"{'ready':<24} {'yes' if current['ready'] else 'no'}")
            return 0 if current["ready"] else 1
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _copy_kubeconfig(cluster: LocalCluster, target: Path | None) -> None:
    if target is None:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(cluster.kubeconfig.read_text())
    target.chmod(0o600)


if __name__ == "__main__":
    sys.exit(main())
