"""SignalR hubs ``/hubs/mt4/v2`` and ``/hubs/mt5/v2`` on the main port (reference §6).

ASP.NET Core SignalR as the vendor runs it: ``POST {hub}/negotiate?negotiateVersion=1`` then a
WebSocket speaking the JSON hub protocol (records terminated by 0x1E). The bearer token is
accepted as ``Authorization: Bearer``, ``?access_token=`` or ``?signalr_token=`` (the REST
token store). ``OnConnectionStatus {connected: true}`` follows the handshake.

MT4: ``SubscribeToTicks`` / ``UnsubscribeFromTicks`` (completion, then ``OnTick`` pushes) and
the streams ``StreamTicks(symbol?)``, ``StreamTrades``, ``StreamUserUpdates``,
``StreamSymbolUpdates``, ``StreamMarginCallUpdates``. MT5: ``StreamMarginCallUpdates``
``{login, type, direction}``.

The hub subscribes to the simulator's :class:`~.events.EventBus` only while some connection
wants a topic, so an idle sandbox pays nothing. Each event is encoded once and spliced into
every interested connection's frames; a connection's frames are written in batches (several
records per WebSocket message, as the protocol allows) by one writer task.

Faults (see :mod:`.hubs_control`): drop every socket, stall (stop sending, pings included,
without closing), refuse negotiation (HTTP 503).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import MT4_PLATFORM_ID, MT5_PLATFORM_ID
from .hub_payloads import margin_payload, symbol_payload, tick_payload, trade_payload, user_payload
from .market import Symbol
from .mt4.records import Account, Trade
from .simulator import Sandbox
from .wire import server_clock

RS = "\x1e"
INVOCATION, STREAM_ITEM, COMPLETION, STREAM_INVOCATION, CANCEL, PING, CLOSE = range(1, 8)
PING_FRAME = '{"type":6}' + RS
MAX_QUEUED_FRAMES = 200_000  # beyond this a connection is too slow: closed, as a server would
HUB_PLATFORMS = {"mt4": MT4_PLATFORM_ID, "mt5": MT5_PLATFORM_ID}
MT4_STREAMS = {
    "StreamTicks": "tick",
    "StreamTrades": "trade",
    "StreamUserUpdates": "user",
    "StreamSymbolUpdates": "symbol",
    "StreamMarginCallUpdates": "margin",
}
MT5_STREAMS = {"StreamMarginCallUpdates": "mt5.margin"}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ------------------------------------------------------------------------- connections


class HubConnection:
    """One client socket: its stream invocations, tick subscriptions and outgoing queue."""

    def __init__(self, hub: HubServer, ws: WebSocket, kind: str) -> None:
        self.hub = hub
        self.ws = ws
        self.kind = kind
        self.connection_id = secrets.token_urlsafe(16)
        self.frames: collections.deque[str] = collections.deque()
        self.wake = asyncio.Event()
        self.streams: dict[str, tuple[str, str | None]] = {}  # invocationId -> (topic, arg)
        self.ticks: set[str] = set()  # SubscribeToTicks symbols
        self.closed = False
        self.dropped = False

    def push(self, frame: str) -> None:
        if self.closed or self.hub.stalled:
            return
        if len(self.frames) >= MAX_QUEUED_FRAMES:
            self.frames.clear()
            self.abort()
            return
        self.frames.append(frame)
        self.wake.set()

    def abort(self) -> None:
        if not self.closed:
            self.closed = self.dropped = True
            self.wake.set()

    async def writer(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.closed:
                return
            if not self.frames:
                continue
            batch = "".join(self.frames)
            self.frames.clear()
            await self.ws.send_text(batch)

    async def keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.hub.keep_alive)
            self.push(PING_FRAME)


class HubServer:
    """Both hubs of one sandbox: connections, event fan-out, faults."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.connections: set[HubConnection] = set()
        self.pending_tokens: dict[str, tuple[str, float]] = {}  # connectionToken -> (kind, exp)
        self.stalled = False
        self.refuse_negotiate = False
        self.keep_alive = 15.0
        self.frames_sent = 0
        self._interest: collections.Counter[str] = collections.Counter()
        self._unsubscribe: dict[str, Callable[[], None]] = {}
        self._handlers: dict[str, Callable[[Any], None]] = {
            "tick": self._on_tick,
            "trade": self._on_trade,
            "user": self._on_user,
            "symbol": self._on_symbol,
            "margin": self._on_margin,
            "mt5.margin": self._on_mt5_margin,
        }

    # ---------------------------------------------------------------- bus interest
    def _want(self, topic: str) -> None:
        self._interest[topic] += 1
        if topic not in self._unsubscribe:
            self._unsubscribe[topic] = self.sb.market.events.subscribe(topic, self._handlers[topic])

    def _unwant(self, topic: str) -> None:
        self._interest[topic] -= 1
        if self._interest[topic] <= 0:
            del self._interest[topic]
            stop = self._unsubscribe.pop(topic, None)
            if stop is not None:
                stop()

    # ---------------------------------------------------------------- fan-out
    def _stream_out(self, topic: str, item: str, arg_filter: str | None = None) -> None:
        for conn in self.connections:
            for inv, (t, arg) in conn.streams.items():
                if t == topic and (arg is None or arg == arg_filter):
                    conn.push(f'{{"type":2,"invocationId":{_dumps(inv)},"item":{item}}}{RS}')

    def _on_tick(self, sym: Symbol) -> None:
        item = _dumps(tick_payload(sym))
        on_tick = f'{{"type":1,"target":"OnTick","arguments":[{item}]}}{RS}'
        for conn in self.connections:
            if sym.name in conn.ticks:
                conn.push(on_tick)
        self._stream_out("tick", item, sym.name)

    def _on_trade(self, event: tuple[str, Trade]) -> None:
        with server_clock(self.sb.mt4.utc_offset_seconds):  # MT4's events: its wall clock
            self._stream_out("trade", _dumps(trade_payload(*event)))

    def _on_user(self, event: tuple[str, Account]) -> None:
        with server_clock(self.sb.mt4.utc_offset_seconds):
            self._stream_out("user", _dumps(user_payload(*event)))

    def _on_symbol(self, event: tuple[str, Symbol]) -> None:
        self._stream_out("symbol", _dumps(symbol_payload(*event)))

    def _on_margin(self, acc: Account) -> None:
        self.emit_margin(_dumps(margin_payload(self.sb.mt4, acc)))

    def emit_margin(self, item: str) -> None:
        """Push one encoded MarginCallPayload to every MT4 ``StreamMarginCallUpdates``."""
        self._stream_out("margin", item)

    def _on_mt5_margin(self, event: dict[str, Any]) -> None:
        self._stream_out("mt5.margin", _dumps(event))

    # ---------------------------------------------------------------- faults
    def drop_all(self) -> int:
        dropped = 0
        for conn in list(self.connections):
            conn.abort()
            dropped += 1
        return dropped

    def status(self) -> dict[str, Any]:
        return {
            "connections": len(self.connections),
            "streams": sum(len(c.streams) for c in self.connections),
            "stalled": self.stalled,
            "refuseNegotiate": self.refuse_negotiate,
            "keepAliveSeconds": self.keep_alive,
            "topics": sorted(self._interest),
        }

    # ---------------------------------------------------------------- HTTP negotiate
    def authorized(self, headers: Any, query: Any) -> bool:
        tokens = self.sb.tokens
        if tokens.check_authorization(headers.get("authorization")):
            return True
        token = query.get("access_token") or query.get("signalr_token")
        return bool(token) and tokens.valid(token)

    def platform_ok(self, kind: str, query: Any) -> bool:
        tp = (query.get("tradePlatform") or "").lower()
        return tp == HUB_PLATFORMS[kind]

    async def negotiate(self, request: Request, kind: str) -> Response:
        if self.refuse_negotiate:
            return Response("Service Unavailable", status_code=503, media_type="text/plain")
        if not self.authorized(request.headers, request.query_params):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if not self.platform_ok(kind, request.query_params):
            return Response("Trade platform not found", status_code=404, media_type="text/plain")
        now = time.monotonic()
        self.pending_tokens = {k: v for k, v in self.pending_tokens.items() if v[1] > now}
        connection_id = secrets.token_urlsafe(16)
        version = request.query_params.get("negotiateVersion", "0")
        body: dict[str, Any] = {"connectionId": connection_id}
        if version == "1":
            token = secrets.token_urlsafe(16)
            body["connectionToken"] = token
            body["negotiateVersion"] = 1
        else:
            token = connection_id
            body["negotiateVersion"] = 0
        body["availableTransports"] = [
            {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}
        ]
        self.pending_tokens[token] = (kind, now + 60.0)
        return JSONResponse(body)

    # ---------------------------------------------------------------- WebSocket
    async def _deny(self, ws: WebSocket, status: int) -> None:
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(Response(status_code=status))
        else:
            await ws.close(code=1008)

    async def serve(self, ws: WebSocket, kind: str) -> None:
        query = ws.query_params
        if self.refuse_negotiate:
            await self._deny(ws, 503)
            return
        if not self.authorized(ws.headers, query):
            await self._deny(ws, 401)
            return
        if not self.platform_ok(kind, query):
            await self._deny(ws, 404)
            return
        token = query.get("id")
        if token is not None:
            pending = self.pending_tokens.pop(token, None)
            if pending is None or pending[0] != kind:
                await self._deny(ws, 404)
                return
        await ws.accept()
        conn = HubConnection(self, ws, kind)
        try:
            if not await self._handshake(ws):
                return
            self.connections.add(conn)
            conn.push(
                _dumps(
                    {"type": 1, "target": "OnConnectionStatus", "arguments": [{"connected": True}]}
                )
                + RS
            )
            await self._run(conn)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self._forget(conn)

    async def _handshake(self, ws: WebSocket) -> bool:
        buffer = ""
        while RS not in buffer:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return False
            buffer += message.get("text") or (message.get("bytes") or b"").decode()
        raw, _, _rest = buffer.partition(RS)
        try:
            hello = json.loads(raw)
        except ValueError:
            hello = None
        if not isinstance(hello, dict) or hello.get("protocol") != "json":
            await ws.send_text(
                _dumps(
                    {
                        "error": "Requested protocol is not available; "
                        "this hub speaks 'json' version 1."
                    }
                )
                + RS
            )
            await ws.close(code=1000)
            return False
        await ws.send_text("{}" + RS)
        return True

    async def _run(self, conn: HubConnection) -> None:
        writer = asyncio.create_task(conn.writer())
        pinger = asyncio.create_task(conn.keepalive())
        reader = asyncio.create_task(self._read(conn))
        try:
            await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            conn.closed = True
            for task in (writer, pinger, reader):
                task.cancel()
            await asyncio.gather(writer, pinger, reader, return_exceptions=True)
            with contextlib.suppress(RuntimeError, OSError):
                await conn.ws.close(code=1011 if conn.dropped else 1000)

    async def _read(self, conn: HubConnection) -> None:
        buffer = ""
        while not conn.closed:
            message = await conn.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            buffer += message.get("text") or (message.get("bytes") or b"").decode()
            *records, buffer = buffer.split(RS)
            for raw in records:
                if raw.strip() and not self._handle(conn, raw):
                    return

    def _handle(self, conn: HubConnection, raw: str) -> bool:
        try:
            msg = json.loads(raw)
        except ValueError:
            return False
        kind = msg.get("type")
        inv = msg.get("invocationId")
        target = msg.get("target")
        args = msg.get("arguments") or []
        if kind == INVOCATION:
            error = self._invoke(conn, target, args)
            if inv is not None:
                body: dict[str, Any] = {"type": COMPLETION, "invocationId": inv}
                if error:
                    body["error"] = error
                conn.push(_dumps(body) + RS)
        elif kind == STREAM_INVOCATION:
            streams = MT4_STREAMS if conn.kind == "mt4" else MT5_STREAMS
            topic = streams.get(target)
            if topic is None or inv is None:
                conn.push(
                    _dumps(
                        {
                            "type": COMPLETION,
                            "invocationId": inv,
                            "error": f"Unknown hub method '{target}'",
                        }
                    )
                    + RS
                )
                return True
            arg = args[0] if (topic == "tick" and args and isinstance(args[0], str)) else None
            conn.streams[inv] = (topic, arg)
            self._want(topic)
        elif kind == CANCEL:
            entry = conn.streams.pop(inv, None)
            if entry is not None:
                self._unwant(entry[0])
                conn.push(_dumps({"type": COMPLETION, "invocationId": inv}) + RS)
        elif kind == CLOSE:
            return False
        return True  # pings and completions from the client need no answer

    def _invoke(self, conn: HubConnection, target: str | None, args: list) -> str | None:
        if conn.kind != "mt4" or target not in ("SubscribeToTicks", "UnsubscribeFromTicks"):
            return f"Unknown hub method '{target}'"
        symbol = args[0] if args and isinstance(args[0], str) else None
        if symbol not in self.sb.market.symbols:
            return f"Unknown symbol '{symbol}'"
        if target == "SubscribeToTicks":
            if symbol not in conn.ticks:
                conn.ticks.add(symbol)
                self._want("tick")
        elif symbol in conn.ticks:
            conn.ticks.discard(symbol)
            self._unwant("tick")
        return None

    def _forget(self, conn: HubConnection) -> None:
        conn.closed = True
        if conn in self.connections:
            self.connections.discard(conn)
            for topic, _ in conn.streams.values():
                self._unwant(topic)
            for _ in conn.ticks:
                self._unwant("tick")
            conn.streams.clear()
            conn.ticks.clear()


def hub_routes(hub: HubServer) -> list[BaseRoute]:
    """The SignalR hubs ``/hubs/mt4/v2`` and ``/hubs/mt5/v2``: negotiate, then the socket."""
    routes: list[BaseRoute] = []
    for kind in ("mt4", "mt5"):

        async def negotiate(request: Request, kind: str = kind) -> Response:
            return await hub.negotiate(request, kind)

        async def socket(ws: WebSocket, kind: str = kind) -> None:
            await hub.serve(ws, kind)

        routes += [
            Route(f"/hubs/{kind}/v2/negotiate", negotiate, methods=["POST"]),
            WebSocketRoute(f"/hubs/{kind}/v2", socket),
        ]
    return routes
