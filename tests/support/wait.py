"""Polling with a deadline: the only way tests wait for something to happen."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

T = TypeVar("T")


class PollTimeoutError(AssertionError):
    """The condition did not become true before the deadline."""


def _fail(message: str, timeout: float, last: object, error: BaseException | None) -> NoReturn:
    detail = f"; last result: {last!r}"
    if error is not None:
        detail += f"; last error: {type(error).__name__}: {error}"
    raise PollTimeoutError(f"{message} (not true after {timeout:g}s{detail})") from error


def poll_until(
    fn: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.1,
    message: str,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `fn` until it returns something truthy and return that; fail after `timeout`.

    Exceptions of the types in `ignore` count as "not yet" (the last one is reported).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            result = fn()
        except ignore as err:
            error = err
        else:
            if result:
                return result
            last = result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _fail(message, timeout, last, error)
        time.sleep(min(interval, remaining))


async def async_poll_until(
    fn: Callable[[], T | Awaitable[T]],
    *,
    timeout: float,  # noqa: ASYNC109 - a polling deadline, like poll_until's
    interval: float = 0.1,
    message: str,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """`poll_until` for coroutines: `fn` may be a plain or an async function."""
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            value = fn()
            result: T = await value if inspect.isawaitable(value) else value
        except ignore as err:
            error = err
        else:
            if result:
                return result
            last = result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _fail(message, timeout, last, error)
        await asyncio.sleep(min(interval, remaining))
