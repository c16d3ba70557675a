"""The failures every upstream client shares, as base classes its own errors subclass.

Each client keeps its own error vocabulary (``ManagerApiError``, ``BridgeApiError``, with
their wire's codes and fields); the conditions that belong to the transport, not to a wire,
are these bases. So one ``except`` serves both upstreams:

* :class:`NothingSent` — the connection (or a pooled slot) was never obtained: safe to repeat.
* :class:`MaybeSent` — the connection failed after the request went out: no answer was read.
* :class:`CircuitOpen` — the target's breaker is open: the call failed fast, nothing was sent.

All three are :class:`TransportFailure`. Two more bases tell the breaker how an *answer*
counts (see :func:`platforms.transport.breaker.counts_as_failure`): :class:`UpstreamDown`
(the upstream answered that what stands behind it is unreachable) and :class:`ForeignAnswer`
(the answer was not the upstream's, e.g. a proxy's HTML page).

The bases carry no state of their own (no ``__init__``, except :class:`CircuitOpen`, which
the breaker raises as-is when a client names no class of its own), so they combine with any
client's root class.
"""

from __future__ import annotations

__all__ = [
    "CircuitOpen",
    "ForeignAnswer",
    "MaybeSent",
    "NothingSent",
    "TransportFailure",
    "UpstreamDown",
]


class TransportFailure(Exception):
    """The upstream was not reached, or its answer was lost: either client's, one base."""


class NothingSent(TransportFailure):
    """Nothing was sent (no connection, no pooled slot): repeating cannot apply anything twice."""


class MaybeSent(TransportFailure):
    """The connection failed after the request was (possibly) sent: no answer was read."""


class CircuitOpen(TransportFailure):
    """The target's circuit breaker is open: failing fast without touching the network.

    A client's own class puts this base *first* (``class CircuitOpen(transport.CircuitOpen,
    ClientError)``) and calls its root's ``__init__`` itself, so this ``__init__`` runs only
    for a breaker used without a client.
    """

    target: str
    retry_in: float

    def __init__(self, target: str, retry_in: float, operation: str | None = None) -> None:
        self.target = target
        self.retry_in = max(0.0, retry_in)
        self.operation = operation
        super().__init__(
            f"{target} is marked unreachable after repeated failures; "
            f"next probe in {self.retry_in:.1f} s"
        )


class UpstreamDown(Exception):
    """The upstream answered that the platform or terminal behind it is unreachable."""


class ForeignAnswer(Exception):
    """The answer was not the upstream's (a proxy page, a truncated body).

    Subclasses carry ``http_status`` (``None`` when there was no status to speak of).
    """

    http_status: int | None
