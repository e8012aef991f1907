"""When a capture file is closed, what it is called, and which old files make room.

Files are named ``<prefix>-<UTC opening time>-<sequence>.jsonl`` (``.jsonl.gz`` with gzip),
e.g. ``capture-20261201T120000Z-000042.jsonl.gz``. The file being written carries a
further ``.part`` suffix and is renamed when it is closed, so anything that picks files
up (an uploader, a replay) takes only names without ``.part`` and never reads a file
that is still growing. Names sort by time and sequence, and the sequence continues
across restarts (it starts after the highest one already in the directory), so the
prefix, a pod name for instance, is all that is needed to keep the files of several
proxies apart once they are collected in one place.

A file is closed when it reaches its size or its age, whichever comes first
(:meth:`RotationPolicy.due`). The total size of the directory's capture files is
bounded: after every write, the oldest closed files are deleted until the closed files
and the open one fit (:func:`to_delete`). The open file is never deleted, which is why
a file's size limit may not exceed the total.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SUFFIX = ".jsonl"
GZIP_SUFFIX = ".jsonl.gz"
PART_SUFFIX = ".part"
PREFIX_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"

ROTATE_SIZE = "size"
ROTATE_AGE = "age"
ROTATE_SHUTDOWN = "shutdown"
ROTATE_ERROR = "error"

_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class RotationPolicy:
    """Close a file at ``max_file_bytes`` on disk or ``max_file_age`` seconds, if set."""

    max_file_bytes: int | None = None
    max_file_age: float | None = None

    def due(self, *, size: int, opened_at: float, now: float) -> str | None:
        """Why the open file must be closed now (``size`` or ``age``), or ``None``."""
        if self.max_file_bytes is not None and size >= self.max_file_bytes:
            return ROTATE_SIZE
        if self.max_file_age is not None and now - opened_at >= self.max_file_age:
            return ROTATE_AGE
        return None

    def deadline(self, opened_at: float) -> float | None:
        """When the open file reaches its age, so an idle writer wakes up to close it."""
        return None if self.max_file_age is None else opened_at + self.max_file_age


@dataclass(frozen=True, order=True)
class CaptureFile:
    """A capture file's name, parsed. Sorting puts the oldest first."""

    stamp: str
    sequence: int
    name: str
    compressed: bool
    complete: bool

    @property
    def final_name(self) -> str:
        """The name once closed (without ``.part``)."""
        return self.name.removesuffix(PART_SUFFIX)


def file_name(prefix: str, opened_at: float, sequence: int, *, compressed: bool) -> str:
    """The name of a new, open file (ending in ``.part``)."""
    stamp = time.strftime(_STAMP_FORMAT, time.gmtime(opened_at))
    suffix = GZIP_SUFFIX if compressed else SUFFIX
    return f"{prefix}-{stamp}-{sequence:06d}{suffix}{PART_SUFFIX}"


def _name_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(
        rf"^{re.escape(prefix)}-(\d{{8}}T\d{{6}}Z)-(\d{{6,}})\.jsonl(\.gz)?({re.escape(PART_SUFFIX)})?$"
    )


def parse_names(prefix: str, names: Iterable[str]) -> list[CaptureFile]:
    """The capture files of this prefix among ``names``, oldest first; others are ignored."""
    pattern = _name_pattern(prefix)
    found = []
    for name in names:
        match = pattern.match(name)
        if match is not None:
            stamp, sequence, gz, part = match.groups()
            found.append(CaptureFile(stamp, int(sequence), name, gz is not None, part is None))
    return sorted(found)


def next_sequence(files: Iterable[CaptureFile]) -> int:
    """One more than the highest sequence present (1 in an empty directory)."""
    return max((f.sequence for f in files), default=0) + 1


def to_delete(
    closed: Sequence[tuple[str, int]], *, open_bytes: int, max_total_bytes: int | None
) -> list[str]:
    """The oldest closed files to delete so that they and the open file fit the total.

    ``closed`` holds ``(name, size)`` pairs, oldest first.
    """
    if max_total_bytes is None:
        return []
    total = open_bytes + sum(size for _, size in closed)
    doomed = []
    for name, size in closed:
        if total <= max_total_bytes:
            break
        doomed.append(name)
        total -= size
    return doomed
