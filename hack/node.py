#!/usr/bin/env python3
"""A real Kubernetes node on this machine, for the local control plane of hack/controlplane.py.

Runs containerd (CRI, runc, CNI bridge), kubelet, kube-proxy (iptables mode), CoreDNS and
Traefik (the Gateway API implementation) as plain processes on the host, with a fixed network
layout that stays off the machine's uplink:

* the node address 10.254.0.1/32 on a dummy link `mr-node0`; everything binds to it or to
  loopback, nothing to 0.0.0.0;
* Pods in 10.244.0.0/24 on the bridge `mr-cni0`; they reach each other, Services and the node
  address, and nothing beyond the node (the MODELROLLOUT-EGRESS chain rejects the rest);
* Services in 10.96.0.0/24, held as a local route, so a ClusterIP without a rule is refused
  on the host instead of leaving by the default route;
* CoreDNS on 10.254.0.1:53 serves `cluster.local` and forwards nothing;
* Traefik on 10.254.0.1:8000 programs the Gateway `modelrollout-gateway/modelrollout`.

The images (a pause image and a busybox image) are built here from a static C program and
Debian's busybox-static, as docker-archive tars cached under the tools cache, and imported into
containerd at start: nothing is ever pulled.

One node per machine: the node claims /run/modelrollout/node.json (under a flock), which
records the owning work directory, its processes and what the node changed on the host, so
the teardown (`stop()`, or that of a later start that finds the claim stale) can undo it.

hack/cluster.py composes this with the control plane; this file's own CLI only builds the
images (`python hack/node.py images`) and forces a cleanup (`python hack/node.py cleanup`).
Stdlib only.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import importlib.util
import io
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN_DIR = REPO_ROOT / ".dev" / "bin"
# Where containerd would send a registry pull: a loopback port with nothing listening.
NO_PULL_PROXY = "http://127.0.0.1:9"
DEFAULT_GATEWAY_API_DIR = REPO_ROOT / ".dev" / "gateway-api"

NODE_NAME = "modelrollout-node"
NODE_IP = "10.254.0.1"
NODE_LINK = "mr-node0"
POD_CIDR = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
CNI_BRIDGE = "mr-cni0"
SERVICE_CIDR = "10.96.0.0/24"
CLUSTER_DOMAIN = "cluster.local"
KUBELET_PORT = 10250
GATEWAY_PORT = 8000
GATEWAY_CLASS = "traefik"
GATEWAY_CONTROLLER = "traefik.io/gateway-controller"
GATEWAY_NAMESPACE = "modelrollout-gateway"
GATEWAY_NAME = "modelrollout"
GATEWAY_URL = f"http://{NODE_IP}:{GATEWAY_PORT}"
EGRESS_CHAIN = "MODELROLLOUT-EGRESS"
CNI_BIN_DIR = Path("/usr/lib/cni")
CLAIM_DIR = Path("/run/modelrollout")
PAUSE_IMAGE = "modelrollout.local/pause:1"
BUSYBOX_IMAGE = "modelrollout.local/busybox:1"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Stop order (the reverse of the start order).
NODE_COMPONENTS = ("traefik", "coredns", "kube-proxy", "kubelet", "containerd")
# Host sysctls the node sets (the first two) or that kubelet and kube-proxy may change; the
# old values are recorded in the claim and written back at teardown.
SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/bridge/bridge-nf-call-iptables",
    "net/ipv4/conf/all/route_localnet",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Places outside the work directory that containerd, the kubelet or CNI create whatever they
# are told; each is removed at teardown if it did not exist before the node started.
HOST_PATHS = (
    "/var/lib/kubelet",
    "/var/lib/kubelet/pki",
    "/var/log/pods",
    "/var/log/containers",
    "/var/lib/cni",
    "/var/lib/cni/results",
    "/run/containerd",
    "/run/containerd/s",
    "/run/containerd/runc",
    "/run/containerd/fifo",
    "/run/netns",
    "/run/kubernetes",
)
CGROUP_ROOT = Path("/sys/fs/cgroup")
# What the node keeps in its work directory besides logs, certificates and configuration.
RUNTIME_DIRS = ("containerd", "kubelet", "cni", "pod-logs", "volume-plugins", "kubectl-cache")
# Chains of ours, the kubelet's, kube-proxy's and the CNI plugins': removed at teardown.
CHAIN_PREFIXES = ("KUBE-", "CNI-", "MODELROLLOUT-")
MNT_DETACH = 2
IMAGE_FORMAT = "2"  # bump to rebuild the cached image archives

PAUSE_C = r"""
/* The sandbox ("pause") process of every Pod: waits, reaps children, exits on INT/TERM. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) { (void)sig; _exit(0); }
static void on_child(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;) pause();
    return 0;
}
"""


class NodeError(RuntimeError):
    """The node could not be started or stopped."""


class NodeBusyError(NodeError):
    """Another work directory's node runs on this machine."""


def _load_controlplane() -> ModuleType:
    """hack/controlplane.py, under the name the tests use for it (one copy per process)."""
    name = "modelrollout_hack_controlplane"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("controlplane.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cp = _load_controlplane()


# ---------------------------------------------------------------------- small helpers
def _log(message: str) -> None:
    print(f"[node] {message}", file=sys.stderr, flush=True)


def _run(
    *cmd: str, check: bool = True, input: str | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=SYSTEM_PATH + os.pathsep + os.environ.get("PATH", ""))
    try:
        result = subprocess.run(
            list(cmd),
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=env,
        )
    except FileNotFoundError as err:
        raise NodeError(f"{cmd[0]} is not installed (run: make tools)") from err
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def _proc_start_time(pid: int) -> int | None:
    """The start time of `pid` (clock ticks since boot), None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _same_process(pid: int, start: int | None) -> bool:
    started = _proc_start_time(pid)
    return started is not None and (start is None or started == start)


def _kill_and_wait(pids: list[int], timeout: float = 15.0) -> None:
    """SIGTERM `pids`, SIGKILL what is left after `timeout`, wait until all are gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for sig_timeout, sig in ((timeout, signal.SIGKILL), (10.0, None)):
        for _ in cp._deadline_loop(sig_timeout):
            _reap()
            if not any(cp._pid_alive(pid) for pid in pids):
                return
        if sig is None:
            break
        for pid in pids:
            if cp._pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
    alive = [str(pid) for pid in pids if cp._pid_alive(pid)]
    if alive:
        raise NodeError(f"processes survived SIGKILL: {', '.join(alive)}")


def _reap() -> None:
    """Collect exited children of this process (they would stay zombies otherwise)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _read_sysctl(name: str) -> str | None:
    try:
        return (Path("/proc/sys") / name).read_text().strip()
    except OSError:
        return None


def _write_sysctl(name: str, value: str) -> None:
    try:
        (Path("/proc/sys") / name).write_text(value + "\n")
    except OSError as err:
        raise NodeError(f"cannot set {name.replace('/', '.')}={value}: {err}") from err


def _mounts_under(prefixes: list[str]) -> list[str]:
    """Mount points at or below one of `prefixes`, deepest first."""
    found: list[str] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if any(point == p or point.startswith(p.rstrip("/") + "/") for p in prefixes):
            found.append(point)
    return sorted(found, key=lambda p: (p.count("/"), len(p)), reverse=True)


def _unmount_all(prefixes: list[str]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(20):  # mounts may be stacked
        points = _mounts_under(prefixes)
        if not points:
            return
        for point in points:
            if libc.umount2(point.encode(), 0) != 0:
                libc.umount2(point.encode(), MNT_DETACH)
    left = _mounts_under(prefixes)
    if left:
        raise NodeError(f"still mounted: {', '.join(left[:10])}")


def _link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def _http_get(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as err:
        return 0, str(err)


def dns_query(name: str, server: str = NODE_IP, timeout: float = 1.0) -> tuple[int, list[str]]:
    """One A query over UDP: the response code (0 = NOERROR, 3 = NXDOMAIN, 5 = REFUSED,
    -1 = no answer) and the addresses in the answer."""
    ident = secrets.randbits(16)
    question = b"".join(
        bytes([len(label)]) + label.encode() for label in name.strip(".").split(".")
    )
    packet = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + b"\0\0\1\0\1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(packet, (server, 53))
            data = sock.recv(4096)
        except OSError:
            return -1, []
    rcode = data[3] & 0x0F
    answers = struct.unpack(">H", data[6:8])[0]
    pos = 12 + len(question) + 5
    addresses = []
    for _ in range(answers):
        while data[pos] != 0 and data[pos] < 0xC0:  # the owner name (labels or a pointer)
            pos += data[pos] + 1
        pos += 2 if data[pos] >= 0xC0 else 1
        rtype, _cls, _ttl, length = struct.unpack(">HHIH", data[pos : pos + 10])
        pos += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(data[pos : pos + 4]))
        pos += length
    return rcode, addresses


# ---------------------------------------------------------------------- images
def tools_cache() -> Path:
    base = os.environ.get("MODELROLLOUT_CACHE") or str(Path.home() / ".cache" / "modelrollout")
    return Path(base) / "tools"


def _tar_bytes(entries: list[tarfile.TarInfo], payloads: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info in entries:
            data = payloads.get(info.name)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _entry(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = link
    info.mtime = 0
    info.uname = info.gname = "root"
    return info


def docker_archive(
    ref: str,
    files: dict[str, bytes],
    links: dict[str, str],
    dirs: list[str],
    config: dict[str, Any],
) -> bytes:
    """A one-layer docker-archive tar (what `docker save` writes), as bytes.

    `files` maps paths to contents (executable), `links` paths to symlink targets, `dirs` are
    made first (`tmp` is world-writable)."""
    entries: list[tarfile.TarInfo] = []
    payloads: dict[str, bytes] = {}
    for directory in dirs:
        entries.append(_entry(directory, tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755))
    for path, data in sorted(files.items()):
        mode = 0o644 if path.startswith("etc/") else 0o755
        entries.append(_entry(path, tarfile.REGTYPE, mode, len(data)))
        payloads[path] = data
    for path, target in sorted(links.items()):
        entries.append(_entry(path, tarfile.SYMTYPE, 0o777, link=target))
    layer = _tar_bytes(entries, payloads)
    diff_id = hashlib.sha256(layer).hexdigest()
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hack/node.py"}],
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}]
    manifest_bytes = json.dumps(manifest).encode()
    outer = [
        _entry(diff_id, tarfile.DIRTYPE, 0o755),
        _entry(f"{diff_id}/layer.tar", tarfile.REGTYPE, 0o644, len(layer)),
        _entry(config_name, tarfile.REGTYPE, 0o644, len(config_bytes)),
        _entry("manifest.json", tarfile.REGTYPE, 0o644, len(manifest_bytes)),
    ]
    return _tar_bytes(
        outer,
        {
            f"{diff_id}/layer.tar": layer,
            config_name: config_bytes,
            "manifest.json": manifest_bytes,
        },
    )


def _busybox() -> Path:
    path = Path("/bin/busybox")
    if not path.exists():
        raise NodeError(
            "/bin/busybox is missing (apt-get install busybox-static; or run make tools)"
        )
    if (
        b"ld-linux" in path.read_bytes()[:4096]
        or _run("ldd", str(path), check=False).returncode == 0
    ):
        raise NodeError(f"{path} is not statically linked (apt-get install busybox-static)")
    return path


def ensure_images(cache: Path | None = None) -> dict[str, Path]:
    """The pause and busybox image archives (built once per content, then reused)."""
    busybox = _busybox().read_bytes()
    gcc = shutil.which("gcc")
    if gcc is None:
        raise NodeError("gcc is missing (apt-get install gcc libc6-dev; or run make tools)")
    key = hashlib.sha256(
        b"\0".join([IMAGE_FORMAT.encode(), PAUSE_C.encode(), hashlib.sha256(busybox).digest()])
    ).hexdigest()[:16]
    directory = (cache or tools_cache()) / f"images-{key}"
    archives = {PAUSE_IMAGE: directory / "pause.tar", BUSYBOX_IMAGE: directory / "busybox.tar"}
    if (directory / ".complete").exists() and all(p.exists() for p in archives.values()):
        return archives
    started = time.monotonic()
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(directory) + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        (tmp / "pause.c").write_text(PAUSE_C)
        _run(gcc, "-static", "-Os", "-s", "-o", str(tmp / "pause"), str(tmp / "pause.c"))
        pause = docker_archive(
            PAUSE_IMAGE,
            {"pause": (tmp / "pause").read_bytes()},
            {},
            [],
            {"Entrypoint": ["/pause"], "User": "65535:65535"},
        )
        (tmp / "pause.tar").write_bytes(pause)
        applets = _run("/bin/busybox", "--list-full").stdout.split()
        links = {path: "/bin/busybox" for path in applets if path != "bin/busybox"}
        dirs = ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "www", "var"]
        image = docker_archive(
            BUSYBOX_IMAGE,
            {
                "bin/busybox": busybox,
                "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"
                b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
                "etc/group": b"root:x:0:\nnobody:x:65534:\n",
            },
            links,
            dirs,
            {
                "Cmd": ["sh"],
                "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                "WorkingDir": "/",
            },
        )
        (tmp / "busybox.tar").write_bytes(image)
        (tmp / "pause.c").unlink()
        (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _log(f"images built in {time.monotonic() - started:.1f}s: {directory}")
    return archives


# ---------------------------------------------------------------------- host claim
class HostClaim:
    """The machine-wide claim of the node (one per machine), a JSON file under a flock."""

    def __init__(self, directory: Path = CLAIM_DIR) -> None:
        self.dir = directory
        self.path = directory / "node.json"
        self.lock_path = directory / "node.lock"
        self._lock = threading.RLock()
        self._depth = 0
        self._file: IO[str] | None = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the flock (re-entrant within this object)."""
        with self._lock:
            if self._depth == 0:
                self.dir.mkdir(parents=True, exist_ok=True)
                self._file = self.lock_path.open("a+")
                fcntl.flock(self._file, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._file is not None:
                    self._file.close()  # releases the flock
                    self._file = None

    def read(self) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return record

    def write(self, record: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.rename(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @staticmethod
    def live_pids(record: dict[str, Any]) -> dict[str, int]:
        return {
            name: int(pid)
            for name, (pid, start) in record.get("pids", {}).items()
            if _same_process(int(pid), start)
        }


def record_pid(record: dict[str, Any], name: str, pid: int) -> None:
    record.setdefault("pids", {})[name] = [pid, _proc_start_time(pid)]


# ---------------------------------------------------------------------- the node
class Node:
    """containerd, kubelet, kube-proxy, CoreDNS and Traefik in `workdir`, for the control plane
    whose admin kubeconfig, server URL and PKI directory are given to `start()`.

    Use through hack/cluster.py's LocalCluster, which also claims the host (`claim_host()`),
    sets up the node address before the API server binds to it (`setup_network()`) and tears
    everything down (`teardown()`).
    """

    def __init__(
        self,
        workdir: Path,
        bin_dir: Path = DEFAULT_BIN_DIR,
        *,
        daemon: bool = False,
        gateway_api_dir: Path = DEFAULT_GATEWAY_API_DIR,
        claim: HostClaim | None = None,
        cluster_dir: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        # The directory to name in messages (hack/cluster.py's, which holds this one).
        self.cluster_dir = Path(cluster_dir).resolve() if cluster_dir else self.workdir
        self.bin_dir = Path(bin_dir).absolute()
        self.daemon = daemon
        self.gateway_api_dir = Path(gateway_api_dir).absolute()
        self.claim = claim or HostClaim()
        self.logs = self.workdir / "logs"
        self.containerd_dir = self.workdir / "containerd"
        self.socket = self.containerd_dir / "containerd.sock"
        self.cni_conf_dir = self.workdir / "cni" / "net.d"
        self.kubelet_dir = self.workdir / "kubelet"
        self.pki_dir = self.workdir / "pki"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: list[IO[bytes]] = []
        self.admin_kubeconfig: Path | None = None
        self._ctx: ssl.SSLContext | None = None
        self._server = ""
        self._ca = Path()
        self.traefik_port = 0

    # ------------------------------------------------------------------ claim
    def claim_host(self, wait: float = 0.0) -> dict[str, Any]:
        """Take the machine-wide claim for this work directory (cleaning a stale one);
        wait up to `wait` seconds for another live node to go away."""
        deadline = time.monotonic() + wait
        while True:
            with self.claim.locked():
                record = self.claim.read()
                live = self.claim.live_pids(record) if record else {}
                if record is not None and live and record.get("workdir") != str(self.workdir):
                    if time.monotonic() >= deadline:
                        other = record.get("cluster_dir", record["workdir"])
                        raise NodeBusyError(
                            f"a node already runs on this machine, the cluster in {other} "
                            f"(pids {', '.join(f'{n}={p}' for n, p in sorted(live.items()))}). "
                            f"Stop it first: make dev-down (for .dev/cluster), or "
                            f"python hack/cluster.py down --dir {other}"
                        )
                else:
                    if record is not None:
                        _log(f"cleaning up the earlier node of {record.get('workdir')}")
                        teardown(record, self.claim)
                    record = self._new_record()
                    self.claim.write(record)
                    return record
            time.sleep(1.0)

    def _new_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "workdir": str(self.workdir),
            "cluster_dir": str(self.cluster_dir),
            "bin_dir": str(self.bin_dir),
            "socket": str(self.socket),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sysctls": {name: _read_sysctl(name) for name in SYSCTLS},
            "host_paths_before": [p for p in HOST_PATHS if os.path.lexists(p)],
            "netns_before": sorted(os.listdir("/run/netns")) if Path("/run/netns").is_dir() else [],
            "cgroups_before": sorted(str(p) for p in CGROUP_ROOT.glob("*/kubepods") if p.is_dir()),
            "pids": {},
        }
        record_pid(record, "owner", os.getpid())
        return record

    def record_pids(self, pids: dict[str, int]) -> None:
        """Add processes (e.g. the control plane's) to the claim, which lives while any does."""
        with self.claim.locked():
            record = self.claim.read()
            if record is None or record.get("workdir") != str(self.workdir):
                raise NodeError("the host claim of this node is gone")
            for name, pid in pids.items():
                record_pid(record, name, pid)
            self.claim.write(record)

    # ------------------------------------------------------------------ host network
    def setup_network(self) -> None:
        """The node address on its dummy link, the Service range as a local route, the
        sysctls, and the egress chain. Idempotent."""
        if not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
            _run("modprobe", "br_netfilter")
        if "\toverlay\n" not in Path("/proc/filesystems").read_text():
            _run("modprobe", "overlay")
        if not _link_exists(NODE_LINK):
            # A dummy link; kernels built without CONFIG_DUMMY (and without modules) get an
            # empty bridge instead, which holds a local address just as well.
            if _run("ip", "link", "add", NODE_LINK, "type", "dummy", check=False).returncode:
                _run("ip", "link", "add", NODE_LINK, "type", "bridge")
            _write_sysctl(f"net/ipv6/conf/{NODE_LINK}/disable_ipv6", "1")
        addresses = _run("ip", "-4", "-o", "addr", "show", "dev", NODE_LINK).stdout
        if f" {NODE_IP}/32 " not in addresses:
            _run("ip", "addr", "add", f"{NODE_IP}/32", "dev", NODE_LINK)
        _run("ip", "link", "set", NODE_LINK, "up")
        _run(
            "ip", "route", "replace", "local", SERVICE_CIDR, "dev", NODE_LINK,
            "table", "local", "src", NODE_IP,
        )  # fmt: skip
        _write_sysctl("net/ipv4/ip_forward", "1")
        _write_sysctl("net/bridge/bridge-nf-call-iptables", "1")
        if _run("iptables", "-w", "-n", "-L", EGRESS_CHAIN, check=False).returncode != 0:
            _run("iptables", "-w", "-N", EGRESS_CHAIN)
        _run("iptables", "-w", "-F", EGRESS_CHAIN)
        _run(
            "iptables", "-w", "-A", EGRESS_CHAIN, "-s", POD_CIDR, "!", "-o", CNI_BRIDGE,
            "-m", "comment", "--comment", "modelrollout: Pods reach nothing beyond the node",
            "-j", "REJECT", "--reject-with", "icmp-net-prohibited",
        )  # fmt: skip
        self.egress_first()

    def egress_first(self) -> None:
        """Put the jump to the egress chain first in FORWARD (kube-proxy and the kubelet
        insert their own jumps at the top)."""
        while (
            _run("iptables", "-w", "-D", "FORWARD", "-j", EGRESS_CHAIN, check=False).returncode == 0
        ):
            pass
        _run("iptables", "-w", "-I", "FORWARD", "1", "-j", EGRESS_CHAIN)

    # ------------------------------------------------------------------ processes
    def _spawn(
        self, name: str, cmd: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("ab")
        self._log_files.append(log)
        log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)}
        base["PATH"] = SYSTEM_PATH
        proc = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**base, **(env or {})},
            preexec_fn=None if self.daemon else cp._set_parent_death_signal,
        )
        self._procs[name] = proc
        (self.workdir / f"{name}.pid").write_text(f"{proc.pid}\n")
        self.record_pids({name: proc.pid})
        return proc

    def _check_running(self, name: str) -> None:
        proc = self._procs[name]
        if proc.poll() is not None:
            log = self.logs / f"{name}.log"
            raise NodeError(
                f"{name} exited with code {proc.returncode}; last lines of {log}:\n{cp._tail(log)}"
            )

    def _wait(
        self, what: str, check: Callable[[], tuple[bool, str]], names: list[str], timeout: float
    ) -> None:
        last = ""
        for _ in cp._deadline_loop(timeout, 0.1):
            for name in names:
                self._check_running(name)
            ok, last = check()
            if ok:
                return
        raise NodeError(f"timed out after {timeout:.0f}s waiting for {what}: {last}")

    def _binary(self, name: str) -> str:
        path = self.bin_dir / name
        if not os.access(path, os.X_OK):
            raise NodeError(f"{path} is missing or not executable; run: bash hack/tools.sh")
        return str(path)

    def pids(self) -> dict[str, int]:
        """The node's processes that run now (from the pidfiles; checked by command line)."""
        found: dict[str, int] = {}
        for name in NODE_COMPONENTS:
            try:
                pid = int((self.workdir / f"{name}.pid").read_text().strip())
            except (FileNotFoundError, ValueError):
                continue
            if cp._pid_alive(pid) and f"{self.workdir}/" in cp._pid_cmdline(pid):
                found[name] = pid
        return found

    # ------------------------------------------------------------------ API access
    def _api_get(self, path: str) -> tuple[int, Any]:
        status, body = _http_get(f"{self._server}{path}", self._ctx)
        try:
            return status, json.loads(body) if status == 200 else body
        except json.JSONDecodeError:
            return status, body

    def _kubectl_cmd(self, *args: str) -> list[str]:
        assert self.admin_kubeconfig is not None
        return [
            self._binary("kubectl"),
            f"--kubeconfig={self.admin_kubeconfig}",
            f"--cache-dir={self.workdir / 'kubectl-cache'}",  # not ~/.kube/cache
            *args,
        ]

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 60.0) -> str:
        return _run(*self._kubectl_cmd(*args), input=input, timeout=timeout).stdout

    # ------------------------------------------------------------------ certificates
    def _ensure_pki(self, ca_dir: Path) -> None:
        ca = ca_dir / "ca.crt"
        fingerprint = hashlib.sha256(ca.read_bytes()).hexdigest()
        marker = self.pki_dir / ".complete"
        if marker.exists() and marker.read_text().strip() == fingerprint:
            return
        shutil.rmtree(self.pki_dir, ignore_errors=True)
        self.pki_dir.mkdir(parents=True)
        pki = cp._Pki(self.pki_dir)
        signer = str(ca_dir / "ca")
        pki.leaf(
            "kubelet-client",
            {"O": "system:nodes", "CN": f"system:node:{NODE_NAME}"},
            "clientAuth",
            ca=signer,
        )
        pki.leaf(
            "kubelet-serving",
            {"O": "system:nodes", "CN": f"system:node:{NODE_NAME}"},
            "serverAuth",
            [f"IP:{NODE_IP}", f"DNS:{NODE_NAME}", "IP:127.0.0.1"],
            ca=signer,
        )
        pki.leaf("kube-proxy", {"CN": "system:kube-proxy"}, "clientAuth", ca=signer)
        for key in self.pki_dir.glob("*.key"):
            key.chmod(0o600)
        marker.write_text(fingerprint + "\n")

    def _kubeconfig(self, name: str, user: str) -> Path:
        path = self.workdir / f"{name}.kubeconfig"
        path.write_text(
            cp.kubeconfig_text(
                self._server,
                self._ca,
                self.pki_dir / f"{name}.crt",
                self.pki_dir / f"{name}.key",
                user,
            )
        )
        path.chmod(0o600)
        return path

    # ------------------------------------------------------------------ start
    def start(
        self,
        server: str,
        admin_kubeconfig: Path,
        ca_dir: Path,
        images: list[Path] | None = None,
        timeout: float = 120.0,
    ) -> None:
        """Start every node process, import the images, wait for the node to be Ready and the
        Gateway Programmed. The host must be claimed and the network set up already."""
        self._server = server
        self.admin_kubeconfig = admin_kubeconfig
        ca = ca_dir / "ca.crt"
        self._ca = ca
        self._ctx = ssl.create_default_context(cafile=str(ca))
        self._ctx.load_cert_chain(str(ca_dir / "admin.crt"), str(ca_dir / "admin.key"))
        for name in ("kubelet", "kube-proxy", "coredns", "traefik", "kubectl"):
            self._binary(name)
        if len(str(self.socket)) > 100:
            raise NodeError(f"the work directory path is too long for a unix socket: {self.socket}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        archives = list(ensure_images().values()) + list(images or [])
        self._ensure_pki(ca_dir)
        t0 = time.monotonic()
        crds = self._apply_crds()  # in the background, meanwhile the node starts
        try:
            self._start_containerd(timeout)
            for archive in archives:
                self.import_image(archive)
            _log(f"containerd up, {len(archives)} images imported in {time.monotonic() - t0:.1f}s")
            self._start_kubelet(ca, timeout)
            _log(f"node {NODE_NAME} Ready after {time.monotonic() - t0:.1f}s")
            self._start_kube_proxy(timeout)
            self._start_coredns(timeout)
        except BaseException:
            crds.kill()
            crds.communicate()
            raise
        self._wait_crds(crds, timeout)
        self._start_traefik(timeout)
        self._gateway(timeout)
        self.egress_first()
        _log(f"node complete after {time.monotonic() - t0:.1f}s; gateway {GATEWAY_URL}")

    def _start_containerd(self, timeout: float) -> None:
        root = self.containerd_dir / "root"
        state = self.containerd_dir / "state"
        for directory in (root, state, self.cni_conf_dir, self.workdir / "cni" / "ipam"):
            directory.mkdir(parents=True, exist_ok=True)
        (self.cni_conf_dir / "10-modelrollout.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "name": "modelrollout",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": CNI_BRIDGE,
                            "isGateway": True,
                            "hairpinMode": True,
                            "ipMasq": False,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_CIDR, "gateway": POD_GATEWAY}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(self.workdir / "cni" / "ipam"),
                            },
                        },
                        {"type": "portmap", "capabilities": {"portMappings": True}},
                    ],
                },
                indent=2,
            )
            + "\n"
        )
        cri = '[plugins."io.containerd.grpc.v1.cri"'
        config = self.containerd_dir / "config.toml"
        config.write_text(
            f"""version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{self.socket}"

[ttrpc]
  address = "{self.socket}.ttrpc"

[metrics]
  address = ""

{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  max_container_log_line_size = 16384

{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "/usr/sbin/runc"
  Root = "{self.containerd_dir / "runc"}"

{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{self.cni_conf_dir}"
  max_conf_num = 1
"""
        )
        # Nothing is ever pulled: the images a pod may use are imported at start. Should a pod
        # name an image that is not here (with a pull policy that allows pulling), its pull
        # goes to a proxy address on loopback where nothing listens and fails at once, instead
        # of looking the registry up and leaving the machine.
        no_pull = {
            key: NO_PULL_PROXY for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
        }
        no_pull["NO_PROXY"] = no_pull["no_proxy"] = ""
        self._spawn("containerd", ["/usr/bin/containerd", "--config", str(config)], env=no_pull)
        self._wait(
            "containerd's socket",
            lambda: self._ctr_ok(),
            ["containerd"],
            timeout,
        )

    def _ctr(self, *args: str, check: bool = True, timeout: float = 60.0) -> str:
        return _run(
            "/usr/bin/ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args,
            check=check, timeout=timeout,
        ).stdout  # fmt: skip

    def _ctr_ok(self) -> tuple[bool, str]:
        if not self.socket.exists():
            return False, f"{self.socket} does not exist"
        result = _run("/usr/bin/ctr", "--address", str(self.socket), "version", check=False)
        return result.returncode == 0, result.stderr.strip()

    def import_image(self, archive: Path) -> None:
        """Import a docker-archive or OCI tar into the node's containerd (for the CRI)."""
        path = Path(archive).resolve()
        if not path.is_file():
            raise NodeError(f"no image archive at {path}")
        self._ctr("images", "import", str(path), timeout=300)

    def _start_kubelet(self, ca: Path, timeout: float) -> None:
        kubeconfig = self._kubeconfig("kubelet-client", f"system:node:{NODE_NAME}")
        self.kubelet_dir.mkdir(parents=True, exist_ok=True)
        resolv = self.workdir / "resolv.conf"
        resolv.write_text(f"nameserver {NODE_IP}\n")
        config = self.workdir / "kubelet.yaml"
        config.write_text(
            json.dumps(
                {
                    "apiVersion": "kubelet.config.k8s.io/v1beta1",
                    "kind": "KubeletConfiguration",
                    "address": NODE_IP,
                    "port": KUBELET_PORT,
                    "readOnlyPort": 0,
                    "healthzBindAddress": "127.0.0.1",
                    "healthzPort": 10248,
                    "authentication": {
                        "anonymous": {"enabled": False},
                        "webhook": {"enabled": True},
                        "x509": {"clientCAFile": str(ca)},
                    },
                    "authorization": {"mode": "Webhook"},
                    "tlsCertFile": str(self.pki_dir / "kubelet-serving.crt"),
                    "tlsPrivateKeyFile": str(self.pki_dir / "kubelet-serving.key"),
                    "cgroupDriver": "cgroupfs",
                    "failCgroupV1": False,
                    "failSwapOn": False,
                    "clusterDNS": [NODE_IP],
                    "clusterDomain": CLUSTER_DOMAIN,
                    "resolvConf": str(resolv),
                    "podLogsDir": str(self.workdir / "pod-logs"),
                    "volumePluginDir": str(self.workdir / "volume-plugins"),
                    "containerRuntimeEndpoint": f"unix://{self.socket}",
                    "podCIDR": POD_CIDR,
                    "maxPods": 110,
                    # Nothing is pulled, so nothing may be collected, and the node must not
                    # report disk pressure on a nearly full development disk.
                    "imageGCHighThresholdPercent": 100,
                    "imageGCLowThresholdPercent": 99,
                    "evictionHard": {
                        "memory.available": "50Mi",
                        "nodefs.available": "1%",
                        "imagefs.available": "1%",
                        "nodefs.inodesFree": "1%",
                    },
                    "serializeImagePulls": False,
                    "registerNode": True,
                    "nodeStatusUpdateFrequency": "5s",
                    "shutdownGracePeriod": "0s",
                    "logging": {"format": "text"},
                },
                indent=2,
            )
        )
        self._spawn(
            "kubelet",
            [
                self._binary("kubelet"),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.kubelet_dir}",
                f"--cert-dir={self.pki_dir}",
                f"--node-ip={NODE_IP}",
                f"--hostname-override={NODE_NAME}",
                "--v=1",
            ],
        )

        def ready() -> tuple[bool, str]:
            status, node = self._api_get(f"/api/v1/nodes/{NODE_NAME}")
            if status != 200:
                return False, f"GET node -> {status}"
            conditions = {c["type"]: c for c in node.get("status", {}).get("conditions", [])}
            ready = conditions.get("Ready", {})
            return ready.get("status") == "True", f"Ready: {ready.get('message', '-')}"

        self._wait(f"node {NODE_NAME} to be Ready", ready, ["containerd", "kubelet"], timeout)

    def _start_kube_proxy(self, timeout: float) -> None:
        kubeconfig = self._kubeconfig("kube-proxy", "system:kube-proxy")
        config = self.workdir / "kube-proxy.yaml"
        config.write_text(
            json.dumps(
                {
                    "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                    "kind": "KubeProxyConfiguration",
                    "clientConnection": {"kubeconfig": str(kubeconfig)},
                    "mode": "iptables",
                    "clusterCIDR": POD_CIDR,
                    "hostnameOverride": NODE_NAME,
                    "bindAddress": NODE_IP,
                    "healthzBindAddress": "127.0.0.1:10256",
                    "metricsBindAddress": "127.0.0.1:10249",
                    "nodePortAddresses": [f"{NODE_IP}/32"],
                    "detectLocalMode": "ClusterCIDR",
                    # Zero: leave the host's conntrack sysctls alone.
                    "conntrack": {
                        "maxPerCore": 0,
                        "min": 0,
                        "tcpEstablishedTimeout": "0s",
                        "tcpCloseWaitTimeout": "0s",
                    },
                    "iptables": {"minSyncPeriod": "0s", "syncPeriod": "30s"},
                },
                indent=2,
            )
        )
        self._spawn("kube-proxy", [self._binary("kube-proxy"), f"--config={config}", "--v=1"])
        self._wait(
            "kube-proxy /healthz",
            lambda: self._probe_http("http://127.0.0.1:10256/healthz"),
            ["kube-proxy"],
            timeout,
        )

    def _probe_http(self, url: str) -> tuple[bool, str]:
        status, body = _http_get(url)
        return status == 200, f"{url} -> {status} {body[:200]}"

    def _start_coredns(self, timeout: float) -> None:
        assert self.admin_kubeconfig is not None
        corefile = self.workdir / "Corefile"
        corefile.write_text(
            f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {NODE_IP}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {self.admin_kubeconfig} {cp.CLUSTER_NAME}
        pods insecure
        ttl 5
    }}
    loadbalance
}}
.:53 {{
    bind {NODE_IP}
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""
        )
        self._spawn("coredns", [self._binary("coredns"), "-conf", str(corefile)])

        def answers() -> tuple[bool, str]:
            rcode, addresses = dns_query(f"kubernetes.default.svc.{CLUSTER_DOMAIN}")
            ok = rcode == 0 and cp.KUBERNETES_SERVICE_IP in addresses
            return ok, f"rcode {rcode}, answer {addresses}"

        self._wait("CoreDNS to answer for kubernetes.default", answers, ["coredns"], timeout)

    def _start_traefik(self, timeout: float) -> None:
        assert self.admin_kubeconfig is not None
        (self.traefik_port,) = cp._free_ports(1)
        config = self.workdir / "traefik.yaml"
        config.write_text(
            json.dumps(
                {
                    "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
                    "entryPoints": {
                        "web": {"address": f"{NODE_IP}:{GATEWAY_PORT}"},
                        "traefik": {"address": f"127.0.0.1:{self.traefik_port}"},
                    },
                    "ping": {"entryPoint": "traefik"},
                    "api": {"insecure": False, "dashboard": False},
                    "providers": {
                        "kubernetesGateway": {
                            "statusAddress": {"ip": NODE_IP},
                            "throttleDuration": "0s",
                        }
                    },
                    "log": {"level": "INFO"},
                },
                indent=2,
            )
        )
        self._spawn(
            "traefik",
            [self._binary("traefik"), f"--configFile={config}"],
            env={"KUBECONFIG": str(self.admin_kubeconfig)},
        )
        self._wait(
            "Traefik /ping",
            lambda: self._probe_http(f"http://127.0.0.1:{self.traefik_port}/ping"),
            ["traefik"],
            timeout,
        )

    def _apply_crds(self) -> subprocess.Popen[str]:
        """`kubectl apply` the Gateway API CRDs, in the background."""
        files = sorted(self.gateway_api_dir.glob("*.yaml"))
        if not files:
            raise NodeError(f"no Gateway API CRDs in {self.gateway_api_dir}; run: make tools")
        args = ["apply", "--server-side", "--force-conflicts", "-o", "name"]
        for path in files:
            args += ["-f", str(path)]
        return subprocess.Popen(
            self._kubectl_cmd(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _wait_crds(self, apply: subprocess.Popen[str], timeout: float) -> None:
        try:
            out, err = apply.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            apply.kill()
            apply.communicate()
            raise NodeError("timed out applying the Gateway API CRDs") from None
        if apply.returncode != 0:
            raise NodeError(f"applying the Gateway API CRDs failed: {err.strip()}")
        names = [n for n in out.split() if n.startswith("customresourcedef")]
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names, timeout=70)

    def _gateway(self, timeout: float) -> None:
        manifest = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "GatewayClass",
                    "metadata": {"name": GATEWAY_CLASS},
                    "spec": {"controllerName": GATEWAY_CONTROLLER},
                },
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": GATEWAY_NAMESPACE},
                },
                {
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "Gateway",
                    "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
                    "spec": {
                        "gatewayClassName": GATEWAY_CLASS,
                        "listeners": [
                            {
                                "name": "web",
                                "port": GATEWAY_PORT,
                                "protocol": "HTTP",
                                "allowedRoutes": {"namespaces": {"from": "All"}},
                            }
                        ],
                    },
                },
            ],
        }
        self.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))

        def programmed() -> tuple[bool, str]:
            status, gateway = self._api_get(
                f"/apis/gateway.networking.k8s.io/v1/namespaces/{GATEWAY_NAMESPACE}"
                f"/gateways/{GATEWAY_NAME}"
            )
            if status != 200:
                return False, f"GET gateway -> {status}"
            conditions = {c["type"]: c for c in gateway.get("status", {}).get("conditions", [])}
            got = conditions.get("Programmed", {})
            return got.get("status") == "True", f"Programmed: {got or '-'}"

        self._wait("the Gateway to be Programmed", programmed, ["traefik"], timeout)

    # ------------------------------------------------------------------ stop
    def close_logs(self) -> None:
        for log in self._log_files:
            log.close()
        self._log_files.clear()
        for proc in self._procs.values():
            with contextlib.suppress(ChildProcessError):
                proc.poll()
        self._procs.clear()


# ---------------------------------------------------------------------- teardown
def _shim_pids(socket_path: str) -> list[int]:
    """containerd-shim processes that belong to the containerd listening on `socket_path`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        cmdline = cp._pid_cmdline(int(entry.name))
        if "containerd-shim" in cmdline and socket_path in cmdline:
            pids.append(int(entry.name))
    return pids


def _kill_cgroup_tree(record: dict[str, Any]) -> None:
    """Kill every process in the kubelet's cgroups and remove the cgroups it made."""
    before = set(record.get("cgroups_before", []))
    roots = [p for p in CGROUP_ROOT.glob("*/kubepods") if p.is_dir() and str(p) not in before]
    for _ in range(50):
        pids: set[int] = set()
        for root in roots:
            for procs in root.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    pids.update(int(x) for x in procs.read_text().split())
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for root in roots:
        for directory in sorted(
            (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                directory.rmdir()
        with contextlib.suppress(OSError):
            root.rmdir()


def _remove_chains() -> None:
    """Remove every KUBE-*, CNI-* and MODELROLLOUT-* chain (and the jumps to them) from the
    IPv4 and IPv6 tables."""
    for save, restore in (
        ("iptables-save", "iptables-restore"),
        ("ip6tables-save", "ip6tables-restore"),
    ):
        if shutil.which(save, path=SYSTEM_PATH) is None:
            continue
        for table in ("filter", "nat", "mangle", "raw"):
            result = _run(save, "-t", table, check=False)
            if result.returncode != 0:
                continue
            ours = set()
            deletes = []
            for line in result.stdout.splitlines():
                if line.startswith(":") and line[1:].split()[0].startswith(CHAIN_PREFIXES):
                    ours.add(line[1:].split()[0])
            for line in result.stdout.splitlines():
                if not line.startswith("-A "):
                    continue
                words = line.split()
                chain = words[1]
                target = next(
                    (words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-j", "-g")), ""
                )
                if chain not in ours and target in ours:
                    deletes.append("-D" + line[2:])
            if not ours:
                continue
            script = [f"*{table}", *(f":{chain} - [0:0]" for chain in sorted(ours)), *deletes]
            script += [f"-X {chain}" for chain in sorted(ours)] + ["COMMIT", ""]
            done = _run(restore, "-w", "--noflush", input="\n".join(script), check=False)
            if done.returncode != 0:
                raise NodeError(f"{restore} failed removing chains from {table}: {done.stderr}")


def teardown(
    record: dict[str, Any], claim: HostClaim, stop_others: Callable[[], None] | None = None
) -> None:
    """Undo everything the node of `record` did on this machine (its processes, containers,
    mounts, links, chains, sysctls, files), then drop the claim. Safe to repeat."""
    started = time.monotonic()
    workdir = record["workdir"]
    socket_path = record.get("socket", f"{workdir}/containerd/containerd.sock")
    live = claim.live_pids(record)
    live.pop("owner", None)
    pidfile_pids: dict[str, int] = {}
    for name in NODE_COMPONENTS:
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(Path(workdir, f"{name}.pid").read_text().strip())
            if cp._pid_alive(pid) and f"{workdir}/" in cp._pid_cmdline(pid):
                pidfile_pids[name] = pid
    running = {**pidfile_pids, **{n: p for n, p in live.items() if n in NODE_COMPONENTS}}
    errors: list[str] = []

    def step(what: str, action: Callable[..., object], *args: Any) -> None:
        try:
            action(*args)
        except (NodeError, OSError, subprocess.SubprocessError) as err:
            errors.append(f"{what}: {err}")

    # The add-ons and kube-proxy, then its chains.
    for group in (("traefik", "coredns"), ("kube-proxy",), ("kubelet",)):
        pids = [running[name] for name in group if name in running]
        step(f"stop {'/'.join(group)}", _kill_and_wait, pids)
    kube_proxy = Path(record.get("bin_dir", DEFAULT_BIN_DIR)) / "kube-proxy"
    if kube_proxy.exists():
        _run(str(kube_proxy), "--cleanup", "--v=0", check=False)
    # Containers: through containerd while it runs, then whatever is left.
    if "containerd" in running and Path(socket_path).exists():
        ctr = ["/usr/bin/ctr", "--address", socket_path, "--namespace", "k8s.io"]
        tasks = _run(*ctr, "tasks", "ls", "-q", check=False, timeout=20).stdout.split()
        for task in tasks:
            _run(
                *ctr, "tasks", "kill", "--all", "--signal", "SIGKILL", task, check=False, timeout=20
            )
        for task in tasks:
            _run(*ctr, "tasks", "delete", "--force", task, check=False, timeout=20)
    step(
        "stop containerd",
        lambda: _kill_and_wait([running["containerd"]] if "containerd" in running else []),
    )
    step("kill the shims", _kill_and_wait, _shim_pids(socket_path), 2.0)
    step("kill the containers", _kill_cgroup_tree, record)
    if stop_others is not None:
        step("stop the control plane", stop_others)
    others = [pid for name, pid in claim.live_pids(record).items() if name != "owner"]
    step("stop the remaining processes", _kill_and_wait, others)
    # Mounts: the pods' volumes, the kubelet's root, snapshots, sandbox shm, network namespaces.
    netns_before = set(record.get("netns_before", []))
    netns = [
        str(p)
        for p in (Path("/run/netns").iterdir() if Path("/run/netns").is_dir() else [])
        if p.name.startswith("cni-") and p.name not in netns_before
    ]
    step("unmount", _unmount_all, [workdir, *netns])
    for path in netns:
        with contextlib.suppress(OSError):
            os.unlink(path)
    # Network: chains, bridge, node link (with its address and the local Service route).
    step("remove iptables chains", _remove_chains)
    for link in (CNI_BRIDGE, NODE_LINK):
        if _link_exists(link):
            step(f"delete link {link}", _run, "ip", "link", "del", link)
    _run("ip", "route", "del", "local", SERVICE_CIDR, "table", "local", check=False)
    for name, value in record.get("sysctls", {}).items():
        if value is not None and _read_sysctl(name) not in (None, value):
            step(f"restore {name}", _write_sysctl, name, value)
    # Files outside the work directory.
    before = set(record.get("host_paths_before", []))
    for path in sorted(HOST_PATHS, key=len, reverse=True):
        if path not in before and os.path.lexists(path):
            step(f"remove {path}", shutil.rmtree, path)
    # The node's runtime state in the work directory (its logs and certificates stay).
    for name in NODE_COMPONENTS:
        Path(workdir, f"{name}.pid").unlink(missing_ok=True)
    if not _mounts_under([workdir]):
        for name in RUNTIME_DIRS:
            step(f"remove {name}", shutil.rmtree, Path(workdir, name), True)
    with claim.locked():
        current = claim.read()
        if current is not None and current.get("workdir") == workdir:
            claim.remove()
    if errors:
        raise NodeError("teardown incomplete:\n  " + "\n  ".join(errors))
    _log(f"node of {workdir} torn down in {time.monotonic() - started:.1f}s")


# ---------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    images = sub.add_parser("images", help="build (or reuse) the pause and busybox images")
    images.add_argument("--cache", type=Path, default=None, help="default: the tools cache")
    sub.add_parser("cleanup", help="tear down whatever node the host claim records")
    args = parser.parse_args(argv)
    try:
        if args.command == "images":
            for ref, path in ensure_images(args.cache).items():
                print(f"{ref}\t{path}")
        else:
            claim = HostClaim()
            with claim.locked():
                record = claim.read()
            if record is None:
                print("no node is claimed on this machine")
                return 0
            teardown(record, claim)
    except NodeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
