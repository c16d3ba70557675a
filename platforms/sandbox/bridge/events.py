"""``WS {base}/events``: the bridge's event socket.

The same key and session headers as REST; JSON text frames. The client sends
``{"action": "subscribe", "channels": [...], "symbols": [...]}`` and gets ``subscribed``, then
``{"type": "event", "channel": ..., "data": ...}`` frames for its own account only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..market import BUY, SELL, Symbol
from ..wire import decode, encode, iso
from .records import Session
from .state import Bridge
from .wire import BridgeError, error_response, fault_error, invalid

CHANNELS = ("quote", "depth", "account", "order", "profit")
CHANNEL_ALIASES = {"on-profit": "profit", "quotes": "quote", "orders": "order"}
MAX_QUEUED = 10_000
WATCH_INTERVAL = 0.25  # how often an open socket re-checks its session


class EventSocket:
    """One ``/events`` connection: its account, channels, symbols and outgoing queue."""

    def __init__(self, ws: WebSocket, session: Session) -> None:
        self.ws = ws
        self.session = session
        self.login = session.login
        self.channels: set[str] = set()
        self.symbols: set[str] = set()  # empty = every symbol
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False
        self.close_code = 1000

    def send(self, frame: dict[str, Any]) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= MAX_QUEUED:  # a client this slow is dropped, as a server would
            self.abort(1011)
            return
        self.queue.put_nowait(encode(frame).decode())

    def abort(self, code: int) -> None:
        if not self.closed:
            self.closed = True
            self.close_code = code
            self.queue.put_nowait(None)

    def wants(self, channel: str, symbol: str | None = None) -> bool:
        if channel not in self.channels:
            return False
        return symbol is None or not self.symbols or symbol in self.symbols


class EventHub:
    """The ``/events`` sockets: serves each one, and fans bridge events and market ticks out to
    the sockets of the account they concern."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.sockets: set[EventSocket] = set()
        self.drop_next = 0
        self._stop_ticks: Callable[[], None] | None = None
        bridge.listeners.append(self.on_bridge_event)

    def add(self, sock: EventSocket) -> None:
        self.sockets.add(sock)
        if self._stop_ticks is None:
            self._stop_ticks = self.bridge.market.events.subscribe("tick", self.on_tick)

    def remove(self, sock: EventSocket) -> None:
        self.sockets.discard(sock)
        if not self.sockets and self._stop_ticks is not None:
            self._stop_ticks()
            self._stop_ticks = None

    def drop_all(self) -> int:
        dropped = 0
        for sock in list(self.sockets):
            sock.abort(1011)
            dropped += 1
        return dropped

    def on_bridge_event(self, channel: str, login: int, data: dict[str, Any]) -> None:
        frame = {"type": "event", "channel": channel, "data": data}
        for sock in self.sockets:
            if sock.login == login and sock.wants(channel):
                sock.send(frame)

    def on_tick(self, sym: Symbol) -> None:
        quote = None
        for sock in self.sockets:
            if sock.wants("quote", sym.name):
                quote = quote or quote_frame(sym)
                sock.send(quote)
            if sock.wants("depth", sym.name):
                sock.send(depth_frame(sym))
            if sock.wants("profit"):
                frame = self.profit_frame(sock.login, sym)
                if frame is not None:
                    sock.send(frame)

    def profit_frame(self, login: int, sym: Symbol) -> dict[str, Any] | None:
        lp = self.bridge.lp
        acc = lp.accounts[login]
        mine = [t for t in acc.open if t.cmd <= SELL and t.sym is sym]
        if not mine:
            return None
        ccy = acc.group.currency
        rows = [{"ticket": t.ticket, "symbol": sym.name,
                 "profit": self.bridge.market.trade_profit(sym, t.cmd, t.volume, t.open_price,
                                                           ccy),
                 "price": sym.bid if t.cmd == BUY else sym.ask} for t in mine]
        info = lp.margin_info(acc)
        return {"type": "event", "channel": "profit",
                "data": {"login": login, "positions": rows, "profit": info["floating"],
                         "equity": info["equity"]}}

    async def _deny(self, ws: WebSocket, exc: BridgeError) -> None:
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(error_response(exc))
            return
        await ws.accept()
        await ws.send_text(encode({"type": "error", **exc.body()}).decode())
        await ws.close(code=4000 + exc.status)

    async def serve(self, ws: WebSocket) -> None:
        """One ``/events`` connection: key, session and faults, then frames until it ends."""
        b = self.bridge
        b.count("events")
        try:
            b.check_key(ws.headers.get("authorization"))
            session = b.session(ws.headers.get("x-session-id"))
            fired = b.faults.fire("events")
            latency = max((r.latency for r in fired), default=0.0)
            if latency:
                await asyncio.sleep(latency)
            for rule in fired:
                if rule.error:
                    raise fault_error(rule.error, rule.retryAfter)
        except BridgeError as exc:
            await self._deny(ws, exc)
            return
        await ws.accept()
        if any(rule.drop for rule in fired):
            await ws.close(code=1011)
            return
        b.count("events", executed=True)
        sock = EventSocket(ws, session)
        self.add(sock)
        sock.send({"type": "ready", "login": session.login, "server": b.server,
                   "channels": list(CHANNELS)})
        tasks = [asyncio.create_task(self._writer(sock)),
                 asyncio.create_task(self._reader(sock)),
                 asyncio.create_task(self._watch(sock))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sock.closed = True
            self.remove(sock)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(RuntimeError, OSError):
                await ws.close(code=sock.close_code)

    async def _writer(self, sock: EventSocket) -> None:
        while True:
            frame = await sock.queue.get()
            if frame is None or sock.closed:
                return
            await sock.ws.send_text(frame)

    async def _watch(self, sock: EventSocket) -> None:
        while not sock.closed:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                self.bridge.session(sock.session.id)
            except BridgeError as exc:
                sock.send({"type": "error", **exc.body()})
                sock.close_code = 4401
                sock.queue.put_nowait(None)
                # let the writer flush the error frame before the socket closes
                await asyncio.sleep(3600)

    async def _reader(self, sock: EventSocket) -> None:
        while True:
            try:
                message = await sock.ws.receive_text()
            except (WebSocketDisconnect, RuntimeError, KeyError):
                return
            try:
                self._handle(sock, decode(message))
            except msgspec.DecodeError:
                sock.send({"type": "error", **invalid("a frame must be a JSON object").body()})
            except BridgeError as exc:
                sock.send({"type": "error", **exc.body()})

    def _handle(self, sock: EventSocket, msg: Any) -> None:
        if not isinstance(msg, dict):
            raise invalid("a frame must be a JSON object")
        action = msg.get("action")
        if action == "ping":
            sock.send({"type": "pong"})
            return
        if action not in ("subscribe", "unsubscribe"):
            raise invalid("'action' must be subscribe, unsubscribe or ping")
        raw = msg.get("channels")
        if not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
            raise invalid(f"'channels' must be a non-empty list of {', '.join(CHANNELS)}")
        channels: set[str] = {CHANNEL_ALIASES.get(str(c), str(c)) for c in raw}
        unknown = channels - set(CHANNELS)
        if unknown:
            raise invalid(f"unknown channel(s) {', '.join(sorted(unknown))}; "
                          f"available: {', '.join(CHANNELS)}")
        symbols = msg.get("symbols") or []
        if not isinstance(symbols, list) or not all(
            isinstance(s, str) and s in self.bridge.market.symbols for s in symbols
        ):
            raise invalid("'symbols' must be a list of symbol names of this server")
        if action == "unsubscribe":
            sock.channels -= channels
            sock.send({"type": "unsubscribed", "channels": sorted(channels)})
            return
        sock.channels |= channels
        sock.symbols |= set(symbols)
        sock.send({"type": "subscribed", "channels": sorted(sock.channels),
                   "symbols": sorted(sock.symbols)})
        market = self.bridge.market
        if "account" in channels:
            sock.send({"type": "event", "channel": "account",
                       "data": self.bridge.account_view(sock.login)})
        for sym in market.symbols.values():
            if "quote" in channels and sock.wants("quote", sym.name):
                sock.send(quote_frame(sym))


def quote_frame(sym: Symbol) -> dict[str, Any]:
    return {"type": "event", "channel": "quote",
            "data": {"symbol": sym.name, "bid": sym.bid, "ask": sym.ask,
                     "time": iso(sym.last_time or time.time())}}


def depth_frame(sym: Symbol) -> dict[str, Any]:
    """Five synthetic levels either side of the touch (the LP's book is not simulated)."""
    step = sym.point * max(1, sym.spread // 2)
    bids = [[round(sym.bid - i * step, sym.digits), 1.0 + i] for i in range(5)]
    asks = [[round(sym.ask + i * step, sym.digits), 1.0 + i] for i in range(5)]
    return {"type": "event", "channel": "depth",
            "data": {"symbol": sym.name, "bids": bids, "asks": asks,
                     "time": iso(sym.last_time or time.time())}}
