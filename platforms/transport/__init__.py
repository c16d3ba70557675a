"""The transport core every upstream client is built on (the manager API, the coverage bridge).

Limits, timeouts, streaming the body, the per-target circuit breaker (optionally shared via
Redis), the retry loop, the mapping of httpx's failures onto each client's errors, the
refreshing-credential auth flow, and the failure bases both clients' errors share
(``except TransportFailure`` catches either upstream's nothing-sent, maybe-sent and
circuit-open). A client subclasses :class:`SyncTransport` / :class:`AsyncTransport` and keeps
only its wire.

No Django imports: used from views, Celery tasks, Channels consumers and benchmarks.
"""

from . import interactive
from .auth import Credential, CredentialFlow, RefreshingAuth
from .breaker import (
    CircuitBreaker,
    breaker_for,
    configure_breakers,
    counts_as_failure,
    reset_breakers,
)
from .core import (
    AsyncTransport,
    BodyBuffer,
    Call,
    FailureKinds,
    SyncTransport,
    TransportCore,
    TransportOptions,
    request_url,
)
from .errors import (
    CircuitOpen,
    ForeignAnswer,
    MaybeSent,
    NothingSent,
    TransportFailure,
    UpstreamDown,
)
from .retry import RetryPolicy, retry_kwargs

__all__ = [
    "AsyncTransport",
    "BodyBuffer",
    "Call",
    "CircuitBreaker",
    "CircuitOpen",
    "Credential",
    "CredentialFlow",
    "FailureKinds",
    "ForeignAnswer",
    "MaybeSent",
    "NothingSent",
    "RefreshingAuth",
    "RetryPolicy",
    "SyncTransport",
    "TransportCore",
    "TransportFailure",
    "TransportOptions",
    "UpstreamDown",
    "breaker_for",
    "configure_breakers",
    "counts_as_failure",
    "interactive",
    "request_url",
    "reset_breakers",
    "retry_kwargs",
]
