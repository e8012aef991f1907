"""The capture directory: the file being written, rotation, retention, recovery.

Only the writer thread touches these objects; nothing here is shared with the event loop.

Writes go straight to the file descriptor, one ``write`` per batch of records (split
where a file reaches its size), so a plain file always ends on a whole line except
during a write. With gzip, the compressor
keeps a little data back; :meth:`CaptureFiles.flush` pushes it out (a zlib sync flush)
every flush interval, so a file being written is readable up to the last flush. Closing
finishes the gzip stream, ``fsync``\\ s the file and renames it without ``.part``.

A failed write (a full disk, an I/O error) must not leave a torn line behind: the file
is cut back to its size before the write and closed (rotation reason ``error``), and the
next batch opens a new file. A ``.part`` file left by a proxy that was killed is renamed
at start-up; a plain one is first cut after its last whole line, in case the kill
interrupted a write. A gzip one is readable up to its last flush (a reader stops at the
truncated end, and the replay reports it as such).

The directory's capture files of this prefix are listed at start and after every
rotation, so files an uploader removes stop counting against ``max_total_bytes``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelrollout.core.capture import rotation
from modelrollout.core.capture.rotation import RotationPolicy
from modelrollout.services.capture.metrics import CaptureMetrics

GZIP_LEVEL = 6
GZIP_WBITS = 31
"""zlib's gzip container (16 + a 32 KiB window)."""


class DirectoryError(Exception):
    """The capture directory cannot be used (missing, not writable)."""


class WriteFailed(Exception):
    """A write failed after ``written`` of its lines were written."""

    def __init__(self, written: int, error: OSError) -> None:
        super().__init__(str(error))
        self.written = written
        self.error = error


@dataclass
class _OpenFile:
    name: str
    fd: int
    opened_at: float
    """On the monotonic clock, for the age limit."""
    compressor: zlib._Compress | None
    size: int = 0


def _trim_torn_line(path: Path, chunk: int = 1 << 16) -> int:
    """Cut a plain file after its last newline (a write cut short by a kill); its new size."""
    with path.open("r+b") as handle:
        end = handle.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - chunk)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                size = start + newline + 1
                handle.truncate(size)
                return size
            end = start
        handle.truncate(0)
        return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class CaptureFiles:
    """Rotating, size-bounded JSON Lines files in one directory."""

    def __init__(
        self,
        directory: Path,
        *,
        prefix: str,
        policy: RotationPolicy,
        max_total_bytes: int | None,
        compress: bool,
        metrics: CaptureMetrics,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.policy = policy
        self.max_total_bytes = max_total_bytes
        self.compress = compress
        self.metrics = metrics
        self._wall = wall_clock
        self._monotonic = monotonic
        self._open: _OpenFile | None = None
        self._closed: deque[tuple[str, int]] = deque()
        self._closed_bytes = 0
        self._sequence = 1

    # -- start-up ----------------------------------------------------------------------

    def prepare(self) -> list[str]:
        """Check the directory, finish ``.part`` files left behind, apply the total bound.

        Returns the names of the files recovered. Raises :class:`DirectoryError`.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DirectoryError(f"{self.directory}: cannot create: {error.strerror}") from None
        if not self.directory.is_dir():
            raise DirectoryError(f"{self.directory} is not a directory")
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise DirectoryError(f"{self.directory} is not writable")
        recovered = []
        for found in rotation.parse_names(self.prefix, self._listdir()):
            if not found.complete:
                with contextlib.suppress(OSError):
                    path = self.directory / found.name
                    if not found.compressed and _trim_torn_line(path) == 0:
                        path.unlink()
                        continue
                    os.replace(path, self.directory / found.final_name)
                    recovered.append(found.final_name)
        self._rescan()
        self._apply_total_bound()
        return recovered

    def _listdir(self) -> list[str]:
        try:
            return os.listdir(self.directory)
        except OSError:
            return []

    def _rescan(self) -> None:
        files = rotation.parse_names(self.prefix, self._listdir())
        self._sequence = max(self._sequence, rotation.next_sequence(files))
        closed: deque[tuple[str, int]] = deque()
        for found in files:
            if found.complete:
                try:
                    closed.append((found.name, (self.directory / found.name).stat().st_size))
                except OSError:
                    continue
        self._closed = closed
        self._closed_bytes = sum(size for _, size in closed)
        self._update_disk_gauge()

    # -- writing -----------------------------------------------------------------------

    @property
    def open_name(self) -> str | None:
        return None if self._open is None else self._open.name

    @property
    def disk_bytes(self) -> int:
        return self._closed_bytes + (0 if self._open is None else self._open.size)

    def deadline(self) -> float | None:
        """When, on the monotonic clock, the open file reaches its age limit."""
        return None if self._open is None else self.policy.deadline(self._open.opened_at)

    def write(self, lines: Sequence[bytes]) -> None:
        """Append whole lines, closing a file at its size limit between two lines.

        A plain file never grows past the limit (unless one line alone is larger); a gzip
        file is closed once its compressed size reaches it. Raises :class:`WriteFailed`,
        saying how many lines made it, after cutting the open file back to its last line.
        """
        limit = self.policy.max_file_bytes
        written = 0
        segment: list[bytes] = []
        pending = 0
        try:
            self.tick()
            for line in lines:
                current = self._open or self._open_new()
                if current.compressor is not None:
                    self._append(current, [line])
                    written += 1
                    if limit is not None and current.size >= limit:
                        self.close(rotation.ROTATE_SIZE)
                    continue
                used = current.size + pending
                if limit is not None and used > 0 and used + len(line) > limit:
                    if segment:
                        self._append(current, segment)
                        written += len(segment)
                        segment, pending = [], 0
                    self.close(rotation.ROTATE_SIZE)
                    current = self._open_new()
                segment.append(line)
                pending += len(line)
            if segment and self._open is not None:
                self._append(self._open, segment)
                written += len(segment)
            self.tick()
        except OSError as error:
            raise WriteFailed(written, error) from error
        self._apply_total_bound()

    def _append(self, current: _OpenFile, lines: list[bytes]) -> None:
        before = current.size
        data = b"".join(lines)
        try:
            if current.compressor is not None:
                data = current.compressor.compress(data)
            if data:
                self._write(current, data)
        except OSError:
            self.metrics.write_errors.inc()
            self._abandon(current, before)
            raise

    def flush(self) -> None:
        """Push out what the compressor holds (nothing to do for plain files)."""
        current = self._open
        if current is None or current.compressor is None:
            return
        before = current.size
        try:
            self._write(current, current.compressor.flush(zlib.Z_SYNC_FLUSH))
        except OSError:
            self.metrics.write_errors.inc()
            self._abandon(current, before)
            raise

    def tick(self) -> None:
        """Close the open file if it has reached its size or age."""
        current = self._open
        if current is None:
            return
        reason = self.policy.due(
            size=current.size, opened_at=current.opened_at, now=self._monotonic()
        )
        if reason is not None:
            self.close(reason)

    def close(self, reason: str = rotation.ROTATE_SHUTDOWN) -> None:
        """Finish, sync and rename the open file; then apply the total bound."""
        current = self._open
        if current is None:
            return
        try:
            if current.compressor is not None:
                self._write(current, current.compressor.flush(zlib.Z_FINISH))
            os.fsync(current.fd)
        except OSError:
            self.metrics.write_errors.inc()
            reason = rotation.ROTATE_ERROR
        self._finish(current, reason)

    # -- internals ---------------------------------------------------------------------

    def _open_new(self) -> _OpenFile:
        while True:
            name = rotation.file_name(
                self.prefix, self._wall(), self._sequence, compressed=self.compress
            )
            self._sequence += 1
            try:
                fd = os.open(
                    self.directory / name,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                    0o644,
                )
            except FileExistsError:
                continue
            except OSError:
                self.metrics.write_errors.inc()
                raise
            break
        compressor = (
            zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS) if self.compress else None
        )
        self._open = _OpenFile(name, fd, self._monotonic(), compressor)
        return self._open

    def _write(self, current: _OpenFile, data: bytes) -> None:
        _write_all(current.fd, data)
        current.size += len(data)
        self.metrics.bytes_written.inc(len(data))
        self._update_disk_gauge()

    def _abandon(self, current: _OpenFile, size: int) -> None:
        """After a failed write: cut the torn tail and close the file as it stands."""
        with contextlib.suppress(OSError):
            os.ftruncate(current.fd, size)
        current.size = size
        self._finish(current, rotation.ROTATE_ERROR)

    def _finish(self, current: _OpenFile, reason: str) -> None:
        with contextlib.suppress(OSError):
            os.close(current.fd)
        self._open = None
        final = current.name.removesuffix(rotation.PART_SUFFIX)
        try:
            if current.size == 0:
                os.unlink(self.directory / current.name)
            else:
                os.replace(self.directory / current.name, self.directory / final)
        except OSError as error:
            if error.errno != errno.ENOENT:
                self.metrics.write_errors.inc()
        if current.size > 0:
            self.metrics.rotated.labels(reason).inc()
        self._rescan()
        self._apply_total_bound()

    def _apply_total_bound(self) -> None:
        open_bytes = 0 if self._open is None else self._open.size
        if self.max_total_bytes is None or self._closed_bytes + open_bytes <= self.max_total_bytes:
            return
        doomed = rotation.to_delete(
            list(self._closed), open_bytes=open_bytes, max_total_bytes=self.max_total_bytes
        )
        for name in doomed:
            entry = self._closed.popleft()
            self._closed_bytes -= entry[1]
            try:
                os.unlink(self.directory / name)
            except FileNotFoundError:
                continue
            except OSError:
                self.metrics.write_errors.inc()
                continue
            self.metrics.deleted.inc()
        self._update_disk_gauge()

    def _update_disk_gauge(self) -> None:
        self.metrics.disk_bytes.set(self.disk_bytes)
