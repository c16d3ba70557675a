"""Client for the CPlugin WebAPI v2 manager API of MT4/MT5 trade servers.

Its wire only (operations, records, auth, errors) on the transport core of
:mod:`platforms.transport`, which holds the pool, breaker registry, retry policy and the
mapping of transport failures. No Django imports: used from views, Celery tasks, Channels
consumers and benchmarks. See ``docs/client.md``.
"""

from .aio import AsyncManagerClient
from .auth import ClientCredentialsAuth
from .breaker import PlatformBreaker
from .config import PlatformConfig
from .errors import (
    TRANSIENT_ERRORS,
    AuthenticationFailed,
    Busy,
    CircuitOpen,
    ConnectionNotMade,
    Forbidden,
    Internal,
    InvalidResponse,
    ManagerApiError,
    MT4Error,
    MT5Error,
    NoConnect,
    NotFound,
    OutcomeUnknown,
    RequestTimeout,
    TransportError,
    Validation,
    WriteInvalidResponse,
    WriteTransportError,
)
from .protocol import MT4, MT5, Kind, Operation, Page, WriteResult
from .records import *  # noqa: F403 - the record types are part of the public API
from .records import Envelope, TradePlatformInfo, envelope_decoder, split_flags
from .sync import ManagerClient

__all__ = [
    "MT4",
    "MT5",
    "TRANSIENT_ERRORS",
    "AsyncManagerClient",
    "AuthenticationFailed",
    "Busy",
    "CircuitOpen",
    "ClientCredentialsAuth",
    "ConnectionNotMade",
    "Envelope",
    "Forbidden",
    "Internal",
    "InvalidResponse",
    "Kind",
    "MT4Error",
    "MT5Error",
    "ManagerApiError",
    "ManagerClient",
    "NoConnect",
    "NotFound",
    "Operation",
    "OutcomeUnknown",
    "Page",
    "PlatformBreaker",
    "PlatformConfig",
    "RequestTimeout",
    "TradePlatformInfo",
    "TransportError",
    "Validation",
    "WriteInvalidResponse",
    "WriteResult",
    "WriteTransportError",
    "envelope_decoder",
    "split_flags",
]
