"""Typed records of the bridge's answers and events (msgspec: one decoding pass, camelCase on
the wire, every field defaulted so an answer with fewer fields still decodes)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

import msgspec

__all__ = [
    "Account",
    "Bar",
    "BridgeEvent",
    "BrokerInfo",
    "Depth",
    "ErrorBody",
    "Position",
    "Positions",
    "ProfitPosition",
    "ProfitUpdate",
    "Quote",
    "QuoteHistory",
    "SessionExpiry",
    "SessionHealth",
    "SessionOpened",
    "SessionState",
    "SymbolInfo",
    "SymbolList",
    "Task",
    "TaskError",
    "decoder",
]


class _Record(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    pass


class SessionOpened(_Record):
    session_id: str
    expires_at: datetime


class SessionExpiry(_Record):
    """What a heartbeat tells the caller (the session id stays inside the client)."""

    expires_at: datetime


class SessionHealth(_Record):
    terminal_connected: bool = False
    ping_ms: float | None = None


class BrokerInfo(_Record):
    company: str = ""
    server: str = ""
    currency: str = ""
    leverage: int = 0
    margin_call_level: float = 0.0
    stop_out_level: float = 0.0


class Account(_Record):
    """``GET /account``: the coverage account's money, in its own currency."""

    login: int = 0
    server: str = ""
    name: str = ""
    currency: str = ""
    leverage: int = 0
    balance: float = 0.0
    credit: float = 0.0
    equity: float = 0.0
    margin: float = 0.0
    free_margin: float = 0.0
    margin_level: float = 0.0
    profit: float = 0.0


class SessionState(_Record):
    """``GET /session/{id}``: health, account state and broker metadata."""

    status: str = ""
    account_id: str = ""
    server: str = ""
    login: int = 0
    created_at: datetime | None = None
    expires_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    health: SessionHealth = msgspec.field(default_factory=SessionHealth)
    account: Account | None = None
    broker: BrokerInfo | None = None


class Position(_Record):
    """An open position or a pending order; ``task_id`` names the task that opened it."""

    ticket: int = 0
    symbol: str = ""
    type: str = ""
    volume: float = 0.0
    open_price: float = 0.0
    open_time: datetime | None = None
    sl: float = 0.0
    tp: float = 0.0
    comment: str = ""
    profit: float = 0.0
    swap: float = 0.0
    commission: float = 0.0
    current_price: float | None = None
    task_id: str | None = None


class Positions(_Record):
    positions: list[Position] = msgspec.field(default_factory=list)
    orders: list[Position] = msgspec.field(default_factory=list)

    def by_task(self, task_id: str) -> list[Position]:
        """What the task ``task_id`` left open (reconciliation without a task-status call)."""
        return [p for p in self.positions + self.orders if p.task_id == task_id]


class SymbolInfo(_Record):
    symbol: str = ""
    description: str = ""
    digits: int = 0
    contract_size: float = 0.0
    currency_base: str = ""
    currency_profit: str = ""
    bid: float = 0.0
    ask: float = 0.0
    spread: int = 0
    volume_min: float = 0.0
    volume_max: float = 0.0
    volume_step: float = 0.0


class SymbolList(_Record):
    symbols: list[SymbolInfo] = msgspec.field(default_factory=list)


class Bar(_Record):
    time: datetime
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    volume: float = 0.0


class QuoteHistory(_Record):
    symbol: str = ""
    timeframe: str = ""
    digits: int = 0
    bars: list[Bar] = msgspec.field(default_factory=list)


class TaskError(_Record):
    code: str = ""
    message: str = ""


class Task(_Record):
    """A write's task: ``queued`` until the terminal runs it, then ``executed`` or
    ``rejected`` (with ``error``). ``replayed`` is set by the client when the bridge answered
    a repeated ``x-request-id`` with the task it already had."""

    task_id: str = ""
    status: str = ""
    action: str = ""
    request_id: str | None = None
    submitted_at: datetime | None = None
    symbol: str = ""
    type: str = ""
    volume: float = 0.0
    sl: float = 0.0
    tp: float = 0.0
    comment: str = ""
    price: float | None = None
    ticket: int | None = None
    executed_at: datetime | None = None
    fill_price: float | None = None
    profit: float | None = None
    error: TaskError | None = None
    replayed: bool = False


class Quote(_Record):
    symbol: str = ""
    bid: float = 0.0
    ask: float = 0.0
    time: datetime | None = None


class Depth(_Record):
    symbol: str = ""
    bids: list[tuple[float, float]] = msgspec.field(default_factory=list)
    asks: list[tuple[float, float]] = msgspec.field(default_factory=list)
    time: datetime | None = None


class ProfitPosition(_Record):
    ticket: int = 0
    symbol: str = ""
    profit: float = 0.0
    price: float = 0.0


class ProfitUpdate(_Record):
    login: int = 0
    positions: list[ProfitPosition] = msgspec.field(default_factory=list)
    profit: float = 0.0
    equity: float = 0.0


class BridgeEvent(msgspec.Struct, frozen=True):
    """One ``/events`` frame: ``channel`` and its typed ``data`` (``order`` → :class:`Task`,
    ``quote`` → :class:`Quote`, ``depth`` → :class:`Depth`, ``account`` → :class:`Account`,
    ``profit`` → :class:`ProfitUpdate`)."""

    channel: str
    data: Any


class ErrorDetail(_Record):
    code: str = ""
    message: str = ""
    retry_after: float | None = None


class ErrorBody(_Record):
    error: ErrorDetail | None = None


EVENT_TYPES: dict[str, type] = {
    "order": Task,
    "quote": Quote,
    "depth": Depth,
    "account": Account,
    "profit": ProfitUpdate,
}


@lru_cache(maxsize=64)
def decoder(kind: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(kind)
