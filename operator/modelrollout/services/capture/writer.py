"""The writer thread: records leave the request path here and reach the files later.

The event loop must never wait for the disk. Writes to a regular file cannot be made
non-blocking, and a slow or full disk would stall every request on the loop, so the
files are written by one thread of their own. The request path only calls
:meth:`CaptureWriter.offer`, which checks the queue's bounds and either appends the raw
exchange or counts a drop: a few microseconds, no lock, no system call. Encoding the
JSON line (parsing the bodies, formatting the time) happens on the writer thread.

Waking a thread costs far more than appending to a queue (a system call, a context
switch, a hand-over of the interpreter lock), so the producer does not wake the writer
for each record. The writer wakes on its own every ``linger`` (10 ms), or as soon as a
full batch is waiting, and then writes everything queued in batches, one ``write`` each.
A record therefore reaches its file within about 10 ms, and the event loop pays for
about one wake-up per batch.

The queue is a ``collections.deque``, whose ``append`` and ``popleft`` are atomic, bounded
by the producer itself: the record count is the deque's length, and the bytes are two
counters, one written only by the producer and one only by the writer, so neither needs
a lock. Only one thread, the event loop's, may call :meth:`offer`.

Encoding holds the interpreter lock, which the event loop needs too. Between two records
the writer gives up the lock and the CPU (``os.sched_yield``), so even a long backlog
delays the loop by about one record's encoding at a time instead of a whole batch's.

Every flush interval a gzip file is flushed; at its size or age the file is rotated,
even when no record comes. :meth:`close` lets the writer finish what is queued, then
closes the file. If that takes longer than the timeout, the rest is counted as dropped
(``shutdown``) and the writer stops after the write it is in.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from modelrollout.core.capture import backlog
from modelrollout.core.capture.backlog import BacklogLimits
from modelrollout.core.capture.record import Exchange, RecordContext, RecordEncoder, Unrecordable
from modelrollout.core.capture.rotation import ROTATE_SHUTDOWN
from modelrollout.services.capture.files import CaptureFiles, WriteFailed
from modelrollout.services.capture.metrics import CaptureMetrics

log = logging.getLogger("modelrollout.capture")

BATCH_RECORDS = 32
BATCH_BYTES = 1 << 20
LINGER = 0.01
"""Seconds the writer sleeps between two looks at the queue, unless a batch is waiting."""
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
        linger: float = LINGER,
        monotonic: Callable[[], float] = time.monotonic,
        observer: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.files = files
        self.observer = observer
        self.context = context
        self._encoder = RecordEncoder(context)
        self.limits = limits
        self.flush_interval = flush_interval
        self.linger = linger
        self.metrics = metrics
        self._monotonic = monotonic
        self._queue: collections.deque[Exchange] = collections.deque()
        self._wake = threading.Event()
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
        metrics.watch_queue(lambda: len(self._queue), lambda: self.queued_bytes)

    @property
    def queued_records(self) -> int:
        return len(self._queue)

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
        waiting = len(self._queue)
        reason = backlog.refusal(
            self.limits, records=waiting, queued_bytes=self.queued_bytes, size=size
        )
        if self._closing:
            reason = backlog.DROP_SHUTDOWN
        if reason is not None:
            self._drops[reason].inc()
            return False
        self._offered_bytes += size
        self._queue.append(exchange)
        if waiting + 1 == BATCH_RECORDS:
            self._wake.set()
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
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abort = True
            self._discard_queued()
            log.warning("capture: the writer did not finish within %gs; dropped the rest", timeout)

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        next_flush = self._monotonic() + self.flush_interval
        while not self._abort:
            self._wake.wait(self._wait(next_flush))
            self._wake.clear()
            closing = self._closing  # read before draining: nothing is offered after it
            while self._queue and not self._abort:
                self._write(self._take())
            now = self._monotonic()
            try:
                if now >= next_flush:
                    next_flush = now + self.flush_interval
                    self.files.flush()
                self.files.tick()
            except OSError as error:
                self._log_error(error)
            if closing:
                break
        self._discard_queued()
        self.files.close(ROTATE_SHUTDOWN)

    def _wait(self, next_flush: float) -> float:
        deadline = min(next_flush, self._monotonic() + self.linger)
        rotation_deadline = self.files.deadline()
        if rotation_deadline is not None:
            deadline = min(deadline, rotation_deadline)
        return max(deadline - self._monotonic(), 0.0)

    def _take(self) -> list[Exchange]:
        """Up to a batch of what is queued."""
        batch: list[Exchange] = []
        taken = 0
        while self._queue and len(batch) < BATCH_RECORDS and taken < BATCH_BYTES:
            item = self._queue.popleft()
            batch.append(item)
            taken += item.size
        self._taken_bytes += taken
        return batch

    def _write(self, batch: list[Exchange]) -> None:
        lines = []
        events = []
        for exchange in batch:
            try:
                line, event = self._encoder.encode_event(exchange)
                lines.append(line)
                events.append(event)
            except Unrecordable as skip:
                self.metrics.skipped.labels(skip.reason).inc()
            except Exception:  # a record must never stop the writer
                log.exception("capture: cannot encode a record")
                self.metrics.dropped.labels(backlog.DROP_WRITE_ERROR).inc()
            # Let the event loop have the interpreter lock, and the CPU, between records.
            os.sched_yield()
        if not lines:
            return
        if self.observer is not None:
            for event in events:
                try:
                    self.observer(event)
                except Exception:  # the live window must never stop the writer
                    log.exception("capture: the live window refused a record")
        try:
            self.files.write(lines)
        except WriteFailed as failed:
            self.metrics.written.inc(failed.written)
            self.metrics.dropped.labels(backlog.DROP_WRITE_ERROR).inc(len(lines) - failed.written)
            self._log_error(failed.error)
        else:
            self.metrics.written.inc(len(lines))

    def _discard_queued(self) -> None:
        while True:
            try:
                item = self._queue.popleft()
            except IndexError:
                return
            self._taken_bytes += item.size
            self._drops[backlog.DROP_SHUTDOWN].inc()

    def _log_error(self, error: OSError) -> None:
        now = self._monotonic()
        if now - self._last_error_log >= ERROR_LOG_EVERY:
            self._last_error_log = now
            log.warning("capture: cannot write to %s: %s", self.files.directory, error)
