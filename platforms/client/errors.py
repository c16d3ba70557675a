"""Exceptions raised by the manager API client.

Every error is a :class:`ManagerApiError`. Server error codes (``error.code`` of the v2
envelope) map to one subclass each; client-side conditions (a proxy page, a refused
connection, a dropped connection, an open circuit, a rejected client secret) have their
own classes. Messages are written for back-office staff and never contain secrets
(no tokens, no client secret, no request headers).

Two questions every caller asks are answered by properties:

* ``is_safe_to_retry`` — repeating the request cannot apply the operation twice.
* ``is_outcome_unknown`` — a write may or may not have been applied; repeat it only with
  the same ``Idempotency-Key`` (the server then returns the stored result) or check state.

The transport's conditions also subclass the shared bases of :mod:`platforms.transport.errors`
(``ConnectionNotMade`` is a ``NothingSent``, ``TransportError`` a ``MaybeSent``,
``CircuitOpen`` the transport's ``CircuitOpen``), so a caller catches either upstream's
transport failure by one base.
"""

from __future__ import annotations

from platforms.transport import errors as transport

__all__ = [
    "AuthenticationFailed",
    "Busy",
    "CircuitOpen",
    "ConnectionNotMade",
    "Forbidden",
    "Internal",
    "InvalidResponse",
    "MT4Error",
    "MT5Error",
    "ManagerApiError",
    "NoConnect",
    "NotFound",
    "OutcomeUnknown",
    "RequestTimeout",
    "TransportError",
    "Validation",
    "WriteInvalidResponse",
    "WriteTransportError",
    "error_for_code",
]


class ManagerApiError(Exception):
    """Base class; also used as-is for an error code this client does not know.

    Attributes:
        code: the server's ``error.code`` (or a client-side code such as ``InvalidResponse``).
        message: the server's message or our explanation.
        manager_code: raw MetaTrader ResultCode (``"TradeNoMoney"``, or an int), if any.
        activity_id: ``meta.activityId`` — quote it to the vendor's support.
        outcome: ``X-Request-Outcome`` header (``timeout``/``unknown``/``not-started``/
            ``in-progress``) or ``None``.
        operation: action name, e.g. ``"UsersRequest"``.
        http_status: HTTP status of the answer (200 for handled errors), ``None`` if none.
    """

    default_code = "Unknown"

    def __init__(
        self,
        code: str | None = None,
        message: str | None = None,
        manager_code: str | int | None = None,
        activity_id: str | None = None,
        outcome: str | None = None,
        operation: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.code = code or self.default_code
        self.message = message or self.code
        self.manager_code = manager_code
        self.activity_id = activity_id
        self.outcome = outcome
        self.operation = operation
        self.http_status = http_status
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        details = [self.code]
        if self.manager_code is not None:
            details.append(f"manager code {self.manager_code}")
        if self.outcome:
            details.append(f"outcome {self.outcome}")
        if self.activity_id:
            details.append(f"activity {self.activity_id}")
        return f"{where}{self.message} ({', '.join(details)})"

    @property
    def is_safe_to_retry(self) -> bool:
        """Repeating the request cannot apply the operation twice."""
        return self.outcome in ("timeout", "not-started") and not self.is_outcome_unknown

    @property
    def is_outcome_unknown(self) -> bool:
        """A write may still be applied; only repeat it with the same Idempotency-Key."""
        return self.outcome in ("unknown", "in-progress")


# --------------------------------------------------------------------------- server codes


class NoConnect(ManagerApiError, transport.UpstreamDown):
    """The trade platform is unreachable (or its pump cache is not warmed yet)."""

    default_code = "NoConnect"


class Validation(ManagerApiError):
    """Bad parameters; repeating will not help."""

    default_code = "Validation"


class MT4Error(ManagerApiError):
    """The MT4 manager API refused the call; see ``manager_code``."""

    default_code = "MT4Error"


class MT5Error(ManagerApiError):
    """The MT5 manager API refused the call; see ``manager_code``."""

    default_code = "MT5Error"


class Forbidden(ManagerApiError):
    default_code = "Forbidden"


class NotFound(ManagerApiError):
    default_code = "NotFound"


class RequestTimeout(ManagerApiError):
    """A read did not finish by its deadline; nothing changed (server code ``Timeout``)."""

    default_code = "Timeout"

    @property
    def is_safe_to_retry(self) -> bool:
        return True


class OutcomeUnknown(ManagerApiError):
    """A write did not finish by its deadline and may still be applied.

    Also raised when a request with the same Idempotency-Key is still running
    (``outcome == "in-progress"``; this request was not executed). Repeat with the same
    key to get the stored result, or check the account/orders before acting.
    """

    default_code = "OutcomeUnknown"

    @property
    def is_outcome_unknown(self) -> bool:
        return True

    @property
    def is_safe_to_retry(self) -> bool:
        return False


class Busy(ManagerApiError):
    """Too many requests queued for this platform; the request was not sent."""

    default_code = "Busy"

    @property
    def is_safe_to_retry(self) -> bool:
        return True


class Internal(ManagerApiError):
    default_code = "Internal"


# --------------------------------------------------------------------------- client-side


class InvalidResponse(ManagerApiError, transport.ForeignAnswer):
    """The answer was not a WebAPI v2 envelope (an HTML proxy page, a truncated body...)."""

    default_code = "InvalidResponse"


class WriteInvalidResponse(InvalidResponse, OutcomeUnknown):
    """A write got a non-WebAPI answer (e.g. a proxy 502): it may or may not have run."""

    default_code = "InvalidResponse"


class ConnectionNotMade(ManagerApiError, transport.NothingSent):
    """The TCP/TLS connection could not be opened: nothing was sent, safe to retry."""

    default_code = "ConnectionNotMade"

    @property
    def is_safe_to_retry(self) -> bool:
        return True


class TransportError(ManagerApiError, transport.MaybeSent):
    """The connection failed after the request was (possibly) sent: no answer was read."""

    default_code = "TransportError"


class WriteTransportError(TransportError, OutcomeUnknown):
    """A write lost its connection after sending: its outcome is unknown."""

    default_code = "TransportError"


class CircuitOpen(transport.CircuitOpen, ManagerApiError):
    """The platform's circuit breaker is open: failing fast without touching the network.

    The breaker raises it directly (the manager client's ``refusal``); ``platform`` is the
    breaker's target.
    """

    default_code = "CircuitOpen"

    def __init__(self, platform: str, retry_in: float, operation: str | None = None) -> None:
        self.platform = self.target = platform
        self.retry_in = max(0.0, retry_in)
        ManagerApiError.__init__(  # the transport base's __init__ is for client-less use
            self,
            message=(
                f"platform {platform} is marked unreachable after repeated failures; "
                f"next probe in {self.retry_in:.1f} s"
            ),
            operation=operation,
        )


class AuthenticationFailed(ManagerApiError):
    """The identity server refused the client credentials, or the API refused our token."""

    default_code = "AuthenticationFailed"


_BY_CODE: dict[str, type[ManagerApiError]] = {
    cls.default_code: cls
    for cls in (
        NoConnect,
        Validation,
        MT4Error,
        MT5Error,
        Forbidden,
        NotFound,
        RequestTimeout,
        OutcomeUnknown,
        Busy,
        Internal,
    )
}


def error_for_code(code: str) -> type[ManagerApiError]:
    """The exception class for a server ``error.code``; unknown codes → the base class."""
    return _BY_CODE.get(code, ManagerApiError)


#: Errors after which the same read may well succeed a little later (nothing was written:
#: a run writes only after every read succeeded). The breaker turns a long outage into
#: immediate ``CircuitOpen`` failures, so retries do not hammer a platform that is down.
TRANSIENT_ERRORS: tuple[type[ManagerApiError], ...] = (
    Busy,
    CircuitOpen,
    ConnectionNotMade,
    InvalidResponse,
    NoConnect,
    RequestTimeout,
    TransportError,
)
