"""Client of the MT4 terminal-bridge API through which coverage accounts are reached.

No Django: used from the admin's connection check, Celery tasks and async consumers alike.
Its wire only (``_core``: endpoints and calls; ``auth``: the session; ``interpret``: answers;
typed msgspec records; the wire's errors as exceptions) on the transport core of
:mod:`platforms.transport`, which it shares with the manager client: the pool, the per-target
circuit breaker, the retry loop and the mapping of transport failures. See ``docs/coverage.md``.
"""

from ._core import ORDER_TYPES
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
    "ORDER_TYPES",
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
]
