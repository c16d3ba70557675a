"""The manager client's circuit breaker: the transport's, refusing with this client's error.

The state machine, its Redis sharing and the per-target registry are
:mod:`platforms.transport.breaker`; the clients pass their own ``refusal`` on every call, so
this class matters only where a breaker is used by hand (``breaker.call(...)``).
"""

from __future__ import annotations

from platforms.transport import CircuitBreaker

from .errors import CircuitOpen

__all__ = ["PlatformBreaker"]


class PlatformBreaker(CircuitBreaker):
    """A trade platform's breaker: an open circuit raises :class:`~.errors.CircuitOpen`."""

    refusal = CircuitOpen
