"""The blocking bridge client (``httpx.Client``): Django views, admin actions, Celery tasks."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from platforms.transport import SyncTransport

from . import records as r
from ._core import BridgeCore, PreparedCall, order_body, release_headers

#: The release carries its own headers: no session flow (it would open a session to close it).
_NO_SESSION = httpx.Auth()

__all__ = ["BridgeClient"]

log = logging.getLogger(__name__)


class BridgeClient(BridgeCore, SyncTransport[PreparedCall]):
    """Client of one coverage account's MT4 terminal bridge, with a pooled ``httpx.Client``.

    The session is opened on first use, kept alive by heartbeats and reopened after a 401;
    :meth:`close` (or leaving the ``with`` block) releases it. Thread-safe. Takes
    ``BridgeConfig`` and, optionally, ``breaker``, ``retry``, ``transport`` (an
    ``httpx.BaseTransport``) and ``event_hooks``.
    """

    def close(self) -> None:
        """Release the session (best effort: an expired one is already gone) and the pool."""
        session_id = self.auth.take()
        if session_id is not None:
            try:
                self._http.delete(f"{self.config.base_url}/session/{session_id}",
                                  headers=release_headers(self.config, session_id),
                                  auth=_NO_SESSION)
            except httpx.HTTPError as exc:
                log.info("%s: session release failed (%s); it will expire",
                         self.config.target, type(exc).__name__)
        super().close()

    # ------------------------------------------------------------------ session
    def session(self) -> r.SessionState:
        """``GET /session/{id}``: health, account state and broker metadata."""
        return self._call("session.get")

    def heartbeat(self) -> r.SessionExpiry:
        """``POST /session/{id}/heartbeat``: extend the session now (opens one if needed)."""
        return self._call("session.heartbeat")

    # ------------------------------------------------------------------ reads
    def account(self) -> r.Account:
        """``GET /account``: balance, equity, free margin, currency."""
        return self._call("account")

    def positions(self) -> r.Positions:
        """``GET /positions``: open positions and pending orders."""
        return self._call("positions")

    def symbols(self) -> r.SymbolList:
        return self._call("symbols")

    def quote_history(self, symbol: str, timeframe: str = "H1", *, start: Any = None,
                      end: Any = None, limit: int | None = None) -> r.QuoteHistory:
        """``GET /quotes/history``: OHLC bars (``start``/``end``: ISO text or unix seconds)."""
        return self._call("quotes.history", params={"symbol": symbol, "timeframe": timeframe,
                                                    "from": start, "to": end, "limit": limit})

    # ------------------------------------------------------------------ writes (tasks)
    def submit_order(self, symbol: str, type: str, volume: float, *, sl: float = 0.0,
                     tp: float = 0.0, comment: str = "", price: float | None = None,
                     request_id: str | None = None) -> r.Task:
        """``POST /orders`` → the *queued* task (not an execution: reconcile by task id).

        Pass the hedge's own ``request_id`` to make a resubmission return the same task.
        """
        return self._call("orders.submit", request_id=request_id, body=order_body(
            symbol, type, volume, sl=sl, tp=tp, comment=comment, price=price))

    def modify_order(self, task_id: str, *, request_id: str | None = None,
                     **changes: Any) -> r.Task:
        """``PATCH /orders/{taskId}`` before execution (``volume``, ``sl``, ``tp``, ``price``,
        ``comment``); a task already run → :class:`TaskConflict`."""
        return self._call("orders.modify", path_args={"task_id": task_id}, body=changes,
                          request_id=request_id)

    def close_position(self, ticket: int, volume: float | None = None, *,
                       request_id: str | None = None) -> r.Task:
        """``POST /positions/{ticket}/close``: close (``volume=None``) or reduce a position."""
        body = {} if volume is None else {"volume": volume}
        return self._call("positions.close", path_args={"ticket": ticket}, body=body,
                          request_id=request_id)
