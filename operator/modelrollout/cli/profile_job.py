"""``modelrollout profile --job``: profile a large dataset in the pods of an Indexed Job.

The dataset stays where it is (a URL, a ConfigMap, a PersistentVolumeClaim); the pods
read it, each its shard, and print their profile in their log; this command waits,
merges the shards exactly, and writes the profile to ``--output``, a ConfigMap
(``--to-configmap``) or stdout. See :mod:`modelrollout.core.monitoring.profile_job`.

Exit status, as for ``profile``: 0 the profile was written, 2 bad flags, 3 the Job or a
shard failed, the wait timed out, the cluster refused a request, or the output (a file, the
ConfigMap) could not be written.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
import time
from dataclasses import dataclass

import urllib3

from modelrollout import __version__
from modelrollout.cli import argtypes, cluster
from modelrollout.core import errors
from modelrollout.core.monitoring import profile_job
from modelrollout.core.monitoring.profile import Profile
from modelrollout.core.monitoring.profile_job import BadReference, DataSource, Progress
from modelrollout.services.kube import Kube
from modelrollout.services.monitoring import profile_job as runner

IMAGE_ENV = "MODELROLLOUT_IMAGE"
DEFAULT_IMAGE = f"ghcr.io/modelrollout/modelrollout:{__version__}"
DEFAULT_TIMEOUT = "10m"
JOB_ONLY = ("data_configmap", "data_volume", "to_configmap", "keep_job", "image")


class BadFlags(Exception):
    """Flags that do not go together; the message names them."""


def add_arguments(
    parser: argparse.ArgumentParser, source: argparse._MutuallyExclusiveGroup
) -> None:
    """``--job`` and its flags; the data flags join the ``--data``/``--merge`` group."""
    source.add_argument(
        "--data-configmap",
        metavar="NAME[/KEY]",
        help="with --job: the dataset is this ConfigMap key (default its only key)",
    )
    source.add_argument(
        "--data-volume",
        metavar="CLAIM/PATH",
        help="with --job: the dataset is the file PATH on this PersistentVolumeClaim",
    )
    job = parser.add_argument_group(
        "on the cluster",
        "--job profiles the dataset (--data URL, --data-configmap or --data-volume) in\n"
        "the pods of an Indexed Job, --shard-count of them, and merges their profiles here",
    )
    job.add_argument("--job", action="store_true", help="profile in the pods of an Indexed Job")
    job.add_argument(
        "--image",
        metavar="IMAGE",
        help=f"the pods' image (default ${IMAGE_ENV}, else {DEFAULT_IMAGE})",
    )
    job.add_argument(
        "--image-pull-policy",
        choices=["Always", "IfNotPresent", "Never"],
        default="IfNotPresent",
        help="the pods' image pull policy (default %(default)s)",
    )
    job.add_argument(
        "--to-configmap",
        metavar="NAME[/KEY]",
        help=f"write the profile into this ConfigMap (key default {profile_job.DEFAULT_KEY}); "
        "other keys are kept",
    )
    job.add_argument(
        "--keep-job", action="store_true", help="leave the Job and its pods for inspection"
    )
    job.add_argument(
        "--timeout",
        default=None,
        metavar="DURATION",
        help=f"give up after this long (default {DEFAULT_TIMEOUT}); also the Job's deadline",
    )
    cluster.add_arguments(job)


def wants_job(args: argparse.Namespace) -> bool:
    """Whether the flags ask for the cluster; flags that need ``--job`` without it are
    refused."""
    if args.job:
        return True
    given = [name for name in JOB_ONLY if getattr(args, name, None)]
    given += [
        name for name in ("namespace", "kubeconfig", "context", "timeout") if getattr(args, name)
    ]
    if given:
        raise BadFlags(f"{argtypes.flag(given[0])} goes with --job")
    return False


def _source(args: argparse.Namespace) -> DataSource:
    if args.merge is not None:
        raise BadFlags("--merge: merges profile files here; --job profiles a dataset")
    choices = [
        ("--data-configmap", args.data_configmap, DataSource.from_config_map),
        ("--data-volume", args.data_volume, DataSource.from_volume),
        ("--data", args.data, DataSource.from_url),
    ]
    flag, ref, make = next(choice for choice in choices if choice[1] is not None)
    try:
        return make(ref)
    except BadReference as error:
        raise BadFlags(f"{flag}: {error}") from None


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The reading and size flags, passed on to every shard (as ``--flag=value``, so that
    a value may be empty or start with a dash)."""
    pairs: list[tuple[str, object]] = []
    for name in ("format", "prediction_field", "label_field"):
        if getattr(args, name) is not None:
            pairs.append((name, getattr(args, name)))
    for name in ("categorical", "feature"):
        pairs += [(name, value) for value in getattr(args, name) or []]
    for name in ("sketch_k", "category_limit", "max_features"):
        pairs.append((name, getattr(args, name)))
    return [f"{argtypes.flag(name)}={value}" for name, value in pairs]


@dataclass
class ClusterRun:
    """A merged profile and where it goes on the cluster."""

    profile: Profile
    kube: Kube
    namespace: str
    target: tuple[str, str] | None
    seconds: float

    def write(self, text: str) -> str | None:
        """Write ``text`` into the target ConfigMap; an error message, or None."""
        if self.target is None:
            return None
        name, key = self.target
        try:
            runner.write_config_map(self.kube, self.namespace, name, key, text)
        except (profile_job.TooLargeError, runner.ProfileJobError, errors.ApiError) as error:
            return f"--to-configmap: {error}"
        except urllib3.exceptions.HTTPError as error:
            return f"--to-configmap: the cluster: {error}"
        return None

    def note(self, shard_count: int) -> str:
        where = ""
        if self.target is not None:
            where = f"; written to ConfigMap {self.namespace}/{self.target[0]} key {self.target[1]}"
        return f"{shard_count} shard(s) on the cluster in {self.seconds:.1f}s{where}"


class RunError(Exception):
    """The Job did not give a profile, or the cluster refused a request."""


def _plan(args: argparse.Namespace) -> tuple[DataSource, tuple[str, str] | None, float, str]:
    if args.shard_index is not None:
        raise BadFlags("--shard-index: each pod of the Job takes its own; give --shard-count")
    if args.shard_count is None:
        raise BadFlags("--shard-count: how many pods profile the dataset; --job needs it")
    if args.profile_line:
        raise BadFlags("--profile-line: the shards print it; --job writes the merged profile")
    source = _source(args)
    target = None
    if args.to_configmap is not None:
        try:
            target = profile_job.parse_config_map_target(args.to_configmap)
        except BadReference as error:
            raise BadFlags(f"--to-configmap: {error}") from None
    timeout_text = args.timeout or DEFAULT_TIMEOUT
    try:
        timeout = argtypes.positive_seconds(timeout_text)
    except argparse.ArgumentTypeError as error:
        raise BadFlags(f"--timeout: {error}") from None
    return source, target, timeout, timeout_text


def run(args: argparse.Namespace) -> ClusterRun:
    """Profile in the cluster: :class:`BadFlags` for flags, :class:`RunError` when the Job
    gives no profile."""
    source, target, timeout, timeout_text = _plan(args)
    started = time.monotonic()
    try:
        kube, namespace = cluster.connect(args)
    except Exception as error:  # the kubernetes client raises plain exceptions here
        raise BadFlags(f"cannot use the kubeconfig: {error}") from None
    name = profile_job.job_name(secrets.token_hex(3))
    manifest = profile_job.job_manifest(
        name=name,
        namespace=namespace,
        source=source,
        shard_count=args.shard_count,
        image=args.image or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE,
        pull_policy=args.image_pull_policy,
        deadline_seconds=math.ceil(timeout),
        profile_args=_forwarded(args),
        keep=args.keep_job,
    )

    def report(progress: Progress) -> None:
        print(f"  {name}: {progress.summary()}", file=sys.stderr)

    job = runner.ProfileJob(
        kube=kube,
        manifest=manifest,
        source=source,
        shard_count=args.shard_count,
        timeout=timeout,
        timeout_text=timeout_text,
        keep=args.keep_job,
        on_progress=None if args.quiet else report,
    )
    if not args.quiet:
        print(
            f"Job {namespace}/{name}: {args.shard_count} shard(s) of {source.describe()}",
            file=sys.stderr,
        )
    try:
        profile = job.run()
    except runner.ProfileJobError as error:
        kept = f"\n  the Job is kept: kubectl -n {namespace} describe job {name}"
        raise RunError(f"{error}{kept if args.keep_job else ''}") from None
    except (errors.ApiError, urllib3.exceptions.HTTPError) as error:
        raise RunError(f"the cluster: {error}") from None
    return ClusterRun(profile, kube, namespace, target, time.monotonic() - started)
