#!/usr/bin/env python3
"""Build the modelrollout container image without Docker or a registry.

The image is the operator, the replay Job image and the demo model server at once (entrypoint
``modelrollout``). It follows the recipe of ./Dockerfile, which stays for kind users, but is
assembled from three plain tar layers and written as a docker-archive tar that
``ctr -n k8s.io images import`` (and ``docker load``) accept:

1. base: Debian bookworm minbase with python3 and ca-certificates, from ``mmdebstrap``;
2. deps: the runtime dependency closure of the project, pinned to exactly the versions installed
   in the dev venv (.venv, created by ``make install``) so the image runs what the tests tested,
   installed from CPython 3.11 manylinux x86_64 wheels into /opt/modelrollout/lib;
3. app: the package itself (operator/modelrollout), its dist-info and the launchers
   /usr/local/bin/modelrollout and /usr/local/bin/kubectl-modelrollout.

Every layer and the archive are cached under ${MODELROLLOUT_CACHE:-~/.cache/modelrollout}/images
by a hash of their inputs: an unchanged tree reuses the archive without writing anything, and a
change under operator/ rebuilds only the app layer and the archive. Downloads (Debian packages,
wheels) happen at build time only.

Usage:
    python3 hack/images.py build [--out-dir DIR] [--print-ref]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# Bump when the way a layer is made changes, so old cache entries are not reused.
RECIPE_VERSION = "2"
ALIAS_REPOSITORY = "modelrollout"

SUITE = "bookworm"
BASE_PACKAGES = ("python3", "ca-certificates")
DEFAULT_MIRRORS = (
    f"deb http://deb.debian.org/debian {SUITE} main",
    f"deb http://deb.debian.org/debian {SUITE}-updates main",
    f"deb http://deb.debian.org/debian-security {SUITE}-security main",
)
# Documentation, manual pages and translations are of no use in the image.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)

# Bookworm's python3 is CPython 3.11 with glibc 2.36: wheels are chosen for exactly that.
PYTHON_VERSION = "3.11"
GLIBC_MINOR = 36
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(GLIBC_MINOR, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)

IMAGE_REPOSITORY = "modelrollout.local/modelrollout"
LIB_DIR = "opt/modelrollout/lib"
BIN_DIR = "usr/local/bin"
# A .pth file in Debian's site directory makes /usr/bin/python3 (and so ``python3 -m
# modelrollout``, which the local replay executor runs) see /opt/modelrollout/lib.
PTH_FILE = "usr/lib/python3/dist-packages/modelrollout.pth"
# The pods run as 65532:65532. The user needs a name: kopf asks getpass.getuser() for its
# identity, which raises KeyError for a uid /etc/passwd does not know. (Distroless' "nonroot".)
NONROOT_ENTRIES = {
    "etc/passwd": b"nonroot:x:65532:65532:nonroot:/tmp:/usr/sbin/nologin\n",
    "etc/group": b"nonroot:x:65532:\n",
}
# Every file the build writes gets this mtime (as SOURCE_DATE_EPOCH does for the base layer).
EPOCH = 0
CREATED = "1970-01-01T00:00:00Z"


def _launcher(main_import: str = "from modelrollout.cli.main import main") -> bytes:
    """A script that runs the ``main`` that ``main_import`` imports, with the installed
    packages of /opt/modelrollout/lib first on the path."""
    return f"""#!/usr/bin/python3
import sys

sys.path.insert(0, "/{LIB_DIR}")
{main_import}

sys.exit(main())
""".encode()


@dataclass(frozen=True)
class BuiltImage:
    """An image archive ready for ``ctr -n k8s.io images import``."""

    ref: str
    archive: Path
    seconds: float
    cached: bool


@dataclass(frozen=True)
class Layer:
    path: Path
    diff_id: str
    size: int
    created_by: str


class BuildError(RuntimeError):
    pass


def default_cache_dir() -> Path:
    """The project's cache root: $MODELROLLOUT_CACHE or ~/.cache/modelrollout."""
    env = os.environ.get("MODELROLLOUT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "modelrollout"


def _log(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


def _run(cmd: Sequence[str | Path], **kwargs: object) -> None:
    args = [str(part) for part in cmd]
    _log("$ " + " ".join(args[:12]) + (" ..." if len(args) > 12 else ""))
    proc = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise BuildError(
            f"{args[0]} exited with {proc.returncode}:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
        )


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def _locked(images: Path) -> Iterator[None]:
    images.mkdir(parents=True, exist_ok=True)
    with (images / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def _timed(what: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    _log(f"{what}: {time.monotonic() - start:.2f}s")


# ---------------------------------------------------------------------------------------------
# Layer cache entries: <images>/layers/<kind>-<key>.tar next to <kind>-<key>.json.


def _cached_layer(images: Path, kind: str, key: str) -> Layer | None:
    meta = images / "layers" / f"{kind}-{key}.json"
    tar = meta.with_suffix(".tar")
    if not (meta.is_file() and tar.is_file()):
        return None
    info = json.loads(meta.read_text())
    if tar.stat().st_size != info["size"]:
        return None
    return Layer(tar, info["diff_id"], info["size"], info["created_by"])


def _store_layer(images: Path, kind: str, key: str, tmp_tar: Path, created_by: str) -> Layer:
    layers = images / "layers"
    layers.mkdir(parents=True, exist_ok=True)
    tar = layers / f"{kind}-{key}.tar"
    size = tmp_tar.stat().st_size
    diff_id = "sha256:" + _sha256_file(tmp_tar)
    os.replace(tmp_tar, tar)
    meta = {"diff_id": diff_id, "size": size, "created_by": created_by}
    _atomic_write(tar.with_suffix(".json"), json.dumps(meta, indent=2).encode())
    for old in layers.glob(f"{kind}-*"):
        if not old.name.startswith(f"{kind}-{key}."):
            old.unlink(missing_ok=True)  # one entry per kind is enough
    return Layer(tar, diff_id, size, created_by)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _new_tar(path: Path) -> tarfile.TarFile:
    return tarfile.TarFile(path, "w", format=tarfile.PAX_FORMAT, copybufsize=1 << 20)


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = EPOCH
    return info


def _add_parents(tar: tarfile.TarFile, path: str) -> None:
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        tar.addfile(_dir_info("/".join(parts[:i])))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = EPOCH
    tar.addfile(info, io.BytesIO(data))


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    info.mtime = EPOCH
    tar.addfile(info)


def _add_tree(tar: tarfile.TarFile, src: Path, arcname: str) -> None:
    """Add src's contents under arcname: sorted, root-owned, fixed mtime, world-readable."""
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        name = f"{arcname}/{entry.name}"
        info = tar.gettarinfo(entry.path, name)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = EPOCH
        if info.isdir():
            info.mode = 0o755
            tar.addfile(info)
            _add_tree(tar, Path(entry.path), name)
        elif info.isreg():
            info.mode = 0o755 if info.mode & 0o111 else 0o644
            with open(entry.path, "rb") as f:
                tar.addfile(info, f)
        elif info.issym() or info.islnk():
            if info.issym():
                info.mode = 0o777
            tar.addfile(info)
        else:
            raise BuildError(f"unexpected file type in {entry.path}")


# ---------------------------------------------------------------------------------------------
# Layer 1: the Debian base.


def apt_mirrors() -> tuple[str, ...]:
    """One-line apt sources for SUITE, taken from this machine's apt configuration."""
    lines: list[str] = []
    for sources in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in sources.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    if suite == SUITE or suite.startswith(f"{SUITE}-"):
                        lines.append(f"deb {uri} {suite} {fields.get('components', 'main')}")
    return tuple(lines) or DEFAULT_MIRRORS


def _base_key(mirrors: Sequence[str]) -> str:
    return _digest("base", RECIPE_VERSION, SUITE, *BASE_PACKAGES, *DPKG_OPTIONS, *mirrors)[:16]


def _base_layer(images: Path, tmp: Path, mirrors: Sequence[str], key: str) -> Layer:
    if (layer := _cached_layer(images, "base", key)) is not None:
        return layer
    options = [
        "--variant=minbase",
        "--include=" + ",".join(BASE_PACKAGES),
        *(f"--dpkgopt={opt}" for opt in DPKG_OPTIONS),
    ]
    cmd = ["mmdebstrap", *options, SUITE, "-", *mirrors]
    _log("$ " + " ".join(cmd))
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH)}
    out = tmp / "base.tar"
    with tempfile.TemporaryFile(dir=tmp) as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
        assert proc.stdout is not None
        try:
            _rewrite_base(proc.stdout, out)
        finally:
            proc.stdout.close()
            rc = proc.wait()
        if rc != 0:
            err.seek(0)
            raise BuildError(f"mmdebstrap exited with {rc}:\n{err.read().decode()[-4000:]}")
    created_by = " ".join(["mmdebstrap", *options, SUITE])
    return _store_layer(images, "base", key, out, created_by)


def _rewrite_base(stream: IO[bytes], out: Path) -> None:
    """Copy mmdebstrap's tar without device nodes (the runtime provides /dev) and ./ prefixes,
    adding the nonroot user."""
    with tarfile.open(fileobj=stream, mode="r|") as src, _new_tar(out) as dst:
        for member in src:
            if member.ischr() or member.isblk() or member.isfifo():
                continue
            name = member.name.removeprefix("./").rstrip("/")
            if not name or name == ".":
                continue
            member.name = name
            if member.islnk():
                member.linkname = member.linkname.removeprefix("./")
            data = src.extractfile(member) if member.isreg() else None
            if data is not None and name in NONROOT_ENTRIES:
                content = data.read()
                content += b"" if content.endswith(b"\n") else b"\n"
                content += NONROOT_ENTRIES[name]
                member.size = len(content)
                data = io.BytesIO(content)
            dst.addfile(member, data)


# ---------------------------------------------------------------------------------------------
# Layer 2: the runtime dependencies, pinned to the dev venv.

_CLOSURE = r"""
import importlib.metadata as md, json, sys
try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name
pins, todo, done = {}, [Requirement(r) for r in json.loads(sys.argv[1])], set()
while todo:
    req = todo.pop()
    key = (canonicalize_name(req.name), frozenset(req.extras))
    if key in done:
        continue
    done.add(key)
    try:
        dist = md.distribution(req.name)
    except md.PackageNotFoundError:
        sys.exit(f"{req.name} is not installed in {sys.prefix}: run make install")
    pins[canonicalize_name(dist.metadata["Name"])] = dist.version
    for text in dist.requires or []:
        sub = Requirement(text)
        envs = [{"extra": e} for e in (req.extras or {""})]
        if sub.marker is None or any(sub.marker.evaluate(e) for e in envs):
            todo.append(sub)
print("%d.%d" % sys.version_info[:2])
print("\n".join(f"{n}=={v}" for n, v in sorted(pins.items())))
"""


def _venv_python(repo_root: Path) -> Path:
    python = repo_root / ".venv" / "bin" / "python"
    if not python.exists():
        _log("no .venv yet: running make install")
        _run(["make", "-C", repo_root, "install"])
    return python


def pinned_requirements(repo_root: Path, python: Path) -> list[str]:
    """The runtime closure of pyproject's dependencies, as name==version installed in the venv."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    roots = json.dumps(project.get("dependencies", []))
    proc = subprocess.run(
        [python, "-c", _CLOSURE, roots], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BuildError(f"cannot pin the dependencies with {python}:\n{proc.stderr}")
    version, *pins = proc.stdout.split()
    if version != PYTHON_VERSION:  # the wheels and the bytecode are for the image's Python
        raise BuildError(f"{python} is Python {version}; the image has {PYTHON_VERSION}")
    return pins


def _platform_args() -> list[str]:
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def _deps_key(pins: Sequence[str]) -> str:
    return _digest("deps", RECIPE_VERSION, PYTHON_VERSION, *PLATFORMS, *pins)[:16]


def _deps_layer(
    images: Path, tmp: Path, python: Path, pins: Sequence[str], key: str, kind: str = "deps"
) -> Layer:
    if (layer := _cached_layer(images, kind, key)) is not None:
        return layer
    wheelhouse = images / "wheelhouse"
    wheelhouse.mkdir(parents=True, exist_ok=True)
    requirements = tmp / "requirements.txt"
    requirements.write_text("\n".join(pins) + "\n")
    pip: list[str | Path] = [python, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "download", "--no-deps", "-d", wheelhouse, *_platform_args(), "-r", requirements])
    stage = tmp / "deps"
    lib = stage / LIB_DIR
    _run(
        [
            *pip,
            "install",
            "--no-index",
            "--find-links",
            wheelhouse,
            "--target",
            lib,
            "--no-compile",
            "--no-warn-script-location",
            *_platform_args(),
            "-r",
            requirements,
        ]
    )
    shutil.rmtree(lib / "bin", ignore_errors=True)  # console scripts for the host's python
    _compile(python, lib, prefix=f"/{LIB_DIR}")
    out = tmp / "deps.tar"
    with _new_tar(out) as tar:
        _add_parents(tar, LIB_DIR)
        _add_tree(tar, lib, LIB_DIR)
        _add_parents(tar, PTH_FILE.rpartition("/")[0])
        _add_bytes(tar, PTH_FILE, f"/{LIB_DIR}\n".encode())
    created_by = f"pip install --target /{LIB_DIR} " + " ".join(pins)
    return _store_layer(images, kind, key, out, created_by)


def _compile(python: Path, stage: Path, *, prefix: str) -> None:
    """Byte-compile once at build time: the root filesystem is read-only at run time.

    ``stage`` holds what the image installs at ``prefix``, the path the .pyc files record
    (shown in tracebacks). The venv's interpreter is CPython 3.11 like the image's (same
    bytecode magic); unchecked hash-based .pyc files do not depend on the files' mtimes.
    """
    cmd = [python, "-m", "compileall", "-q", "-j0", "--invalidation-mode", "unchecked-hash"]
    cmd += ["-s", stage, "-p", prefix, stage]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if proc.returncode != 0:  # a few files some packages ship are not valid Python 3.11
        _log(f"compileall: some files were not compiled:\n{proc.stdout[-2000:]}")


# ---------------------------------------------------------------------------------------------
# Layer 3: the package.


def _app_files(repo_root: Path) -> list[Path]:
    """Every file under operator/ that can matter to the package, tracked or not."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(repo_root / "operator"):
        dirnames[:] = sorted(
            d for d in dirnames if d != "__pycache__" and not d.endswith(".egg-info")
        )
        files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.endswith(".pyc"))
    return files


def _files_key(kind: str, repo_root: Path, deps_key: str, files: Iterable[Path]) -> str:
    """The cache key of a layer of ``kind`` made of ``files`` (paths and contents) over the
    dependency layer ``deps_key``."""
    h = hashlib.sha256()
    for part in (kind, RECIPE_VERSION, deps_key):
        h.update(part.encode() + b"\0")
    # The launchers, the dist-info and the image config are written by this file.
    h.update(hashlib.sha256(Path(__file__).read_bytes()).digest())
    for path in files:
        h.update(str(path.relative_to(repo_root)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def _app_key(repo_root: Path, deps_key: str) -> str:
    files = [repo_root / "pyproject.toml", repo_root / "README.md", *_app_files(repo_root)]
    return _files_key("app", repo_root, deps_key, files)


def _metadata(project: dict[str, object]) -> tuple[str, str]:
    lines = [
        "Metadata-Version: 2.4",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
        f"License-Expression: {project.get('license', '')}",
        f"Requires-Python: {project.get('requires-python', '')}",
    ]
    deps = project.get("dependencies", [])
    assert isinstance(deps, list)
    lines += [f"Requires-Dist: {dep}" for dep in deps]
    scripts = project.get("scripts", {})
    assert isinstance(scripts, dict)
    entry_points = "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())
    return "\n".join(lines) + "\n", entry_points


def _app_layer(repo_root: Path, images: Path, tmp: Path, python: Path, key: str) -> Layer:
    if (layer := _cached_layer(images, "app", key)) is not None:
        return layer
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    stage = tmp / "app"
    package = repo_root / "operator" / "modelrollout"
    shutil.copytree(
        package, stage / "modelrollout", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    _compile(python, stage, prefix=f"/{LIB_DIR}")
    metadata, entry_points = _metadata(project)
    dist_info = f"{LIB_DIR}/{project['name']}-{project['version']}.dist-info"
    out = tmp / "app.tar"
    with _new_tar(out) as tar:
        _add_parents(tar, LIB_DIR)
        _add_tree(tar, stage, LIB_DIR)
        tar.addfile(_dir_info(dist_info))
        _add_bytes(tar, f"{dist_info}/METADATA", metadata.encode())
        _add_bytes(tar, f"{dist_info}/entry_points.txt", entry_points.encode())
        _add_bytes(tar, f"{dist_info}/top_level.txt", b"modelrollout\n")
        _add_bytes(tar, f"{dist_info}/INSTALLER", b"hack/images.py\n")
        _add_parents(tar, BIN_DIR)
        _add_bytes(tar, f"{BIN_DIR}/modelrollout", _launcher(), 0o755)
        _add_symlink(tar, f"{BIN_DIR}/kubectl-modelrollout", "modelrollout")
        _add_symlink(tar, f"{BIN_DIR}/python", "/usr/bin/python3")
    return _store_layer(images, "app", key, out, "copy operator/modelrollout and the launchers")


# ---------------------------------------------------------------------------------------------
# The image config and the docker-archive.


@dataclass(frozen=True)
class Runs:
    """What an image runs: its entrypoint, default arguments, ports and title."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    ports: tuple[int, ...]
    title: str
    description: str
    workdir: str = "/"


OPERATOR_RUNS = Runs(
    entrypoint=("modelrollout",),
    cmd=("run", "--all-namespaces"),
    ports=(8080, 8081),
    title="modelrollout",
    description="Kubernetes operator that takes machine learning models into production safely",
)


def _config(project: dict[str, str], layers: Sequence[Layer], runs: Runs = OPERATOR_RUNS) -> bytes:
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "User": "65532:65532",
            "ExposedPorts": {f"{port}/tcp": {} for port in runs.ports},
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "PYTHONDONTWRITEBYTECODE=1",
                "PYTHONUNBUFFERED=1",
                "HOME=/tmp",
            ],
            "Entrypoint": list(runs.entrypoint),
            "Cmd": list(runs.cmd),
            "WorkingDir": runs.workdir,
            "Labels": {
                "org.opencontainers.image.title": runs.title,
                "org.opencontainers.image.description": runs.description,
                "org.opencontainers.image.version": project["version"],
                "org.opencontainers.image.licenses": "Apache-2.0",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": CREATED, "created_by": layer.created_by} for layer in layers],
    }
    return json.dumps(config, indent=2, sort_keys=True).encode()


def _write_archive(
    path: Path, ref: str, config: bytes, layers: Sequence[Layer], alias: str | None
) -> None:
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_names = [f"{layer.diff_id.removeprefix('sha256:')}/layer.tar" for layer in layers]
    tags = [ref] if alias is None else [ref, alias]
    manifest = [{"Config": config_name, "RepoTags": tags, "Layers": layer_names}]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with _new_tar(tmp) as tar:
        _add_bytes(tar, config_name, config)
        for name, layer in zip(layer_names, layers, strict=True):
            tar.addfile(_dir_info(name.partition("/")[0]))
            info = tarfile.TarInfo(name)
            info.size = layer.size
            info.mode = 0o644
            info.mtime = EPOCH
            with layer.path.open("rb") as f:
                tar.addfile(info, f)
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    os.replace(tmp, path)


def _inputs(repo_root: Path) -> tuple[dict[str, Any], Path, tuple[str, ...], str]:
    """What every image starts from: the project's metadata, the venv's interpreter (which
    downloads and compiles), the apt mirrors and the base layer's key."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    mirrors = apt_mirrors()
    return project, _venv_python(repo_root), mirrors, _base_key(mirrors)


def build_image(repo_root: Path, cache_dir: Path) -> BuiltImage:
    """Build the image, or reuse it from the cache, and return its docker-archive.

    cache_dir is the project's cache root (see default_cache_dir); everything goes to its
    images/ directory. Needs mmdebstrap and .venv (made with ``make install`` if missing).
    """
    start = time.monotonic()
    repo_root = repo_root.resolve()
    images = cache_dir / "images"
    with _locked(images):
        project, python, mirrors, base_key = _inputs(repo_root)
        pins = pinned_requirements(repo_root, python)
        deps_key = _deps_key(pins)
        app_key = _app_key(repo_root, deps_key)
        image_key = _digest("image", RECIPE_VERSION, base_key, deps_key, app_key)
        ref = f"{IMAGE_REPOSITORY}:{project['version']}-{image_key[:12]}"
        stem = f"modelrollout-{project['version']}"
        archive = images / "archives" / f"{stem}-{image_key[:12]}.tar"
        if archive.is_file():
            return BuiltImage(ref, archive, time.monotonic() - start, cached=True)

        def layers(tmp: Path) -> tuple[Layer, ...]:
            with _timed("deps layer"):
                deps = _deps_layer(images, tmp, python, pins, deps_key)
            with _timed("app layer"):
                app = _app_layer(repo_root, images, tmp, python, app_key)
            return (deps, app)

        # The second tag is the one the Dockerfile, the kind quickstart and examples/ use.
        alias = f"{ALIAS_REPOSITORY}:{project['version'].split('-')[0]}"
        _assemble(images, archive, ref, "modelrollout-", (mirrors, base_key), layers,
                  lambda built: _config(project, built), alias)  # fmt: skip
        return BuiltImage(ref, archive, time.monotonic() - start, cached=False)


def _assemble(
    images: Path,
    archive: Path,
    ref: str,
    prefix: str,
    base: tuple[Sequence[str], str],
    upper: Callable[[Path], tuple[Layer, ...]],
    config: Callable[[Sequence[Layer]], bytes],
    alias: str | None,
) -> None:
    """Write the archive of the base layer and the ``upper`` ones; drop older archives
    whose names start with ``prefix``, so the cache keeps one image of each kind."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    (images / "tmp").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=images / "tmp") as tmpdir:
        tmp = Path(tmpdir)
        with _timed("base layer"):
            bottom = _base_layer(images, tmp, *base)
        layers = (bottom, *upper(tmp))
        with _timed("archive"):
            _write_archive(archive, ref, config(layers), layers, alias)
    for old in archive.parent.glob(f"{prefix}*.tar"):
        if old != archive:
            old.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# The model servers' images: MLServer and KServe, each with a small model of examples/servers.
# They cannot share one image: mlserver 1.7.1 and kserve 0.21.0 pin conflicting versions of
# fastapi, so pip finds no environment holding both.

SERVERS_DIR = "examples/servers"
SERVERS_ROOT = "opt/servers"
SERVER_RUNS = {
    "mlserver": Runs(
        entrypoint=("mlserver",),
        cmd=("start", f"/{SERVERS_ROOT}/mlserver"),
        ports=(8080, 8081, 8082),
        title="modelrollout-mlserver",
        description="Seldon MLServer with the fraud-scorer example runtime",
        workdir=f"/{SERVERS_ROOT}/mlserver",
    ),
    "kserve": Runs(
        entrypoint=("python3", f"/{SERVERS_ROOT}/kserve/fraud_model.py"),
        cmd=("--model_name", "fraud-scorer"),
        ports=(8080, 8081),
        title="modelrollout-kserve",
        description="The KServe model server with the fraud-scorer example model",
    ),
}
SERVER_LAUNCHERS = {
    "mlserver": {"mlserver": "from mlserver.cli.main import main"},
    "kserve": {},
}


def server_pins(repo_root: Path, name: str) -> list[str]:
    """examples/servers/<name>/requirements.txt: name==version lines, comments left out."""
    path = repo_root / SERVERS_DIR / name / "requirements.txt"
    pins = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()[:1] not in ("", "#")]
    if not pins or not all("==" in pin for pin in pins):
        raise BuildError(f"{path}: every line must pin one package, as name==version")
    return pins


def _server_files(repo_root: Path, name: str) -> list[Path]:
    root = repo_root / SERVERS_DIR / name
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _server_app_layer(
    repo_root: Path, images: Path, tmp: Path, python: Path, name: str, key: str
) -> Layer:
    kind = f"{name}-app"
    if (layer := _cached_layer(images, kind, key)) is not None:
        return layer
    stage = tmp / "server"
    src = repo_root / SERVERS_DIR / name
    shutil.copytree(src, stage / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _compile(python, stage, prefix=f"/{SERVERS_ROOT}")
    out = tmp / "server.tar"
    with _new_tar(out) as tar:
        _add_parents(tar, SERVERS_ROOT)
        _add_tree(tar, stage, SERVERS_ROOT)
        _add_parents(tar, BIN_DIR)
        for script, line in SERVER_LAUNCHERS[name].items():
            _add_bytes(tar, f"{BIN_DIR}/{script}", _launcher(line), 0o755)
        _add_symlink(tar, f"{BIN_DIR}/python", "/usr/bin/python3")
    return _store_layer(images, kind, key, out, f"copy {SERVERS_DIR}/{name}")


def build_server_image(repo_root: Path, cache_dir: Path, name: str) -> BuiltImage:
    """The image of one model server of examples/servers (``mlserver`` or ``kserve``),
    built like the project's image (same base layer) and cached the same way."""
    if name not in SERVER_RUNS:
        raise BuildError(f"unknown server {name!r}; the servers are {', '.join(SERVER_RUNS)}")
    start = time.monotonic()
    repo_root = repo_root.resolve()
    images = cache_dir / "images"
    with _locked(images):
        project, python, mirrors, base_key = _inputs(repo_root)
        pins = server_pins(repo_root, name)
        deps_key = _deps_key(pins)
        app_key = _files_key(f"{name}-app", repo_root, deps_key, _server_files(repo_root, name))
        image_key = _digest(name, RECIPE_VERSION, base_key, deps_key, app_key)
        top = next(p for p in pins if p.split("==")[0].lower() == name).split("==")[1]
        ref = f"{IMAGE_REPOSITORY}-{name}:{top}-{image_key[:12]}"
        archive = images / "archives" / f"server-{name}-{top}-{image_key[:12]}.tar"
        if archive.is_file():
            return BuiltImage(ref, archive, time.monotonic() - start, cached=True)

        def layers(tmp: Path) -> tuple[Layer, ...]:
            with _timed(f"{name} deps layer"):
                deps = _deps_layer(images, tmp, python, pins, deps_key, kind=f"{name}-deps")
            with _timed(f"{name} app layer"):
                app = _server_app_layer(repo_root, images, tmp, python, name, app_key)
            return (deps, app)

        _assemble(images, archive, ref, f"server-{name}-", (mirrors, base_key), layers,
                  lambda built: _config(project, built, SERVER_RUNS[name]), None)  # fmt: skip
        return BuiltImage(ref, archive, time.monotonic() - start, cached=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="images.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or reuse) the image's docker-archive")
    build.add_argument("--out-dir", type=Path, help="also place the archive in this directory")
    build.add_argument("--print-ref", action="store_true", help="print only the image reference")
    build.add_argument(
        "--server",
        choices=sorted(SERVER_RUNS),
        help=f"build the image of this model server of {SERVERS_DIR} instead",
    )
    args = parser.parse_args(argv)
    repo_root = Path(__file__).resolve().parent.parent
    try:
        if args.server:
            image = build_server_image(repo_root, default_cache_dir(), args.server)
        else:
            image = build_image(repo_root, default_cache_dir())
    except BuildError as e:
        print(f"images: {e}", file=sys.stderr)
        return 1
    archive = image.archive
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        archive = args.out_dir.resolve() / image.archive.name
        if not archive.exists() or not archive.samefile(image.archive):
            archive.unlink(missing_ok=True)
            try:
                os.link(image.archive, archive)
            except OSError:
                shutil.copyfile(image.archive, archive)
    how = "reused" if image.cached else "built"
    _log(f"{how} {image.ref} in {image.seconds:.2f}s ({archive.stat().st_size >> 20} MiB)")
    if args.print_ref:
        print(image.ref)
    else:
        print(archive)
        print(image.ref)
    return 0


if __name__ == "__main__":
    sys.exit(main())
