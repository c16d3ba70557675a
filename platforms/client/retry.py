"""Which failures are retried, and how (tenacity, exponential backoff with jitter).

Retried, bounded by ``RetryPolicy.attempts`` and ``RetryPolicy.total_time``:

* ``Busy`` — any operation: the server refused it before sending it to the platform.
* ``ConnectionNotMade`` — any operation: the TCP connection was never opened.
* ``RequestTimeout`` — reads only: a read that ran out of time changed nothing.
* ``NoConnect`` — reads only, and only with ``retry_no_connect_reads=True`` (off by
  default: an unreachable platform rarely recovers within a backoff of a few hundred
  milliseconds, and the circuit breaker is the right tool for it).

Never retried: ``OutcomeUnknown`` (and the write flavours of ``TransportError`` /
``InvalidResponse``), ``NoConnect`` on writes, validation and business errors,
``CircuitOpen``. A retried write resends the same prepared request, hence the same
``Idempotency-Key``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import tenacity

from .config import RetryPolicy
from .errors import Busy, ConnectionNotMade, NoConnect, RequestTimeout
from .operations import Operation

__all__ = ["async_retrying", "retry_kwargs", "should_retry", "sync_retrying"]

log = logging.getLogger(__name__)


def should_retry(exc: BaseException, op: Operation, policy: RetryPolicy) -> bool:
    if isinstance(exc, Busy | ConnectionNotMade):
        return True
    if op.is_write:
        return False
    if isinstance(exc, RequestTimeout):
        return True
    return isinstance(exc, NoConnect) and policy.retry_no_connect_reads


def retry_kwargs(
    name: str,
    policy: RetryPolicy,
    predicate: Callable[[BaseException], bool],
    *,
    server_delay: Callable[[BaseException], float | None] | None = None,
) -> dict:
    """tenacity arguments for ``policy``: which failures ``predicate`` retries, backoff with
    jitter, and — when ``server_delay(exc)`` names one (``Retry-After``) — at least that long
    a wait; a wait that would end beyond ``total_time`` is not started."""
    backoff = tenacity.wait_exponential_jitter(
        multiplier=policy.initial_wait, max=policy.max_wait, jitter=policy.jitter
    )

    def wait(state: tenacity.RetryCallState) -> float:
        delay = backoff(state)
        if server_delay is not None and state.outcome is not None:
            exc = state.outcome.exception()
            asked = server_delay(exc) if exc is not None else None
            if asked is not None:
                delay = max(delay, asked)
        return delay

    def _log(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info(
            "%s: attempt %d failed with %s; retrying in %.2f s",
            name,
            state.attempt_number,
            getattr(exc, "code", type(exc).__name__),
            state.upcoming_sleep,
        )

    return {
        "stop": tenacity.stop_after_attempt(max(1, policy.attempts))
        | (tenacity.stop_before_delay if server_delay else tenacity.stop_after_delay)(
            policy.total_time
        ),
        "wait": wait,
        "retry": tenacity.retry_if_exception(predicate),
        "before_sleep": _log,
        "reraise": True,
    }


def _kwargs(op: Operation, policy: RetryPolicy) -> dict:
    return retry_kwargs(op.name, policy, lambda exc: should_retry(exc, op, policy))


def sync_retrying(op: Operation, policy: RetryPolicy) -> tenacity.Retrying:
    return tenacity.Retrying(**_kwargs(op, policy))


def async_retrying(op: Operation, policy: RetryPolicy) -> tenacity.AsyncRetrying:
    return tenacity.AsyncRetrying(**_kwargs(op, policy))
