"""What the bridge keeps besides the LP server: sessions, order tasks and stored writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..wire import iso


@dataclass
class Session:
    id: str
    account_id: str
    login: int
    created: float
    expires: float
    last_heartbeat: float | None = None
    released: bool = False


@dataclass
class Task:
    """One write submitted to the bridge: open an order, or close/reduce a position."""

    id: str
    login: int
    action: str  # "open" | "close"
    request_id: str | None
    created: float
    symbol: str = ""
    type: str = ""
    volume: float = 0.0  # lots; 0 on a close = the whole position
    sl: float = 0.0
    tp: float = 0.0
    price: float = 0.0  # pending orders only
    comment: str = ""
    ticket: int | None = None  # the position closed, or the order opened
    status: str = "queued"  # queued | executed | rejected
    fill_price: float | None = None
    profit: float | None = None
    error: dict[str, str] | None = None
    executed: float | None = None

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "taskId": self.id,
            "status": self.status,
            "action": self.action,
            "submittedAt": iso(self.created),
        }
        if self.request_id is not None:
            out["requestId"] = self.request_id
        if self.action == "open":
            out.update(symbol=self.symbol, type=self.type, volume=self.volume, sl=self.sl,
                       tp=self.tp, comment=self.comment)
            if self.price:
                out["price"] = self.price
        else:
            out["volume"] = self.volume
        if self.ticket is not None:
            out["ticket"] = self.ticket
        if self.executed is not None:
            out["executedAt"] = iso(self.executed)
        if self.fill_price is not None:
            out["fillPrice"] = self.fill_price
        if self.profit is not None:
            out["profit"] = self.profit
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class StoredWrite:
    fingerprint: str
    status: int
    task_id: str


#: ``listener(channel, login, data)`` — an event for the sockets of ``login``.
Listener = Callable[[str, int, dict[str, Any]], None]
