#!/usr/bin/env python3
"""A real, local Kubernetes control plane without containers.

Runs etcd, kube-apiserver and kube-controller-manager (and, for a cluster with a node,
kube-scheduler) as plain processes on loopback ports:

* etcd keeps its data in the work directory;
* kube-apiserver authenticates with client certificates and ServiceAccount tokens and
  authorises with Node,RBAC; the certificates are made with the ``openssl`` CLI;
* kube-controller-manager runs every default controller with per-controller ServiceAccount
  credentials, so Deployments get ReplicaSets and Pods, Jobs get Pods, garbage collection
  and namespace deletion work. On its own it has no kubelet: Pods stay Pending.

``hack/cluster.py`` adds a real node (``hack/node.py``): it starts the control plane with
``address=NODE_IP`` and ``scheduler=True``, so the API server binds to and advertises the node
address, the `kubernetes` Service gets endpoints, and kube-scheduler places Pods.

The binaries come from ``bash hack/tools.sh`` (``.dev/bin`` by default). Stdlib only.

    python hack/controlplane.py up --dir .dev/cluster --kubeconfig .dev/kubeconfig
    python hack/controlplane.py status --dir .dev/cluster
    python hack/controlplane.py down --dir .dev/cluster

``up`` is idempotent and leaves the processes running in the background (pidfiles and logs in
the directory); ``down`` stops them. Each ``up`` after a ``down`` starts with an empty etcd.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN_DIR = REPO_ROOT / ".dev" / "bin"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/24"
KUBERNETES_SERVICE_IP = "10.96.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CLUSTER_NAME = "modelrollout-local"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or stopped."""


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int


def _free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Distinct free ports on `host` (held open together so they differ)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _set_parent_death_signal() -> None:
    """In the child: get SIGTERM when the parent dies, so a killed test run leaves nothing."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state follows the parenthesised command name; Z (zombie) and X (dead) are gone.
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _deadline_loop(timeout: float, interval: float = 0.05) -> Iterator[float]:
    """Yields the remaining time until the deadline, pausing `interval` between iterations."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        yield remaining
        time.sleep(min(interval, max(deadline - time.monotonic(), 0)))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class _Pki:
    """Certificates and keys made with the openssl CLI (ECDSA P-256: fast to generate)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ca_crt = directory / "ca.crt"
        self.ca_key = directory / "ca.key"
        self.apiserver_crt = directory / "apiserver.crt"
        self.apiserver_key = directory / "apiserver.key"
        self.admin_crt = directory / "admin.crt"
        self.admin_key = directory / "admin.key"
        self.kcm_crt = directory / "kube-controller-manager.crt"
        self.kcm_key = directory / "kube-controller-manager.key"
        self.scheduler_crt = directory / "kube-scheduler.crt"
        self.scheduler_key = directory / "kube-scheduler.key"
        # The API server's client certificate towards kubelets (logs, exec, port-forward).
        self.kubelet_client_crt = directory / "apiserver-kubelet-client.crt"
        self.kubelet_client_key = directory / "apiserver-kubelet-client.key"
        self.apiserver_sans_file = directory / "apiserver.sans"
        self.sa_key = directory / "sa.key"
        self.sa_pub = directory / "sa.pub"
        # Front proxy (request-header authentication): used by aggregated API servers and
        # read by kube-controller-manager's delegated authentication.
        self.front_proxy_ca_crt = directory / "front-proxy-ca.crt"
        self.front_proxy_ca_key = directory / "front-proxy-ca.key"
        self.front_proxy_client_crt = directory / "front-proxy-client.crt"
        self.front_proxy_client_key = directory / "front-proxy-client.key"

    def _openssl(self, *args: str) -> None:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise ControlPlaneError("openssl is not on PATH (run: bash hack/tools.sh)")
        result = subprocess.run(
            [openssl, *args], cwd=self.dir, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{result.stderr}")

    def _ca(self, name: str) -> None:
        self._openssl(
            "req", "-x509", "-new", "-nodes", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:P-256", "-days", "3650",
            "-keyout", f"{name}.key", "-out", f"{name}.crt",
            "-subj", f"/CN={CLUSTER_NAME}-{name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        )  # fmt: skip

    def leaf(
        self,
        name: str,
        subject: dict[str, str],
        usage: str,
        sans: list[str] | None = None,
        ca: str = "ca",
    ) -> None:
        config = self.dir / f"{name}.cnf"
        dn = "\n".join(f"{key} = {value}" for key, value in subject.items())
        ext = [
            "basicConstraints = critical, CA:FALSE",
            "keyUsage = critical, digitalSignature, keyEncipherment",
            f"extendedKeyUsage = {usage}",
            "subjectKeyIdentifier = hash",
            "authorityKeyIdentifier = keyid",
        ]
        if sans:
            ext.append("subjectAltName = " + ", ".join(sans))
        config.write_text(
            "[req]\ndistinguished_name = dn\nprompt = no\n"
            f"[dn]\n{dn}\n[ext]\n" + "\n".join(ext) + "\n"
        )
        csr = self.dir / f"{name}.csr"
        self._openssl(
            "req", "-new", "-config", config.name, "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", csr.name,
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", csr.name, "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-set_serial", f"0x{secrets.token_hex(16)}", "-days", "3650",
            "-extfile", config.name, "-extensions", "ext", "-out", f"{name}.crt",
        )  # fmt: skip
        csr.unlink()
        config.unlink()

    def ensure(self, address: str = LOOPBACK) -> None:
        """Make every certificate once; the API server's again if its addresses changed."""
        sans = [
            "IP:127.0.0.1",
            "DNS:localhost",
            f"IP:{KUBERNETES_SERVICE_IP}",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
        ]
        if address != LOOPBACK:
            sans.insert(0, f"IP:{address}")
        # The marker names the set of certificates: a directory made by an older version
        # (without the scheduler's and the kubelet client's) is made again.
        if (self.dir / ".complete-v2").exists():
            recorded = (
                self.apiserver_sans_file.read_text() if self.apiserver_sans_file.exists() else ""
            )
            if recorded != ",".join(sans):
                self.leaf("apiserver", {"CN": "kube-apiserver"}, "serverAuth", sans)
                self.apiserver_key.chmod(0o600)
                self.apiserver_sans_file.write_text(",".join(sans))
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self._ca("ca")
        self._ca("front-proxy-ca")
        self.leaf(
            "front-proxy-client", {"CN": "front-proxy-client"}, "clientAuth", ca="front-proxy-ca"
        )
        self.leaf("apiserver", {"CN": "kube-apiserver"}, "serverAuth", sans)
        self.apiserver_sans_file.write_text(",".join(sans))
        self.leaf("admin", {"O": "system:masters", "CN": "admin"}, "clientAuth")
        self.leaf("kube-controller-manager", {"CN": "system:kube-controller-manager"}, "clientAuth")
        self.leaf("kube-scheduler", {"CN": "system:kube-scheduler"}, "clientAuth")
        self.leaf(
            "apiserver-kubelet-client",
            {"O": "system:masters", "CN": "kube-apiserver-kubelet-client"},
            "clientAuth",
        )
        self._openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", self.sa_key.name,
        )  # fmt: skip
        self._openssl("pkey", "-in", self.sa_key.name, "-pubout", "-out", self.sa_pub.name)
        for key in self.dir.glob("*.key"):
            key.chmod(0o600)
        (self.dir / ".complete-v2").write_text("ok\n")


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig_text(server: str, ca: Path, cert: Path, key: Path, user: str) -> str:
    """A self-contained kubeconfig (certificates embedded)."""
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f"- name: {CLUSTER_NAME}\n"
        "  cluster:\n"
        f"    server: {server}\n"
        f"    certificate-authority-data: {_b64(ca)}\n"
        "users:\n"
        f"- name: {user}\n"
        "  user:\n"
        f"    client-certificate-data: {_b64(cert)}\n"
        f"    client-key-data: {_b64(key)}\n"
        "contexts:\n"
        f"- name: {CLUSTER_NAME}\n"
        "  context:\n"
        f"    cluster: {CLUSTER_NAME}\n"
        f"    user: {user}\n"
        f"current-context: {CLUSTER_NAME}\n"
    )


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager in `workdir`, binaries from `bin_dir`.

    `start()` returns once /readyz is OK and the `default` ServiceAccount exists in the
    `default` namespace; `stop()` stops every process. The admin kubeconfig (group
    system:masters) is at `kubeconfig`, the API server's URL is `server`.

    With `daemon=True` the processes outlive this Python process (used by the CLI);
    otherwise they get SIGTERM when it dies.

    `address` is where the API server binds and what it advertises (loopback by default). A
    non-loopback address (a node's) also turns on the default endpoint reconciler, so the
    `kubernetes` Service gets that address as its endpoint. `scheduler=True` adds
    kube-scheduler (useless without a node).
    """

    def __init__(
        self,
        workdir: Path,
        bin_dir: Path = DEFAULT_BIN_DIR,
        *,
        daemon: bool = False,
        address: str = LOOPBACK,
        scheduler: bool = False,
    ):
        self.workdir = Path(workdir).resolve()
        self.bin_dir = Path(bin_dir).absolute()
        self.daemon = daemon
        self.address = address
        self.scheduler = scheduler
        self.pki = _Pki(self.workdir / "pki")
        self.kubeconfig = self.workdir / "kubeconfig"
        self.logs = self.workdir / "logs"
        self.state_file = self.workdir / "state.json"
        self.ports: Ports | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: list[IO[bytes]] = []

    # ------------------------------------------------------------------ properties
    @property
    def server(self) -> str:
        if self.ports is None:
            state = self._read_state()
            if state is None:
                raise ControlPlaneError(f"no control plane in {self.workdir}")
            return str(state["server"])
        return f"https://{self.address}:{self.ports.apiserver}"

    @property
    def components(self) -> tuple[str, ...]:
        """The processes this control plane runs (kube-scheduler only with `scheduler`)."""
        return tuple(name for name in COMPONENTS if self.scheduler or name != "kube-scheduler")

    def _binary(self, name: str) -> Path:
        path = self.bin_dir / name
        if not os.access(path, os.X_OK):
            raise ControlPlaneError(f"{path} is missing or not executable; run: bash hack/tools.sh")
        return path

    # ------------------------------------------------------------------ commands
    def _etcd_cmd(self, ports: Ports) -> list[str]:
        client = f"http://127.0.0.1:{ports.etcd_client}"
        peer = f"http://127.0.0.1:{ports.etcd_peer}"
        return [
            str(self._binary("etcd")),
            "--name=modelrollout",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=modelrollout={peer}",
            "--initial-cluster-state=new",
            # A throwaway cluster: no fsync, small quota, quiet logs.
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ]

    def _apiserver_cmd(self, ports: Ports) -> list[str]:
        pki = self.pki
        # Endpoints may not hold loopback addresses; nothing in a cluster without nodes would
        # use the `kubernetes` Service endpoints anyway. With a node address, the default
        # (lease) reconciler makes it the endpoint, so Pods reach the API server.
        reconciler = ["--endpoint-reconciler-type=none"] if self.address == LOOPBACK else []
        return [
            str(self._binary("kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
            f"--bind-address={self.address}",
            f"--advertise-address={self.address}",
            f"--secure-port={ports.apiserver}",
            f"--cert-dir={self.workdir / 'apiserver'}",
            f"--tls-cert-file={pki.apiserver_crt}",
            f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_crt}",
            "--authorization-mode=Node,RBAC",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--requestheader-client-ca-file={pki.front_proxy_ca_crt}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.front_proxy_client_crt}",
            f"--proxy-client-key-file={pki.front_proxy_client_key}",
            f"--kubelet-client-certificate={pki.kubelet_client_crt}",
            f"--kubelet-client-key={pki.kubelet_client_key}",
            # The node's name does not resolve on the host; its InternalIP is the node address.
            "--kubelet-preferred-address-types=InternalIP,Hostname,InternalDNS,ExternalIP",
            "--allow-privileged=true",
            *reconciler,
            "--profiling=false",
            "--v=1",
        ]

    def _kcm_cmd(self, ports: Ports, kubeconfig: Path) -> list[str]:
        pki = self.pki
        return [
            str(self._binary("kube-controller-manager")),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.controller_manager}",
            f"--cert-dir={self.workdir / 'kube-controller-manager'}",
            # Not the default under /usr/libexec, which it would create on the host.
            f"--flex-volume-plugin-dir={self.workdir / 'kube-controller-manager' / 'flexvolume'}",
            "--controllers=*",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_crt}",
            f"--cluster-signing-cert-file={pki.ca_crt}",
            f"--cluster-signing-key-file={pki.ca_key}",
            f"--cluster-name={CLUSTER_NAME}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--kube-api-qps=100",
            "--kube-api-burst=200",
            "--profiling=false",
            "--v=1",
        ]

    def _scheduler_cmd(self, ports: Ports, kubeconfig: Path) -> list[str]:
        return [
            str(self._binary("kube-scheduler")),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.scheduler}",
            f"--cert-dir={self.workdir / 'kube-scheduler'}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ]

    # ------------------------------------------------------------------ processes
    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("ab")
        self._log_files.append(log)
        log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if self.daemon else _set_parent_death_signal,
        )
        self._procs[name] = proc
        (self.workdir / f"{name}.pid").write_text(f"{proc.pid}\n")
        return proc

    def _check_running(self, name: str) -> None:
        proc = self._procs[name]
        if proc.poll() is not None:
            raise ControlPlaneError(
                f"{name} exited with code {proc.returncode}; last lines of "
                f"{self.logs / (name + '.log')}:\n{_tail(self.logs / (name + '.log'))}"
            )

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_crt))
        ctx.load_cert_chain(str(self.pki.admin_crt), str(self.pki.admin_key))
        return ctx

    def _get(self, url: str, ctx: ssl.SSLContext | None, timeout: float = 2.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=timeout) as response:
                return int(response.status), response.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")
        except (OSError, urllib.error.URLError) as err:
            return 0, str(err)

    def _wait(
        self, what: str, check: Callable[[], tuple[bool, str]], names: list[str], timeout: float
    ) -> None:
        last = ""
        for _ in _deadline_loop(timeout):
            for name in names:
                self._check_running(name)
            ok, last = check()
            if ok:
                return
        raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}: {last}")

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 120.0) -> None:
        """Start etcd, kube-apiserver, kube-controller-manager (and kube-scheduler); wait until
        usable."""
        for name in self.components:
            self._binary(name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki.ensure(self.address)
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(timeout)
                return
            except BaseException as err:
                self.stop()  # also on Ctrl-C: never leave half a control plane running
                # A port taken between choosing and binding it: try again with new ports.
                if (
                    isinstance(err, ControlPlaneError)
                    and attempt < attempts
                    and "address already in use" in str(err)
                ):
                    continue
                raise

    def _start_once(self, timeout: float) -> None:
        shutil.rmtree(self.workdir / "etcd", ignore_errors=True)
        ports = Ports(*_free_ports(5))
        if self.address != LOOPBACK:
            ports = dataclasses.replace(ports, apiserver=_free_ports(1, self.address)[0])
        self.ports = ports
        server = f"https://{self.address}:{ports.apiserver}"
        kcm_kubeconfig = self.workdir / "kube-controller-manager.kubeconfig"
        kcm_kubeconfig.write_text(
            kubeconfig_text(
                server,
                self.pki.ca_crt,
                self.pki.kcm_crt,
                self.pki.kcm_key,
                "system:kube-controller-manager",
            )
        )
        self.kubeconfig.write_text(
            kubeconfig_text(
                server, self.pki.ca_crt, self.pki.admin_crt, self.pki.admin_key, "admin"
            )
        )
        self.kubeconfig.chmod(0o600)
        kcm_kubeconfig.chmod(0o600)
        scheduler_kubeconfig = self.workdir / "kube-scheduler.kubeconfig"
        if self.scheduler:
            scheduler_kubeconfig.write_text(
                kubeconfig_text(
                    server,
                    self.pki.ca_crt,
                    self.pki.scheduler_crt,
                    self.pki.scheduler_key,
                    "system:kube-scheduler",
                )
            )
            scheduler_kubeconfig.chmod(0o600)
        ctx = self._ssl_context()

        # kube-apiserver retries its etcd connection, so both start at once.
        self._spawn("etcd", self._etcd_cmd(ports))
        self._spawn("kube-apiserver", self._apiserver_cmd(ports))
        self._write_state()
        etcd_health = f"http://127.0.0.1:{ports.etcd_client}/health"
        self._wait(
            "etcd /health",
            lambda: self._probe(etcd_health, None, '"health":"true"'),
            ["etcd"],
            timeout,
        )
        self._wait(
            "kube-apiserver /readyz",
            lambda: self._probe(f"{server}/readyz", ctx, "ok"),
            ["etcd", "kube-apiserver"],
            timeout,
        )
        # kube-controller-manager gives up if the API server is not healthy within 10s, so it
        # starts only now.
        self._spawn("kube-controller-manager", self._kcm_cmd(ports, kcm_kubeconfig))
        if self.scheduler:
            self._spawn("kube-scheduler", self._scheduler_cmd(ports, scheduler_kubeconfig))
        self._write_state()
        self._wait(
            "the default ServiceAccount (created by kube-controller-manager)",
            lambda: self._probe(
                f"{server}/api/v1/namespaces/default/serviceaccounts/default", ctx, '"default"'
            ),
            list(self.components),
            timeout,
        )

    def _probe(self, url: str, ctx: ssl.SSLContext | None, expect: str) -> tuple[bool, str]:
        status, body = self._get(url, ctx)
        return status == 200 and expect in body, f"{url} -> {status} {body[:300]}"

    def _write_state(self) -> None:
        assert self.ports is not None
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ports": self.ports.__dict__,
            "pids": {name: proc.pid for name, proc in self._procs.items()},
            "bin_dir": str(self.bin_dir),
            "address": self.address,
            "components": list(self.components),
        }
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return state

    def _recorded_pids(self) -> dict[str, int]:
        """Pids from the pidfiles that still belong to this work directory's processes."""
        pids: dict[str, int] = {}
        for name in COMPONENTS:
            pidfile = self.workdir / f"{name}.pid"
            try:
                pid = int(pidfile.read_text().strip())
            except (FileNotFoundError, ValueError):
                continue
            # Guard against a recycled pid: the command line names our work directory.
            if _pid_alive(pid) and f"{self.workdir}/" in _pid_cmdline(pid):
                pids[name] = pid
        return pids

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every process (SIGTERM, then SIGKILL after `timeout`); leaves none behind."""
        # Scheduler, controller manager and API server first, etcd last.
        for group in (("kube-scheduler", "kube-controller-manager", "kube-apiserver"), ("etcd",)):
            pids = {name: pid for name, pid in self._recorded_pids().items() if name in group}
            for name in group:
                proc = self._procs.get(name)
                if proc is not None and proc.poll() is None:
                    pids[name] = proc.pid
            for pid in pids.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self._wait_gone(pids, timeout)
        for name in COMPONENTS:
            proc = self._procs.pop(name, None)
            if proc is not None:
                proc.wait()  # reaped above; collects the exit status
            (self.workdir / f"{name}.pid").unlink(missing_ok=True)
        for log in self._log_files:
            log.close()
        self._log_files.clear()
        self.state_file.unlink(missing_ok=True)

    def _wait_gone(self, pids: dict[str, int], timeout: float) -> None:
        def gone(name: str, pid: int) -> bool:
            proc = self._procs.get(name)
            if proc is not None and proc.pid == pid:
                return proc.poll() is not None
            return not _pid_alive(pid)

        for _ in _deadline_loop(timeout):
            if all(gone(name, pid) for name, pid in pids.items()):
                return
        for name, pid in pids.items():
            if not gone(name, pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for _ in _deadline_loop(10.0):
            if all(gone(name, pid) for name, pid in pids.items()):
                return
        alive = [f"{name}={pid}" for name, pid in pids.items() if not gone(name, pid)]
        raise ControlPlaneError(f"processes survived SIGKILL: {', '.join(alive)}")

    def status(self) -> dict[str, Any]:
        """Which components run, and whether the API server is ready."""
        pids = self._recorded_pids()
        state = self._read_state() or {}
        components = tuple(state.get("components") or self.components)
        ready = False
        server = state.get("server")
        if server and "kube-apiserver" in pids and self.pki.admin_crt.exists():
            code, _ = self._get(f"{server}/readyz", self._ssl_context())
            ready = code == 200
        return {
            "running": {name: pids.get(name) for name in components},
            "server": server,
            "kubeconfig": state.get("kubeconfig"),
            "ready": ready and all(name in pids for name in components),
        }

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------- CLI
def _copy_kubeconfig(plane: ControlPlane, target: Path | None) -> None:
    if target is None:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(plane.kubeconfig.read_text())
    target.chmod(0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start in the background (no-op if already running)")
    up.add_argument("--dir", type=Path, required=True, help="work directory (state, logs)")
    up.add_argument("--kubeconfig", type=Path, help="also write the admin kubeconfig here")
    up.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR)
    up.add_argument("--timeout", type=float, default=120.0)
    down = sub.add_parser("down", help="stop every process")
    down.add_argument("--dir", type=Path, required=True)
    status = sub.add_parser("status", help="show what runs; exit 1 unless ready")
    status.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)

    bin_dir = getattr(args, "bin_dir", DEFAULT_BIN_DIR)
    plane = ControlPlane(args.dir, bin_dir, daemon=True)
    try:
        if args.command == "up":
            current = plane.status()
            if current["ready"]:
                _copy_kubeconfig(plane, args.kubeconfig)
                print(f"control plane already running at {current['server']}")
                return 0
            plane.stop()  # whatever is left of an earlier run
            started = time.monotonic()
            plane.start(timeout=args.timeout)
            _copy_kubeconfig(plane, args.kubeconfig)
            print(
                f"control plane running at {plane.server} "
                f"(started in {time.monotonic() - started:.1f}s); "
                f"kubeconfig: {args.kubeconfig or plane.kubeconfig}; logs: {plane.logs}"
            )
        elif args.command == "down":
            plane.stop()
            print(f"control plane in {plane.workdir} stopped")
        else:
            current = plane.status()
            for name, pid in current["running"].items():
                print(f"{name:<24} {'running, pid ' + str(pid) if pid else 'stopped'}")
            print(f"{'server':<24} {current['server'] or '-'}")
            print(f"{'ready':<24} {'yes' if current['ready'] else 'no'}")
            return 0 if current["ready"] else 1
    except ControlPlaneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
