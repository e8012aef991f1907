"""The writer thread: records leave the request path here and reach the files later.

The event loop must never wait for the disk. Writes to a regular file cannot be made
non-blocking, and a slow or full disk would stall every request on the loop, so the
files are written by one thread of their own. The request path only calls
:meth:`CaptureWriter.offer`, which checks the queue's bounds and either enqueues the raw
exchange or counts a drop; it never blocks and never does more than a few microseconds
of work. Encoding the JSON line (parsing the bodies, formatting the time) happens on
the writer thread too.

The queue is a ``queue.SimpleQueue`` (it never blocks on ``put``) bounded by the
producer itself: the record count is the queue's own size, and the bytes are two
counters, one written only by the producer and one only by the writer, so neither needs
a lock. Only one thread, the event loop's, may call :meth:`offer`.

The writer takes what is queued in small batches, one ``write`` each. Between records it
yields the interpreter lock, so even a long backlog after a stall delays the event loop
by at most one record's encoding. Every flush interval a gzip file is flushed; at its
size or age the file is rotated.

:meth:`close` lets the writer finish what is queued, then closes the file. If that takes
longer than the timeout, the rest is counted as dropped (``shutdown``) and the writer
stops after the write it is in.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable

from modelrollout.core.capture import backlog
from modelrollout.core.capture.backlog import BacklogLimits
from modelrollout.core.capture.record import Exchange, RecordContext, Unrecordable, encode_record
from modelrollout.core.capture.rotation import ROTATE_SHUTDOWN
from modelrollout.services.capture.files import CaptureFiles
from modelrollout.services.capture.metrics import CaptureMetrics

log = logging.getLogger("modelrollout.capture")

BATCH_RECORDS = 32
BATCH_BYTES = 1 << 20
ERROR_LOG_EVERY = 60.0
"""Seconds between two log lines about failing writes (every failure is counted)."""


class CaptureWriter:
    """A bounded queue in front of :class:`CaptureFiles`, drained by one thread."""

    def __init__(
        self,
        files: CaptureFiles,
        *,
        context: RecordContext,
        limits: BacklogLimits,
        flush_interval: float,
        metrics: CaptureMetrics,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.files = files
        self.context = context
        self.limits = limits
        self.flush_interval = flush_interval
        self.metrics = metrics
        self._monotonic = monotonic
        self._queue: queue.SimpleQueue[Exchange | None] = queue.SimpleQueue()
        self._offered_bytes = 0
        self._taken_bytes = 0
        self._closing = False
        self._abort = False
        self._last_error_log = -math.inf
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._drops = {
            reason: metrics.dropped.labels(reason)
            for reason in (backlog.DROP_QUEUE_FULL, backlog.DROP_TOO_LARGE, backlog.DROP_SHUTDOWN)
        }
        metrics.watch_queue(self._queue.qsize, lambda: self.queued_bytes)

    @property
    def queued_records(self) -> int:
        return self._queue.qsize()

    @property
    def queued_bytes(self) -> int:
        return max(0, self._offered_bytes - self._taken_bytes)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def offer(self, exchange: Exchange) -> bool:
        """Queue a record for writing, or count it dropped. Never blocks."""
        size = exchange.size
        reason = backlog.refusal(
            self.limits, records=self._queue.qsize(), queued_bytes=self.queued_bytes, size=size
        )
        if self._closing:
            reason = backlog.DROP_SHUTDOWN
        if reason is not None:
            self._drops[reason].inc()
            return False
        self._offered_bytes += size
        self._queue.put(exchange)
        return True

    def close(self, timeout: float) -> None:
        """Write what is queued (for at most ``timeout`` seconds), then close the file.

        Blocks: call it from a thread (``asyncio.to_thread``) in async code.
        """
        self._closing = True
        if not self._thread.is_alive():
            self._discard_queued()
            self.files.close(ROTATE_SHUTDOWN)
            return
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abort = True
            self._discard_queued()
            log.warning("capture: the writer did not finish within %gs; dropped the rest", timeout)

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        next_flush = self._monotonic() + self.flush_interval
        stop = False
        while not stop and not self._abort:
            stop, batch = self._take(self._wait(next_flush))
            if batch:
                self._write(batch)
            now = self._monotonic()
            try:
                if now >= next_flush:
                    next_flush = now + self.flush_interval
                    self.files.flush()
                self.files.tick()
            except OSError as error:
                self._log_error(error)
        self._discard_queued()
        try:
            self.files.close(ROTATE_SHUTDOWN)
        except OSError as error:
            self._log_error(error)

    def _wait(self, next_flush: float) -> float:
        deadline = next_flush
        rotation_deadline = self.files.deadline()
        if rotation_deadline is not None:
            deadline = min(deadline, rotation_deadline)
        return max(deadline - self._monotonic(), 0.001)

    def _take(self, timeout: float) -> tuple[bool, list[Exchange]]:
        """Wait for a record, then take what else is queued, up to a batch."""
        batch: list[Exchange] = []
        taken = 0
        try:
            item = self._queue.get(timeout=timeout)
            while True:
                if item is None:
                    return True, batch
                batch.append(item)
                taken += item.size
                self._taken_bytes += item.size
                if len(batch) >= BATCH_RECORDS or taken >= BATCH_BYTES:
                    return False, batch
                item = self._queue.get_nowait()
        except queue.Empty:
            return False, batch

    def _write(self, batch: list[Exchange]) -> None:
        lines = []
        for exchange in batch:
            try:
                lines.append(encode_record(exchange, self.context))
            except Unrecordable as skip:
                self.metrics.skipped.labels(skip.reason).inc()
            except Exception:  # a record must never stop the writer
                log.exception("capture: cannot encode a record")
                self.metrics.dropped.labels(backlog.DROP_WRITE_ERROR).inc()
            os.sched_yield()
        if not lines:
            return
        try:
            self.files.write(b"".join(lines))
        except OSError as error:
            self.metrics.dropped.labels(backlog.DROP_WRITE_ERROR).inc(len(lines))
            self._log_error(error)
        else:
            self.metrics.written.inc(len(lines))

    def _discard_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._taken_bytes += item.size
                self._drops[backlog.DROP_SHUTDOWN].inc()

    def _log_error(self, error: OSError) -> None:
        now = self._monotonic()
        if now - self._last_error_log >= ERROR_LOG_EVERY:
            self._last_error_log = now
            log.warning("capture: cannot write to %s: %s", self.files.directory, error)
