"""Client of the MT4 terminal-bridge API through which coverage accounts are reached.

No Django: used from the admin's connection check, Celery tasks and async consumers alike.
Sync and async over one code base (``_core``, ``auth``, ``interpret`` are sans-IO), the
manager client's retry policy and per-target circuit breaker, typed msgspec records, and the
wire's errors as exceptions. See ``docs/coverage.md``.
"""

from .aio import AsyncBridgeClient, EventStream
from .config import BridgeConfig
from .errors import (
    BridgeApiError,
    BridgeUnavailable,
    CircuitOpen,
    ConnectionNotMade,
    EventStreamLost,
    InvalidResponse,
    NotFound,
    RateLimited,
    TaskConflict,
    TransportError,
    Unauthorized,
    ValidationError,
    WriteOutcomeUnknown,
    counts_as_failure,
)
from .records import (
    Account,
    Bar,
    BridgeEvent,
    BrokerInfo,
    Depth,
    Position,
    Positions,
    ProfitUpdate,
    Quote,
    QuoteHistory,
    SessionExpiry,
    SessionState,
    SymbolInfo,
    SymbolList,
    Task,
    TaskError,
)
from .sync import BridgeClient

__all__ = [
    "Account",
    "AsyncBridgeClient",
    "Bar",
    "BridgeApiError",
    "BridgeClient",
    "BridgeConfig",
    "BridgeEvent",
    "BridgeUnavailable",
    "BrokerInfo",
    "CircuitOpen",
    "ConnectionNotMade",
    "Depth",
    "EventStream",
    "EventStreamLost",
    "InvalidResponse",
    "NotFound",
    "Position",
    "Positions",
    "ProfitUpdate",
    "Quote",
    "QuoteHistory",
    "RateLimited",
    "SessionExpiry",
    "SessionState",
    "SymbolInfo",
    "SymbolList",
    "Task",
    "TaskConflict",
    "TaskError",
    "TransportError",
    "Unauthorized",
    "ValidationError",
    "WriteOutcomeUnknown",
    "counts_as_failure",
]
