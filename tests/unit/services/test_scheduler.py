"""The per-object scheduler: one reconcile at a time per key, coalescing, requeueing."""

from __future__ import annotations

import asyncio
import threading

from modelrollout.core import errors
from modelrollout.services import reconciling
from modelrollout.services.scheduler import Scheduler
from support.wait import async_poll_until


class Recorder:
    """A reconcile function that records calls and can be held inside a call."""

    def __init__(
        self, requeue: float | None = None, result: reconciling.Result | None = None
    ) -> None:
        self.calls: list[tuple[str, str]] = []
        self.running = 0
        self.max_running = 0
        self.release = threading.Event()
        self.release.set()
        self.requeue = requeue
        self.lock = threading.Lock()
        self.fail_times = 0
        self.result = result
        self.permanent: errors.PermanentError | None = None

    def __call__(self, namespace: str, name: str) -> reconciling.Result:
        with self.lock:
            self.calls.append((namespace, name))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            self.release.wait(timeout=10)
            if self.fail_times > 0:
                self.fail_times -= 1
                raise errors.TemporaryError("not yet", delay=0.05)
            if self.permanent is not None:
                raise self.permanent
            return self.result or reconciling.after(self.requeue)
        finally:
            with self.lock:
                self.running -= 1


async def test_triggers_during_a_run_collapse_into_one_more_run():
    rec = Recorder()
    rec.release.clear()
    scheduler = Scheduler("test", rec, resync=3600)
    key = ("ns", "a")
    scheduler.trigger(key)
    await async_poll_until(lambda: rec.running == 1, timeout=5, message="first run started")
    for _ in range(5):
        scheduler.trigger(key)
    rec.release.set()
    await async_poll_until(
        lambda: len(rec.calls) == 2 and rec.running == 0, timeout=5, message="exactly one extra run"
    )
    assert rec.max_running == 1
    scheduler.forget(key)


async def test_keys_run_independently():
    rec = Recorder()
    scheduler = Scheduler("test", rec, resync=3600)
    for name in ("a", "b", "c"):
        scheduler.trigger(("ns", name))
    await async_poll_until(lambda: len(rec.calls) == 3, timeout=5, message="three runs")
    assert sorted(rec.calls) == [("ns", "a"), ("ns", "b"), ("ns", "c")]


async def test_requeue_after_runs_again_and_forget_stops_it():
    rec = Recorder(requeue=0.05)
    scheduler = Scheduler("test", rec, resync=3600)
    key = ("ns", "a")
    scheduler.trigger(key)
    await async_poll_until(lambda: len(rec.calls) >= 3, timeout=5, message="requeued runs")
    scheduler.forget(key)
    await async_poll_until(lambda: rec.running == 0, timeout=5, message="idle")
    # nothing is kept for a forgotten key, so no timer can fire for it again
    assert key not in scheduler.slots


async def test_temporary_errors_are_retried_with_their_delay():
    rec = Recorder()
    rec.fail_times = 2
    scheduler = Scheduler("test", rec, resync=3600)
    scheduler.trigger(("ns", "a"))
    await async_poll_until(
        lambda: len(rec.calls) == 3 and rec.running == 0,
        timeout=5,
        message="two retries then success",
    )
    assert scheduler.slots[("ns", "a")].failures == 0
    scheduler.forget(("ns", "a"))


async def test_a_follower_runs_nothing_until_it_leads(monkeypatch):
    monkeypatch.setattr("modelrollout.services.scheduler.FOLLOWER_RECHECK", 0.05)
    rec = Recorder()
    leading = threading.Event()
    scheduler = Scheduler("test", rec, resync=3600, gate=leading.is_set)
    key = ("ns", "a")
    scheduler.trigger(key)
    # the key waits, re-checking the gate, and never reaches the reconcile
    await async_poll_until(
        lambda: scheduler.slots[key].timer is not None, timeout=5, message="re-check scheduled"
    )
    assert rec.calls == []
    leading.set()
    await async_poll_until(lambda: rec.calls == [key], timeout=5, message="runs once leading")
    scheduler.forget(key)


async def test_gone_forgets_the_key_and_owned_objects_do_not_bring_it_back():
    rec = Recorder(result=reconciling.Gone())
    scheduler = Scheduler("test", rec, resync=0.05)
    key = ("ns", "deleted")
    scheduler.trigger(key)
    await async_poll_until(lambda: key not in scheduler.slots, timeout=5, message="forgotten")
    assert rec.calls == [key]
    # the garbage collector deletes what it owned: those events change nothing
    scheduler.trigger_owner(key)
    assert key not in scheduler.slots
    assert rec.calls == [key]
    # the object itself appears again (created anew): it is reconciled again
    rec.result = reconciling.Done(resync=False)
    scheduler.trigger(key)
    await async_poll_until(lambda: len(rec.calls) == 2, timeout=5, message="reconciled again")
    scheduler.forget(key)


async def test_an_object_waiting_for_an_edit_is_not_resynced():
    rec = Recorder(result=reconciling.Done(resync=False))
    scheduler = Scheduler("test", rec, resync=0.01)
    key = ("ns", "invalid")
    scheduler.trigger(key)
    await async_poll_until(
        lambda: rec.calls == [key] and not scheduler.slots[key].running,
        timeout=5,
        message="one reconcile",
    )
    assert scheduler.slots[key].timer is None  # no resync is due
    scheduler.forget(key)


async def test_permanent_errors_wait_for_the_resync_without_a_backoff_loop(caplog):
    rec = Recorder()
    rec.permanent = errors.Forbidden(403, "get deployments", "RBAC says no")
    scheduler = Scheduler("test", rec, resync=3600)
    key = ("ns", "a")
    scheduler.trigger(key)
    await async_poll_until(
        lambda: rec.calls == [key] and not scheduler.slots[key].running,
        timeout=5,
        message="one reconcile",
    )
    slot = scheduler.slots[key]
    assert slot.due is not None
    assert slot.due - asyncio.get_running_loop().time() > 3000  # the resync, not 2**n seconds
    (record,) = [r for r in caplog.records if "RBAC says no" in r.getMessage()]
    assert record.exc_info is None  # one line, no traceback
    scheduler.forget(key)
