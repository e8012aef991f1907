"""Run reconciles per object: one at a time, coalesced, and re-queued when time matters.

kopf delivers watch events; a rollout also has to move when *time* passes (a bake step
ends, a replay is polled). Per-object timers in kopf add a finalizer to the user's object,
which blocks deletion whenever the operator is down, so time is handled here instead, as
controller-runtime does with ``RequeueAfter``:

* every trigger (a watch event, a requeue) asks for a reconcile of one key;
* at most one reconcile per key runs at a time; triggers that arrive meanwhile collapse
  into one more run afterwards;
* the earliest requested time wins;
* a reconcile says what comes next (:mod:`.reconciling`): ``Requeue`` after some seconds,
  ``Done`` (the resync period, or nothing until an event for an object waiting to be
  fixed), or ``Gone``, which forgets the key;
* errors are retried with the delay a ``TemporaryError`` carries, or with backoff;
* with leader election, a replica that does not hold the Lease runs no reconcile: its keys
  wait, checking again every second, until it does;
* the API requests of each reconcile are counted (:mod:`.apicalls`) into the histogram
  ``modelrollout_api_requests_per_reconcile``.

Nothing here is state that matters across restarts: on start, kopf lists every object,
each gets a reconcile, and the status says where each rollout stood.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from modelrollout.core import errors
from modelrollout.services import apicalls, metrics, reconciling

Key = tuple[str, str]
ReconcileFn = Callable[[str, str], reconciling.Result]

log = logging.getLogger("modelrollout.scheduler")

MAX_BACKOFF = 60.0
FOLLOWER_RECHECK = 1.0


@dataclass
class _Slot:
    running: bool = False
    again: bool = False
    timer: asyncio.TimerHandle | None = None
    due: float | None = None
    failures: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Scheduler:
    """Coalescing per-key reconcile runner; the sync reconcile runs in a worker thread."""

    def __init__(
        self,
        name: str,
        reconcile: ReconcileFn,
        *,
        resync: float = 60.0,
        gate: Callable[[], bool] = lambda: True,
    ) -> None:
        self.name = name
        self.reconcile = reconcile
        self.resync = resync
        self.gate = gate
        self.slots: dict[Key, _Slot] = {}
        # Keys whose object is gone: events of what they owned do not bring them back.
        self.gone: set[Key] = set()

    def trigger(self, key: Key) -> None:
        """Ask for a reconcile of ``key`` as soon as possible (an event of the object)."""
        self.gone.discard(key)
        self._trigger(key)

    def trigger_owner(self, key: Key) -> None:
        """An event of an object that ``key`` owns: a reconcile, unless ``key`` is gone."""
        if key not in self.gone:
            self._trigger(key)

    def _trigger(self, key: Key) -> None:
        slot = self.slots.setdefault(key, _Slot())
        if slot.running:
            slot.again = True
            return
        self._cancel_timer(slot)
        slot.running = True
        slot.task = asyncio.get_running_loop().create_task(self._run(key, slot))

    def forget(self, key: Key) -> None:
        """The object is gone: drop its timer and its metric series."""
        self.gone.add(key)
        slot = self.slots.pop(key, None)
        if slot is not None:
            self._cancel_timer(slot)
        metrics.forget(self.name, *key)

    def after(self, key: Key, delay: float) -> None:
        """Ask for a reconcile of ``key`` in ``delay`` seconds (the earliest request wins)."""
        loop = asyncio.get_running_loop()
        slot = self.slots.setdefault(key, _Slot())
        due = loop.time() + max(delay, 0.0)
        if slot.due is not None and slot.due <= due and slot.timer is not None:
            return
        self._cancel_timer(slot)
        slot.due = due
        slot.timer = loop.call_at(due, self._fire, key)

    def _fire(self, key: Key) -> None:
        slot = self.slots.get(key)
        if slot is None:
            return
        slot.timer = None
        slot.due = None
        self._trigger(key)

    @staticmethod
    def _cancel_timer(slot: _Slot) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
        slot.timer = None
        slot.due = None

    async def _run(self, key: Key, slot: _Slot) -> None:
        try:
            while True:
                slot.again = False
                delay = await self._once(key, slot)
                if key not in self.slots:
                    return
                if not slot.again:
                    if delay is not None:
                        self.after(key, delay)
                    return
        finally:
            slot.running = False

    def _failed(self, key: Key, slot: _Slot, exc: Exception) -> float:
        """Count a failed reconcile and say when to try again, by the kind of error:

        * temporary (a conflict, an apiserver hiccup): after the error's own delay;
        * permanent (retrying cannot help until the object or the RBAC changes): at the
          resync, with one line and no traceback;
        * anything else (a bug): with exponential backoff and the traceback.
        """
        namespace, name = key
        slot.failures += 1
        metrics.RECONCILE_ERRORS.labels(self.name).inc()
        if isinstance(exc, errors.TemporaryError):
            delay, outcome = exc.delay, "retry"
            log.warning("%s %s/%s: %s; retrying in %.1fs", self.name, namespace, name, exc, delay)
        elif isinstance(exc, errors.PermanentError):
            delay, outcome = self.resync, "error"
            log.error(
                "%s %s/%s: %s; looking again in %.0fs", self.name, namespace, name, exc, delay
            )
        else:
            delay, outcome = min(MAX_BACKOFF, 2.0 ** min(slot.failures, 6)), "error"
            log.error(
                "%s %s/%s failed; retrying in %.1fs",
                self.name,
                namespace,
                name,
                delay,
                exc_info=exc,
            )
        metrics.RECONCILES.labels(self.name, outcome).inc()
        return delay

    def _counted(self, namespace: str, name: str) -> reconciling.Result:
        """The reconcile, in its worker thread, with its API requests counted."""
        with apicalls.tally() as counted:
            try:
                return self.reconcile(namespace, name)
            finally:
                metrics.API_REQUESTS_PER_RECONCILE.labels(self.name).observe(counted.total)

    async def _once(self, key: Key, slot: _Slot) -> float | None:
        """One reconcile; the seconds until the next, or None for none until an event."""
        namespace, name = key
        if not self.gate():
            # Another replica leads: ask again soon, so that this one acts within a second
            # or so of taking the lease over.
            return FOLLOWER_RECHECK
        try:
            with metrics.RECONCILE_SECONDS.labels(self.name).time():
                result = await asyncio.to_thread(self._counted, namespace, name)
        except Exception as exc:
            return self._failed(key, slot, exc)
        metrics.RECONCILES.labels(self.name, "ok").inc()
        slot.failures = 0
        match result:
            case reconciling.Gone():
                self.forget(key)
                return None
            case reconciling.Requeue(after=seconds):
                return min(seconds, self.resync)
            case reconciling.Done(resync=True):
                return self.resync
            case _:
                return None
