"""The replay's waker thread sleeps with no timer slack, so its wake-ups are not deferred."""

from __future__ import annotations

import ctypes
import sys
import threading

import pytest

from modelrollout.services.replay.runner import _least_timer_slack

PR_GET_TIMERSLACK = 30


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timer slack is Linux's")
def test_the_thread_that_asks_gets_the_least_slack_and_others_keep_theirs() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    seen: dict[str, int] = {}

    def waker() -> None:
        seen["before"] = libc.prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)
        _least_timer_slack()
        seen["after"] = libc.prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)

    thread = threading.Thread(target=waker)
    thread.start()
    thread.join()
    assert seen["before"] > 1  # the default, 50 µs
    assert seen["after"] == 1
    assert libc.prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == seen["before"]  # this thread's own
