"""How a failed call is repeated: the policy, and the tenacity arguments built from it.

Which failures are retried is each wire's rule (the manager's in
:mod:`platforms.client.retry`, the bridge's in :mod:`platforms.coverage.client._core`); how
often and how long to wait between attempts is this module's: bounded exponential backoff
with jitter, never beyond ``RetryPolicy.total_time``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import tenacity

__all__ = ["RetryPolicy", "retry_kwargs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter, for either client.

    The manager client retries ``Busy`` (any operation — nothing was run), ``RequestTimeout``
    on reads, ``ConnectionNotMade`` (any operation — nothing was sent), and — only if
    ``retry_no_connect_reads`` — ``NoConnect`` on reads. The bridge client's rule is in its
    own ``should_retry``.
    """

    attempts: int = 3
    initial_wait: float = 0.2
    max_wait: float = 2.0
    jitter: float = 0.2
    #: Give up retrying once this much time has passed since the first attempt.
    total_time: float = 20.0
    retry_no_connect_reads: bool = False


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
