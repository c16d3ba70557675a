"""Waiting for something another thread or process does: poll a condition until it holds, or
fail the test once a deadline passes, saying what never happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

#: What to wait for: a fixed phrase, or one built when the wait fails (a state, a worker's log).
What = str | Callable[[], str]


def _failure(what: What, timeout: float) -> AssertionError:
    return AssertionError(f"{what() if callable(what) else what}: not within {timeout} s")


def wait_until(predicate: Callable[[], Any], what: What = "condition", *, timeout: float = 10.0,
               interval: float = 0.05, pause: Callable[[float], Any] = time.sleep) -> Any:
    """The predicate's first truthy value. ``pause`` sleeps between polls (a browser test
    passes Playwright's own wait, so that the page keeps processing its events)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(what, timeout)
        pause(interval)


async def wait_until_async(predicate: Callable[[], Any], what: What = "condition", *,
                           timeout: float = 10.0, interval: float = 0.02) -> Any:
    """:func:`wait_until` for a test on the event loop: the loop keeps running between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(what, timeout)
        await asyncio.sleep(interval)
