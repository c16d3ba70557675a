"""Waiting for something another thread or process does: poll a condition until it holds, or
fail the test once a deadline passes, saying what never happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

#: What to wait for: a fixed phrase, or one built when the wait fails (a state, a worker's log).
What = str | Callable[[], str]


def _attempts(what: What, timeout: float) -> Iterator[None]:
    """One turn per poll until the deadline, one last look after it, then the failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        yield
    yield
    raise AssertionError(f"{what() if callable(what) else what}: not within {timeout} s")


def wait_until(predicate: Callable[[], Any], what: What = "condition", *, timeout: float = 10.0,
               interval: float = 0.05, pause: Callable[[float], Any] = time.sleep) -> Any:
    """The predicate's first truthy value. ``pause`` sleeps between polls (a browser test
    passes Playwright's own wait, so that the page keeps processing its events)."""
    for _ in _attempts(what, timeout):
        if value := predicate():
            return value
        pause(interval)


async def wait_until_async(predicate: Callable[[], Any], what: What = "condition", *,
                           timeout: float = 10.0, interval: float = 0.02) -> Any:
    """:func:`wait_until` for a test on the event loop: the loop keeps running between polls."""
    for _ in _attempts(what, timeout):
        if value := predicate():
            return value
        await asyncio.sleep(interval)
