"""Exceptions of the LP terminal-bridge client, mapped from the wire's error answers.

Every error is a :class:`BridgeApiError`. The bridge answers ``{"error": {"code", "message"}}``
with ``400 ValidationError``, ``401 Unauthorized``, ``404 NotFound``, ``409 TaskConflict``,
``429 RateLimited`` (with ``Retry-After``) or ``502 BridgeUnavailable``; client-side
conditions (nothing sent, connection lost after sending, an answer that is not the bridge's,
an open circuit) have their own classes. Messages never contain the API key, the terminal
password or a session id.

The transport's conditions also subclass the shared bases of :mod:`platforms.transport.errors`
(``ConnectionNotMade`` is a ``NothingSent``, ``TransportError`` a ``MaybeSent``,
``CircuitOpen`` the transport's ``CircuitOpen``), so ``except NothingSent`` catches the
manager's and the bridge's alike.
"""

from __future__ import annotations

from platforms.transport import errors as transport

__all__ = [
    "BridgeApiError",
    "BridgeUnavailable",
    "CircuitOpen",
    "ConnectionNotMade",
    "EventStreamLost",
    "InvalidResponse",
    "NotFound",
    "RateLimited",
    "TaskConflict",
    "TransportError",
    "Unauthorized",
    "ValidationError",
    "WriteOutcomeUnknown",
    "error_for",
]


class BridgeApiError(Exception):
    """Base class; also raised as-is for an error code this client does not know.

    Attributes: ``code`` (the wire's ``error.code`` or a client-side code), ``message``,
    ``operation`` (e.g. ``"orders.submit"``), ``http_status`` (``None`` when there was no
    answer) and ``request_id`` (the ``x-request-id`` of a write: resubmit with it to get the
    same task back instead of a second one).
    """

    default_code = "BridgeError"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        operation: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.code = code or self.default_code
        self.message = message or self.code
        self.operation = operation
        self.http_status = http_status
        self.request_id = request_id
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        details = [self.code]
        if self.http_status:
            details.append(f"HTTP {self.http_status}")
        if self.request_id:
            details.append(f"request {self.request_id}")
        return f"{where}{self.message} ({', '.join(details)})"


class ValidationError(BridgeApiError):
    """400: the request was refused as malformed; repeating it will not help."""

    default_code = "ValidationError"


class Unauthorized(BridgeApiError):
    """401: the API key, or the session, is missing, expired or revoked.

    The client reopens an expired session by itself once; this is raised when the key is
    wrong or the fresh session is refused too.
    """

    default_code = "Unauthorized"


class NotFound(BridgeApiError):
    """404: no such task, position or endpoint (for this account)."""

    default_code = "NotFound"


class TaskConflict(BridgeApiError):
    """409: the request id was used with another payload, or the task can no longer change."""

    default_code = "TaskConflict"


class RateLimited(BridgeApiError):
    """429: too many requests; ``retry_after`` is the server's ``Retry-After`` in seconds."""

    default_code = "RateLimited"

    def __init__(self, message: str | None = None, *, retry_after: float | None = None,
                 **kwargs) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class BridgeUnavailable(BridgeApiError, transport.UpstreamDown):
    """502: the bridge cannot reach the account's MT4 terminal."""

    default_code = "BridgeUnavailable"


class InvalidResponse(BridgeApiError, transport.ForeignAnswer):
    """The answer was not the bridge's (an HTML proxy page, a truncated or odd body)."""

    default_code = "InvalidResponse"


class ConnectionNotMade(BridgeApiError, transport.NothingSent):
    """The connection could not be opened: nothing was sent, safe to repeat."""

    default_code = "ConnectionNotMade"


class TransportError(BridgeApiError, transport.MaybeSent):
    """The connection failed after the request was (possibly) sent: no answer was read."""

    default_code = "TransportError"


class WriteOutcomeUnknown(TransportError):
    """A write got no usable answer: it may or may not have created its task.

    Resubmit with the same ``request_id`` (the bridge then returns the task it created, if
    any, instead of a second one) or look for the task on ``/positions`` and ``/events``.
    """

    default_code = "OutcomeUnknown"


class CircuitOpen(transport.CircuitOpen, BridgeApiError):
    """The target's circuit breaker is open: failing fast without touching the network.

    The breaker raises it directly (the bridge client's ``refusal``).
    """

    default_code = "CircuitOpen"

    def __init__(self, target: str, retry_in: float, operation: str | None = None) -> None:
        self.target = target
        self.retry_in = max(0.0, retry_in)
        BridgeApiError.__init__(  # the transport base's __init__ is for client-less use
            self,
            f"the bridge of {target} is marked unreachable after repeated failures; "
            f"next probe in {self.retry_in:.1f} s",
            operation=operation,
        )


class EventStreamLost(TransportError):
    """The ``/events`` socket closed (dropped, or refused); connect again to resume."""

    default_code = "EventStreamLost"


_BY_CODE: dict[str, type[BridgeApiError]] = {
    cls.default_code: cls
    for cls in (ValidationError, Unauthorized, NotFound, TaskConflict, RateLimited,
                BridgeUnavailable)
}
_BY_STATUS: dict[int, type[BridgeApiError]] = {
    400: ValidationError,
    401: Unauthorized,
    404: NotFound,
    409: TaskConflict,
    429: RateLimited,
    502: BridgeUnavailable,
}


def error_for(code: str | None, status: int) -> type[BridgeApiError]:
    """The class for an error answer: by its code, else by its HTTP status."""
    if code and code in _BY_CODE:
        return _BY_CODE[code]
    return _BY_STATUS.get(status, BridgeApiError)

