"""Which manager-API failures are retried (the backoff itself is :mod:`platforms.transport.retry`).

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

from platforms.transport import RetryPolicy

from .errors import Busy, ConnectionNotMade, NoConnect, RequestTimeout
from .protocol import Operation

__all__ = ["should_retry"]


def should_retry(exc: BaseException, op: Operation, policy: RetryPolicy) -> bool:
    if isinstance(exc, Busy | ConnectionNotMade):
        return True
    if op.is_write:
        return False
    if isinstance(exc, RequestTimeout):
        return True
    return isinstance(exc, NoConnect) and policy.retry_no_connect_reads
