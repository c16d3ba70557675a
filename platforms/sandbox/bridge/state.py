"""The LP side of coverage: MT4 accounts on server ``LP-Demo`` behind a terminal bridge.

A second simulated MT4 server over the sandbox's one market (prices are shared with the broker's
servers, accounts and positions are not), plus what the bridge itself keeps: sessions, order
tasks (queued, executed a moment later at the then current bid/ask) and the ``x-request-id``
store that makes writes retry-safe. Plain and synchronous: :mod:`.execution` schedules
:meth:`Bridge.execute`, :mod:`.events` relays :meth:`Bridge.emit` to sockets and :mod:`.app` is
the HTTP surface.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from typing import Any

from ..events import EventBus
from ..market import BUY, SELL, Group, Market
from ..mt4.platform import MT4Platform
from ..mt4.records import CLOSED_PART, Account, Trade
from ..wire import ApiFail, iso
from .faults import BridgeFaults
from .records import Listener, Session, StoredWrite, Task
from .wire import (
    MODIFY_FIELDS,
    ORDER_FIELDS,
    ORDER_TYPES,
    TIMEFRAMES,
    TYPE_NAMES,
    BridgeError,
    comment_field,
    epoch_param,
    invalid,
    number_field,
    volume_field,
)

log = logging.getLogger("platforms.sandbox.bridge")

BASE_PATH = "/mt4/client"
DEFAULT_API_KEY = "sandbox-bridge-key"
DEFAULT_SERVER = "LP-Demo"
DEFAULT_PASSWORD = "sandbox-terminal"  # noqa: S105 - the sandbox's published demo password
DEFAULT_LOGINS = (900001, 900002, 900003, 900004, 900005)
COMPANY = "Sandbox Liquidity Ltd"
OPENING_BALANCE = 100_000.0

class _LPMarket:
    """The shared market seen by the LP server, with an event bus of its own.

    The LP's trades must not reach the broker's hubs (they publish on the market's bus), so the
    LP platform gets this view: prices, maths and tick numbers delegate to the real market.
    """

    def __init__(self, market: Market) -> None:
        self._market = market
        self.events = EventBus()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._market, name)


class Bridge:
    """The LP server ``LP-Demo`` and the bridge in front of it (one per sandbox process)."""

    def __init__(
        self,
        market: Market,
        *,
        seed: int = 1,
        api_key: str = DEFAULT_API_KEY,
        server: str = DEFAULT_SERVER,
        logins: tuple[int, ...] = DEFAULT_LOGINS,
        password: str = DEFAULT_PASSWORD,
        session_ttl: float = 300.0,
        exec_delay: float = 0.2,
        now: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        self.market = market
        self.api_key = api_key
        self.server = server
        self.session_ttl = session_ttl
        self.exec_delay = exec_delay
        self.lp = MT4Platform(seed, 0, _LPMarket(market), now=now)  # type: ignore[arg-type]
        self.group = Group("coverage\\usd", "USD", 100, 50, 20, OPENING_BALANCE, company=COMPANY)
        self.lp.groups[self.group.name] = self.group
        self.lp.group_names = sorted(self.lp.groups)
        for login in logins:
            acc = Account(login, self.group)
            acc.name = f"Coverage {login}"
            acc.balance = acc.init_balance = acc.prev_balance = OPENING_BALANCE
            acc.prev_equity = OPENING_BALANCE
            acc.reg_time = acc.mtime = acc.last_time = now
            acc.password = password
            self.lp.add_account(acc)
        self.sessions: dict[str, Session] = {}
        self.tasks: dict[str, Task] = {}
        self.task_of_ticket: dict[int, str] = {}
        self.writes: dict[tuple[int, str], StoredWrite] = {}
        self.faults = BridgeFaults(seed)
        self.listeners: list[Listener] = []
        self.stats: dict[str, list[int]] = {}

    # ---------------------------------------------------------------- bookkeeping
    def count(self, operation: str, executed: bool = False) -> None:
        row = self.stats.setdefault(operation, [0, 0])
        row[1 if executed else 0] += 1

    def stats_dict(self) -> dict[str, Any]:
        return {"operations": {k: {"received": v[0], "executed": v[1]}
                               for k, v in sorted(self.stats.items())},
                "sessions": sum(1 for s in self.sessions.values() if not s.released),
                "tasks": len(self.tasks)}

    def emit(self, channel: str, login: int, data: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(channel, login, data)

    # ---------------------------------------------------------------- auth and sessions
    def check_key(self, authorization: str | None) -> None:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise BridgeError("Unauthorized", "missing API key (Authorization: Bearer <api-key>)")
        if not hmac.compare_digest(key.strip().encode(), self.api_key.encode()):
            raise BridgeError("Unauthorized", "the API key is not valid for this workspace")

    def session(self, session_id: str | None, now: float | None = None) -> Session:
        """The live session ``session_id`` or 401 (missing, unknown, released or expired)."""
        now = time.time() if now is None else now
        if not session_id:
            raise BridgeError("Unauthorized", "missing x-session-id")
        found = self.sessions.get(session_id)
        if found is None:
            raise BridgeError("Unauthorized", "unknown session")
        if found.released:
            raise BridgeError("Unauthorized", "the session was released")
        if found.expires <= now:
            raise BridgeError("Unauthorized", "the session expired; open a new one")
        return found

    def open_session(self, body: Any, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        if not isinstance(body, dict):
            raise invalid("the body must be a JSON object")
        account_id = body.get("accountId")
        if not isinstance(account_id, str) or not 1 <= len(account_id) <= 64:
            raise invalid("'accountId' must be a string of 1-64 characters")
        server = body.get("server")
        if not isinstance(server, str) or not server:
            raise invalid("'server' is required")
        login = body.get("login")
        if isinstance(login, bool) or not isinstance(login, int) or login < 1:
            raise invalid("'login' must be a positive integer")
        password = body.get("password")
        if not isinstance(password, str) or not password:
            raise invalid("'password' is required")
        if server != self.server:
            raise invalid(f"unknown trade server {server!r}; this bridge connects to "
                          f"{self.server!r}")
        acc = self.lp.accounts.get(login)
        if acc is None or not hmac.compare_digest(password.encode(), acc.password.encode()):
            raise invalid(f"terminal login to {self.server} failed: wrong login or password")
        self._prune_sessions(now)
        session = Session("sess_" + secrets.token_urlsafe(18), account_id, login, now,
                          now + self.session_ttl)
        self.sessions[session.id] = session
        acc.last_time = now
        return session

    def heartbeat(self, session: Session, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        session.last_heartbeat = now
        session.expires = now + self.session_ttl
        return session

    def release(self, session: Session) -> None:
        session.released = True

    def expire(self, session_id: str | None = None) -> int:
        """Control API: make one session (or every session) expire now."""
        past = time.time() - 1
        hit = 0
        for s in self.sessions.values():
            if session_id is None or s.id == session_id:
                s.expires = min(s.expires, past)
                hit += 1
        return hit

    def _prune_sessions(self, now: float) -> None:
        if len(self.sessions) > 1000:
            self.sessions = {k: s for k, s in self.sessions.items()
                             if not s.released and s.expires > now - 3600}

    def session_view(self, s: Session) -> dict[str, Any]:
        acc = self.lp.accounts[s.login]
        return {
            "sessionId": s.id,
            "status": "active",
            "accountId": s.account_id,
            "server": self.server,
            "login": s.login,
            "createdAt": iso(s.created),
            "expiresAt": iso(s.expires),
            "lastHeartbeatAt": iso(s.last_heartbeat) if s.last_heartbeat else None,
            "health": {"terminalConnected": True, "pingMs": 1},
            "account": self.account_view(s.login),
            "broker": {
                "company": COMPANY,
                "server": self.server,
                "currency": acc.group.currency,
                "leverage": acc.leverage,
                "marginCallLevel": acc.group.margin_call,
                "stopOutLevel": acc.group.stop_out,
            },
        }

    # ---------------------------------------------------------------- reads
    def account_view(self, login: int) -> dict[str, Any]:
        acc = self.lp.accounts[login]
        info = self.lp.margin_info(acc)
        return {
            "login": login,
            "server": self.server,
            "name": acc.name,
            "currency": acc.group.currency,
            "leverage": acc.leverage,
            "balance": acc.balance,
            "credit": acc.credit,
            "equity": info["equity"],
            "margin": info["margin"],
            "freeMargin": info["free"],
            "marginLevel": info["level"],
            "profit": info["floating"],
        }

    def trade_view(self, acc: Account, t: Trade) -> dict[str, Any]:
        sym = t.sym
        assert sym is not None
        out: dict[str, Any] = {
            "ticket": t.ticket,
            "symbol": sym.name,
            "type": TYPE_NAMES[t.cmd],
            "volume": t.volume / 100.0,
            "openPrice": t.open_price,
            "openTime": iso(t.open_time),
            "sl": t.sl,
            "tp": t.tp,
            "comment": t.comment,
        }
        if t.cmd <= SELL:
            out["profit"] = self.market.trade_profit(sym, t.cmd, t.volume, t.open_price,
                                                     acc.group.currency)
            out["swap"] = t.storage
            out["commission"] = t.commission
            out["currentPrice"] = sym.bid if t.cmd == BUY else sym.ask
        task_id = self.task_of_ticket.get(t.ticket)
        if task_id is not None:
            out["taskId"] = task_id
        return out

    def positions_view(self, login: int) -> dict[str, Any]:
        acc = self.lp.accounts[login]
        trades = sorted(acc.open, key=lambda t: t.ticket)
        return {
            "positions": [self.trade_view(acc, t) for t in trades if t.cmd <= SELL],
            "orders": [self.trade_view(acc, t) for t in trades if t.cmd > SELL],
        }

    def symbols_view(self) -> dict[str, Any]:
        return {"symbols": [
            {
                "symbol": s.name,
                "description": s.description,
                "digits": s.digits,
                "contractSize": s.contract,
                "currencyBase": s.base,
                "currencyProfit": s.quote,
                "bid": s.bid,
                "ask": s.ask,
                "spread": s.spread,
                "volumeMin": 0.01,
                "volumeMax": 100.0,
                "volumeStep": 0.01,
            }
            for s in self.market.symbols.values()
        ]}

    def history_view(self, params: Any, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        name = params.get("symbol")
        sym = self.market.symbols.get(name or "")
        if sym is None:
            raise invalid(f"'symbol' must name a symbol of {self.server}, got {name!r}")
        timeframe = (params.get("timeframe") or "H1").upper()
        period = TIMEFRAMES.get(timeframe)
        if period is None:
            raise invalid(f"'timeframe' must be one of {', '.join(TIMEFRAMES)}")
        try:
            limit = int(params.get("limit") or 500)
        except ValueError:
            raise invalid("'limit' must be an integer 1-5000") from None
        if not 1 <= limit <= 5000:
            raise invalid("'limit' must be an integer 1-5000")
        end = epoch_param(params.get("to"), "to", now)
        start = epoch_param(params.get("from"), "from", end - limit * period)
        if start > end:
            raise invalid("'from' must not be after 'to'")
        bars = self.market.bars(sym, period, start, end, limit=limit)
        return {"symbol": sym.name, "timeframe": timeframe, "digits": sym.digits, "bars": [
            {"time": iso(t), "open": o, "high": h, "low": lo, "close": c, "volume": v}
            for t, o, h, lo, c, v in bars
        ]}

    # ---------------------------------------------------------------- writes (tasks)
    def stored_write(self, login: int, request_id: str, fp: str) -> StoredWrite | None:
        """The earlier write with this request id, or None; 409 if its payload differed."""
        stored = self.writes.get((login, request_id))
        if stored is not None and stored.fingerprint != fp:
            raise BridgeError("TaskConflict", f"x-request-id {request_id!r} was already used "
                              "with a different payload; use a new request id")
        return stored

    def remember_write(self, login: int, request_id: str, fp: str, status: int,
                       task_id: str) -> None:
        self.writes[(login, request_id)] = StoredWrite(fp, status, task_id)

    def _new_task(self, login: int, action: str, request_id: str | None, now: float) -> Task:
        task = Task("task_" + secrets.token_hex(8), login, action, request_id, now)
        self.tasks[task.id] = task
        return task

    def submit_order(self, login: int, body: Any, request_id: str | None,
                     now: float | None = None) -> Task:
        now = time.time() if now is None else now
        if not isinstance(body, dict):
            raise invalid("the body must be a JSON object")
        unknown = set(body) - ORDER_FIELDS
        if unknown:
            raise invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or symbol not in self.market.symbols:
            raise invalid(f"'symbol' must name a symbol of {self.server}, got {symbol!r}")
        kind = body.get("type")
        if not isinstance(kind, str) or kind not in ORDER_TYPES:  # a list is unhashable
            raise invalid(f"'type' must be one of {', '.join(ORDER_TYPES)}")
        volume = volume_field(body, required=True)
        sl = number_field(body, "sl", default=0.0)
        tp = number_field(body, "tp", default=0.0)
        comment = comment_field(body)
        price = 0.0
        if ORDER_TYPES[kind] > SELL:
            price = number_field(body, "price", lo=1e-9)
        elif body.get("price") not in (None, 0):
            raise invalid("'price' is for pending orders; a market order fills at bid/ask")
        task = self._new_task(login, "open", request_id, now)
        task.symbol, task.type, task.volume = symbol, kind, volume
        task.sl, task.tp, task.comment, task.price = sl, tp, comment, price
        return task

    def submit_close(self, login: int, ticket_text: str, body: Any, request_id: str | None,
                     now: float | None = None) -> Task:
        now = time.time() if now is None else now
        if not ticket_text.isdigit() or len(ticket_text) > 18:
            raise invalid(f"ticket must be a positive integer, got {ticket_text!r}")
        ticket = int(ticket_text)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise invalid("the body must be a JSON object")
        unknown = set(body) - {"volume"}
        if unknown:
            raise invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
        acc = self.lp.accounts[login]
        if not any(t.ticket == ticket for t in acc.open):
            raise BridgeError("NotFound", f"no open position or order #{ticket} on {login}")
        task = self._new_task(login, "close", request_id, now)
        task.ticket = ticket
        task.volume = volume_field(body, required=False)
        return task

    def task_of(self, login: int, task_id: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None or task.login != login:
            raise BridgeError("NotFound", f"no task {task_id!r} for this account")
        return task

    def modify(self, login: int, task_id: str, body: Any) -> Task:
        task = self.task_of(login, task_id)
        if not isinstance(body, dict) or not body:
            raise invalid("the body must be a non-empty JSON object")
        allowed = MODIFY_FIELDS if task.action == "open" else {"volume"}
        unknown = set(body) - allowed
        if unknown:
            raise invalid(f"field(s) not modifiable on this task: {', '.join(sorted(unknown))}")
        if task.status != "queued":
            raise BridgeError("TaskConflict", f"task {task.id} is already {task.status}; only "
                              "a queued task can be modified")
        if "volume" in body:
            task.volume = volume_field(body, required=task.action == "open")
        if "sl" in body:
            task.sl = number_field(body, "sl")
        if "tp" in body:
            task.tp = number_field(body, "tp")
        if "comment" in body:
            task.comment = comment_field(body)
        if "price" in body:
            if ORDER_TYPES[task.type] <= SELL:
                raise invalid("'price' is for pending orders; a market order fills at bid/ask")
            task.price = number_field(body, "price", lo=1e-9)
        return task

    def execute(self, task_id: str, now: float | None = None) -> Task | None:
        """Run a queued task against the LP server and announce the outcome on ``order``."""
        now = time.time() if now is None else now
        task = self.tasks.get(task_id)
        if task is None or task.status != "queued":
            return None
        acc = self.lp.accounts[task.login]
        try:
            if task.action == "open":
                self._open(acc, task, now)
            else:
                self._close(acc, task, now)
            task.status = "executed"
        except ApiFail as exc:
            task.status = "rejected"
            task.error = {"code": str(exc.manager_code or exc.code), "message": exc.message}
        except Exception as exc:  # a simulator bug must not leave the task queued forever
            log.exception("bridge task %s failed", task.id)
            task.status = "rejected"
            task.error = {"code": "Internal", "message": f"internal error: {type(exc).__name__}"}
        task.executed = now
        self.emit("order", task.login, {"event": "execution", **task.view()})
        self.emit("account", task.login, self.account_view(task.login))
        return task

    def _open(self, acc: Account, task: Task, now: float) -> None:
        sym = self.market.symbols[task.symbol]
        trade = self.lp.open_trade(acc, sym, ORDER_TYPES[task.type], round(task.volume * 100),
                                   task.price, task.sl, task.tp, task.comment, now)
        task.ticket = trade.ticket
        task.fill_price = trade.open_price
        self.task_of_ticket[trade.ticket] = task.id

    def _close(self, acc: Account, task: Task, now: float) -> None:
        trade = next((t for t in acc.open if t.ticket == task.ticket), None)
        if trade is None:
            raise ApiFail("NotFound", f"position #{task.ticket} is no longer open",
                          "InvalidTicket")
        if trade.cmd > SELL:
            self.lp.delete_trade(trade, now)
            task.fill_price = trade.close_price
            return
        closed = self.lp.close_trade(trade, round(task.volume * 100), now)
        task.fill_price = closed.close_price
        task.profit = closed.profit
        if closed.state == CLOSED_PART and closed.comment.startswith("to #"):
            rest = int(closed.comment[4:])
            origin = self.task_of_ticket.get(closed.ticket)
            if origin is not None:
                self.task_of_ticket[rest] = origin

    # ---------------------------------------------------------------- control API
    def control_state(self, login: int) -> dict[str, Any] | None:
        if login not in self.lp.accounts:
            return None
        acc = self.lp.accounts[login]
        return {
            **self.account_view(login),
            **self.positions_view(login),
            "closed": [
                {"ticket": t.ticket, "symbol": t.sym.name if t.sym else "",
                 "type": TYPE_NAMES.get(t.cmd, str(t.cmd)), "volume": t.volume / 100.0,
                 "closePrice": t.close_price, "profit": t.profit, "state": t.state}
                for t in acc.closed
            ],
            "sessions": sum(1 for s in self.sessions.values()
                            if s.login == login and not s.released and s.expires > time.time()),
        }
