"""The replay run loop: an open-loop sender that keeps its own clock.

The loop walks the plan (:mod:`modelrollout.core.replay.plan`) and, for each send,
waits until its intended time ``start + t_k``: it sleeps until :data:`SPIN_SECONDS`
before it, because event-loop timers wake up to a millisecond late, and spins for the
rest (see :data:`SPIN_SECONDS`). The loop never derives time from its sleeps: after each
wake-up it sends *everything* that is due and records, for each request, the intended
time it was computed for. Latency is then measured from that intended time, so a late
wake-up or a saturated client shows up as send lag and latency instead of silently
stretching the schedule (no coordinated omission). Times come from
:data:`~modelrollout.services.replay.transport.clock`, not the event loop's.

Each endpoint (target, and baseline when given) has its own concurrency limit. A due
send that finds the limit reached waits in a FIFO queue; it leaves as soon as a request
completes, with its lag recorded. A send still queued ``max_lag`` after its intended time
is *dropped*: counted per second and in total, reported in the result and in a warning.
The queue is therefore bounded by ``rate * max_lag`` and the run cannot fall ever further
behind a slow target.

When the scheduler is behind (a burst of due sends), it yields to the event loop every
few sends so that responses keep being read; otherwise a long burst would starve the
very requests it has just started.

Progress is reported through a callback at a fixed interval; the CLI draws a progress
bar with it and the operator could log it. A stop event (set on SIGINT/SIGTERM by the
CLI) ends scheduling early; in-flight requests still complete and the result is marked
as interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from modelrollout.core.replay.accumulator import ReplayAccumulator, classify_response
from modelrollout.core.replay.events import Event
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.plan import DatasetInfo, EmptyDatasetError, Plan, PlannedSend
from modelrollout.core.replay.quality import PredictionReader
from modelrollout.core.replay.result import (
    MalformedLine,
    ReplayResult,
    RunInfo,
    result_from_run,
)
from modelrollout.core.replay.run import ReplayRun
from modelrollout.core.replay.selection import (
    DatasetTally,
    EventReader,
    select_events,
)
from modelrollout.services.replay.dataset import LocalDataset, open_dataset
from modelrollout.services.replay.transport import (
    Transport,
    clock,
    make_transport,
    resolve_client,
)

START_LEAD = 0.02
"""Seconds between planning and the first intended send, so that it is not born late."""

BURST_YIELD = 32
"""While behind schedule, yield to the event loop after this many sends."""

SPIN_SECONDS = 0.0015
"""Event-loop timers wake up to a millisecond late: Python's loop rounds its epoll wait up
to whole milliseconds, uvloop (libuv) keeps its timers in milliseconds. A send woken by
such a timer alone leaves up to a millisecond late, and that lag is counted in the
latency. So the scheduler sleeps on the event loop's timer only until this long before a
send is due, hands the next part of the wait to :class:`_Waker` (a thread that sleeps
with the operating system's sub-millisecond timer), and spins for the last
:data:`FINE_SECONDS`."""

FINE_SECONDS = 0.0002
"""The last part of a wait, spent yielding to the event loop (which still reads answers
and writes requests) until the send is due: it absorbs the thread's wake-up latency. The
CPU a send costs in waiting is about this spin, not the whole of :data:`SPIN_SECONDS`.

It is fixed on purpose. A window sized from how late the waker's wake-ups came grows
without end: while the loop spins it holds the interpreter lock, so the waker's next
wake-up waits longer for it, which widens the window again (measured at 1,000 requests
per second: the window went to its 1 ms ceiling and the CPU per request from 0.23 to
0.88 ms, for no less lag)."""

PR_SET_TIMERSLACK = 29
"""prctl(2): the calling thread's timer slack, in nanoseconds."""

SWITCH_INTERVAL = 0.0002
"""The interpreter's thread switch interval while a replay sends: how long the waker may
wait for the interpreter lock when it has to wake a busy loop."""

HEADER_CACHE = 4096
"""Distinct header sets kept built, per endpoint."""

CACHE_MAX_EVENTS = 100_000
CACHE_MAX_BYTES = 64 * 1024 * 1024
"""A selection at most this large is kept in memory after the first pass, so that loops
over a small dataset at a high rate do not re-parse it; larger ones are streamed."""


@dataclass(slots=True)
class Progress:
    """A snapshot for progress displays."""

    elapsed: float
    planned_seconds: float
    expected: int | None
    scheduled: int
    sent: int
    ok: int
    errors: int
    dropped: int
    in_flight: int
    last_second_p99_ms: float | None
    phase: str = "sending"


ProgressCallback = Callable[[Progress], None]


def _endpoint_url(base: str, event: Event, use_event_path: bool) -> str:
    if not use_event_path or event.path is None:
        return base
    parts = urlsplit(base)
    path, _, query = event.path.partition("?")
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


class _Endpoint:
    """Sends to one URL under a concurrency limit, dropping sends past the max lag."""

    def __init__(
        self,
        which: int,
        url: str,
        transport: Transport,
        options: ReplayOptions,
        acc: ReplayAccumulator,
        reader: PredictionReader | None,
        start: float,
    ) -> None:
        self.which = which
        self.url = url
        self.transport = transport
        self.concurrency = options.concurrency
        self.max_lag = options.max_lag_seconds
        self.extra_headers = dict(options.headers)
        self.use_event_path = options.use_event_path
        self.acc = acc
        self.reader = reader
        self.start = start
        self.in_flight = 0
        self.queue: deque[PlannedSend] = deque()
        self._header_cache: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, str]] = {}
        self.loop = asyncio.get_running_loop()
        self.idle = asyncio.Event()
        self.idle.set()

    def submit(self, send: PlannedSend, now: float) -> None:
        if self.in_flight < self.concurrency and not self.queue:
            self._start(send)
        else:
            self.queue.append(send)
            self.expire(now)

    def expire(self, now: float) -> None:
        queue = self.queue
        while queue:
            due = self.start + queue[0].offset
            if now - due <= self.max_lag:
                break
            send = queue.popleft()
            self.acc.dropped(self.which, send.index, send.offset, now - due)
        self._update_idle()

    def _drain(self) -> None:
        now = clock()
        self.expire(now)
        while self.queue and self.in_flight < self.concurrency:
            self._start(self.queue.popleft())

    def _start(self, send: PlannedSend) -> None:
        self.in_flight += 1
        self.idle.clear()
        event = send.event
        url = _endpoint_url(self.url, event, self.use_event_path)
        due = self.start + send.offset
        samples = self.acc.requests if self.which == 0 else None
        if samples is not None and samples.wanted:
            samples.add(event.body)

        def done(sent_at: float, status: int, body: bytes, kind: str | None, _: str) -> None:
            service = clock() - sent_at
            self.in_flight -= 1
            prediction = None
            if kind is None:
                kind, prediction = classify_response(status, body, self.reader)
                if kind == "ok" and samples is not None and self.acc.responses.wanted:
                    self.acc.responses.add(body)
            self.acc.completed(
                self.which,
                send.index,
                send.offset,
                sent_at - due,
                service,
                kind,
                prediction,
                event.label,
            )
            self._drain()
            self._update_idle()

        self.transport.start(event.method, url, event.body, self._headers(event), done)

    def _headers(self, event: Event) -> Mapping[str, str]:
        key = (event.content_type, event.headers)
        headers = self._header_cache.get(key)
        if headers is None:
            headers = {"Content-Type": event.content_type}
            for name, value in event.headers:
                headers[name] = value
            if self.extra_headers:
                headers.update(self.extra_headers)
            if len(self._header_cache) >= HEADER_CACHE:
                self._header_cache.clear()
            self._header_cache[key] = headers
        return headers

    def _update_idle(self) -> None:
        if self.in_flight == 0 and not self.queue:
            self.idle.set()


class _Waker:
    """Wakes the event loop at a time given to well under a millisecond.

    One thread takes ``(when, future)`` requests, sleeps until ``when`` with
    ``time.sleep`` (the kernel's high-resolution timer) and completes the future through
    ``call_soon_threadsafe``, which wakes the loop at once. It costs a thread wake-up per
    wait, instead of a spin for the whole of the event loop's timer error.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._requests: queue.SimpleQueue[tuple[float, asyncio.Future[None]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="replay-waker", daemon=True)
        self._thread.start()

    def until(self, when: float) -> asyncio.Future[None]:
        """A future done at ``when`` (by :data:`clock`), or a little after."""
        future = self._loop.create_future()
        self._requests.put((when, future))
        return future

    def _run(self) -> None:
        _least_timer_slack()
        while (request := self._requests.get()) is not None:
            when, future = request
            wait = when - clock()
            if wait > 0:
                time.sleep(wait)
            try:
                self._loop.call_soon_threadsafe(_set_done, future)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return

    def close(self) -> None:
        self._requests.put(None)


def _least_timer_slack() -> None:
    """Ask Linux to wake this thread's sleeps on time: by default it may defer them by up to
    50 µs (the timer slack) to batch wake-ups. Elsewhere, or if refused, nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def event_loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: the event loop a run was sent from."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _events_factory(
    dataset: LocalDataset, reader: EventReader, cached: list[Event] | None
) -> Callable[[], Iterator[Event]]:
    def passes() -> Iterator[Event]:
        if cached is not None:
            return iter(cached)
        return select_events(dataset.lines(), reader, DatasetTally())

    return passes


def scan_dataset(
    dataset: LocalDataset, reader: EventReader, shard_index: int, shard_count: int
) -> tuple[DatasetTally, list[Event] | None]:
    """First pass: count and validate; raises EmptyDatasetError when nothing is usable.

    Also returns the selected events when they are few enough to keep in memory.
    """
    tally = DatasetTally(shard_index=shard_index, shard_count=shard_count)
    cached: list[Event] | None = []
    size = 0
    for event in select_events(dataset.lines(), reader, tally):
        if cached is not None:
            size += len(event.body) + 200
            if len(cached) >= CACHE_MAX_EVENTS or size > CACHE_MAX_BYTES:
                cached = None
            else:
                cached.append(event)
    if dataset.read_error is not None:
        line, reason = dataset.read_error
        tally.add_malformed(line, reason)
    if tally.selected_total == 0:
        detail = ""
        if tally.malformed_samples:
            sample = tally.malformed_samples[0]
            detail = f"; first problem: line {sample.line}: {sample.reason}"
        elif tally.filtered:
            detail = "; the selection (--since/--until/--filter/--sample) left nothing"
        raise EmptyDatasetError(
            f"no usable event in {dataset.source}: {tally.lines} lines, "
            f"{tally.malformed} malformed, {tally.filtered} filtered out{detail}"
        )
    return tally, cached


async def run_replay(
    job: ReplayRun,
    progress: ProgressCallback | None = None,
    *,
    progress_interval: float = 0.5,
    stop: asyncio.Event | None = None,
    reach_wait: float = 0.0,
) -> ReplayResult:
    """Run one replay (or one shard of it) and return its result.

    Raises ``DatasetError``/``EmptyDatasetError`` for unusable input and
    ``DatasetFetchError`` when a dataset URL cannot be fetched.
    """
    options = job.options
    reader = EventReader(
        selection=job.selection,
        label_field=options.label_field,
        require_timestamp=job.rate.speed is not None,
    )
    prediction_reader = (
        PredictionReader.create(
            options.prediction_path,
            options.prediction_kind,
            options.threshold,
            options.positive_label,
        )
        if options.prediction_path
        else None
    )
    async with open_dataset(job.events) as dataset:
        tally, cached = await asyncio.to_thread(
            scan_dataset, dataset, reader, job.index, job.shard_count
        )
        plan = Plan(
            job.rate,
            DatasetInfo(tally.selected_total, tally.first_timestamp, tally.last_timestamp),
        )
        acc = ReplayAccumulator(baseline=job.baseline is not None, reader=prediction_reader)
        unreachable = await wait_until_reachable(
            [u for u in (job.target, job.baseline) if u is not None], reach_wait
        )
        urls = [u for u in (job.target, job.baseline) if u is not None]
        client = resolve_client(job.client, urls)
        transports = [
            make_transport(client, url, options.concurrency, options.timeout_seconds)
            for url in urls
        ]
        started_at = _now_rfc3339()
        wall_start = time.monotonic()
        interrupted = False
        try:
            interrupted = await _send_all(
                job,
                plan,
                _events_factory(dataset, reader, cached),
                acc,
                prediction_reader,
                transports,
                progress,
                progress_interval,
                stop,
            )
        finally:
            await asyncio.gather(*(t.close() for t in transports), return_exceptions=True)
        duration = time.monotonic() - wall_start
    planned = plan.planned_duration if plan.planned_duration is not None else duration
    info = RunInfo(
        target=job.target,
        baseline=job.baseline,
        started_at=started_at,
        finished_at=_now_rfc3339(),
        duration_seconds=duration,
        planned_seconds=planned,
        shard_index=job.index,
        shard_count=job.shard_count,
        settings=job.settings(),
        criteria=job.criteria,
        lines=tally.lines,
        selected=tally.selected,
        filtered=tally.filtered,
        malformed=tally.malformed,
        malformed_lines=[
            MalformedLine(line=m.line, reason=m.reason) for m in tally.malformed_samples
        ],
        client=client,
        event_loop=event_loop_name(asyncio.get_running_loop()),
    )
    result = result_from_run(acc, info)
    for url in unreachable:
        result.warnings.insert(
            0,
            f"{url} accepted no connection in the {reach_wait:g} s before the run; "
            "the run went ahead and counted what failed",
        )
    if interrupted:
        result.warnings.insert(
            0, f"the run was interrupted after {duration:.1f} s: the result covers part of it"
        )
    return result


REACH_WAIT_SECONDS = 30.0
"""How long a run waits for its endpoints to accept connections before its clock starts."""


async def wait_until_reachable(
    urls: list[str], seconds: float, *, interval: float = 0.2
) -> list[str]:
    """Wait until a TCP connection to each URL's host and port succeeds, at most ``seconds``
    in all; the URLs that never accepted one.

    A model that has just turned ready may not be reachable through its Service yet (the
    node's proxy rules follow the endpoints a moment later); a replay that started then
    would count connection errors that belong to the cluster, not to the model.
    """
    if seconds <= 0:
        return []
    deadline = time.monotonic() + seconds
    waiting = list(urls)
    while waiting:
        still = []
        for url in waiting:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(parts.hostname, port), timeout=interval * 5
                )
            except (OSError, TimeoutError):
                still.append(url)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        waiting = still
        if not waiting or time.monotonic() >= deadline:
            break
        await asyncio.sleep(interval)
    return waiting


async def _send_all(
    job: ReplayRun,
    plan: Plan,
    events: Callable[[], Iterator[Event]],
    acc: ReplayAccumulator,
    prediction_reader: PredictionReader | None,
    transports: list[Transport],
    progress: ProgressCallback | None,
    progress_interval: float,
    stop: asyncio.Event | None,
) -> bool:
    loop = asyncio.get_running_loop()
    # Long-lived objects (imported modules, models) are moved out of the collector's
    # reach: a full collection over them takes tens of milliseconds, which would show up
    # as send lag. Young objects are still collected as usual.
    gc.collect()
    gc.freeze()
    start = clock() + START_LEAD
    urls = [job.target] + ([job.baseline] if job.baseline is not None else [])
    endpoints = [
        _Endpoint(i, url, transports[i], job.options, acc, prediction_reader, start)
        for i, url in enumerate(urls)
    ]
    expected = plan.expected_total()
    if expected is not None and job.shard_count > 1:
        expected = len(range(job.index, expected, job.shard_count))
    planned = plan.expected_duration()

    def snapshot(phase: str) -> Progress:
        target = acc.target
        last = target.timeline.get(max(target.timeline)) if target.timeline else None
        return Progress(
            elapsed=max(clock() - start, 0.0),
            planned_seconds=planned,
            expected=expected,
            scheduled=target.scheduled + len(endpoints[0].queue) + endpoints[0].in_flight,
            sent=target.sent,
            ok=target.ok,
            errors=target.error_count,
            dropped=target.dropped,
            in_flight=endpoints[0].in_flight,
            last_second_p99_ms=last.latency.quantile(0.99) if last else None,
            phase=phase,
        )

    reporter: asyncio.Task[None] | None = None
    if progress is not None:
        callback = progress

        async def report() -> None:
            while True:
                await asyncio.sleep(progress_interval)
                callback(snapshot("sending"))

        reporter = loop.create_task(report())

    interrupted = False
    waker = _Waker(loop)
    # The waker needs the interpreter lock to wake the loop; while the loop is busy, it
    # would otherwise wait up to 5 ms (the default switch interval) for it.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL))
    try:
        burst = 0
        for send in plan.sends(events, job.index, job.shard_count):
            if stop is not None and stop.is_set():
                interrupted = True
                break
            due = start + send.offset
            now = clock()
            if due > now:
                burst = 0
                while due > now and not (stop is not None and stop.is_set()):
                    wait = due - now
                    if wait > SPIN_SECONDS:
                        await asyncio.sleep(min(wait - SPIN_SECONDS, 0.25))
                    elif wait > FINE_SECONDS:
                        await waker.until(due - FINE_SECONDS)
                    else:
                        await asyncio.sleep(0)
                    now = clock()
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
                for endpoint in endpoints:
                    endpoint.expire(now)
            else:
                burst += 1
                if burst >= BURST_YIELD:
                    burst = 0
                    await asyncio.sleep(0)
                    now = clock()
            for endpoint in endpoints:
                endpoint.submit(send, now)
        # Let queued sends leave or expire, and in-flight requests finish.
        while not all(e.idle.is_set() for e in endpoints):
            now = clock()
            for endpoint in endpoints:
                endpoint.expire(now)
            waiters = [loop.create_task(e.idle.wait()) for e in endpoints]
            _, pending = await asyncio.wait(waiters, timeout=0.05)
            for waiter in pending:
                waiter.cancel()
    finally:
        waker.close()
        sys.setswitchinterval(switch_interval)
        gc.unfreeze()
        if reporter is not None:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        if progress is not None:
            progress(snapshot("done"))
    return interrupted


__all__ = [
    "EmptyDatasetError",
    "Progress",
    "run_replay",
    "scan_dataset",
]
