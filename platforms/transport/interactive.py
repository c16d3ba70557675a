"""The interactive deadline: reads made while someone waits for a page are bounded as a whole.

A worker can afford a read's full server deadline (10 s for a read, 30 s for history) and a
retry after a ``Timeout``; a page cannot: a slow platform would hold it for as long as the
deadline and its retries add up to. Inside :func:`interactive` every *read* the transport sends

* tells the upstream the time that is left of the budget (the manager API's
  ``X-Request-Timeout``, at least :data:`MIN_SECONDS`, the API's smallest deadline, and never
  more than the operation's own default), and waits for the answer only :data:`MARGIN`
  longer than that (so the upstream's own ``Timeout`` answer arrives first);
* is never retried after a timeout or a lost answer, and never once the budget is spent;
* is not sent at all once less than :data:`LAST_CALL` is left: the caller gets the client's
  nothing-sent error at once and shows stored data.

So a page waits at most its budget - ``LAST_CALL`` + ``MIN_SECONDS`` + ``MARGIN`` on the
platform (3 s → 4.25 s at worst, about 3 s when one read waits the whole budget).

The budget is one per page, counted from :func:`interactive`'s entry, so sequential reads
share it; :func:`concurrently` sends a page's independent reads side by side. Writes keep
their own deadlines: a write cut short leaves its outcome unknown, which is worse than a
slow page. The state is a :class:`~contextvars.ContextVar`, so it follows the request into
the threads of :func:`concurrently` and into ``sync_to_async``, and never leaks into another
request or a Celery task.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LAST_CALL",
    "MARGIN",
    "MIN_SECONDS",
    "Budget",
    "budget",
    "concurrently",
    "interactive",
    "lift",
    "restore",
]

#: The smallest deadline the manager API accepts (``X-Request-Timeout`` is 1-300 s).
MIN_SECONDS = 1.0
#: How much longer than the deadline it sent the client waits for the upstream's answer
#: (its ``Timeout`` answer travels back; a server that ignores the header is cut off here).
MARGIN = 0.75
#: Less than this left of the budget: a read is not sent (it could only time out).
LAST_CALL = 0.5


@dataclass(frozen=True)
class Budget:
    """One page's time for live reads: ``seconds`` from ``started`` (``time.monotonic``)."""

    seconds: float
    started: float

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def spent(self) -> bool:
        return self.remaining() < LAST_CALL

    def deadline(self) -> float:
        """The deadline to tell the upstream now: what is left, but at least the minimum."""
        return max(MIN_SECONDS, self.remaining())

    def wait(self) -> float:
        """How long to wait for an answer sent now (the deadline, then :data:`MARGIN`)."""
        return self.deadline() + MARGIN


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "interactive_budget", default=None
)


@contextlib.contextmanager
def interactive(seconds: float) -> Iterator[Budget]:
    """Bound the reads sent inside the block to ``seconds`` in all (see the module doc)."""
    token = _budget.set(Budget(float(seconds), time.monotonic()))
    try:
        yield _budget.get()  # type: ignore[misc]
    finally:
        _budget.reset(token)


def lift() -> contextvars.Token:
    """Lift the enclosing budget (a Celery task run eagerly inside a page keeps a worker's
    deadlines) until :func:`restore` is given the token this returns."""
    return _budget.set(None)


def restore(token: contextvars.Token) -> None:
    try:
        _budget.reset(token)
    except ValueError:  # made in another context (a worker's thread): nothing to put back there
        _budget.set(None)


def budget() -> Budget | None:
    """The budget of the page being rendered, or ``None`` outside one."""
    return _budget.get()


# A small pool shared by every request of the process: its threads only wait on the network
# (no ORM inside: a pool thread's database connection would not see the request's transaction).
_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="interactive-read")


def concurrently(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` side by side and return their results in order; a call that raised gives
    its exception *as its result* (the caller decides which failures fall back to stored data).

    The first call runs in the caller's thread, the others in a shared pool, each in a copy of
    the caller's context (so the same interactive budget bounds them all).
    """
    futures = [_pool.submit(contextvars.copy_context().run, _outcome, call)
               for call in calls[1:]]
    results = [_outcome(calls[0])] if calls else []
    results.extend(future.result() for future in futures)
    return results


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:
        return exc
