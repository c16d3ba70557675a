"""HTTP and WebSocket surface of the simulated terminal bridge, plus its loopback control API.

Pipeline of a REST call: route (JSON 404/405) → API key (401) → body (400) → session (401) →
``x-request-id`` on writes (replay, 409 on a different payload; a duplicate that arrives while
the first is still running waits for it) → faults (latency, then 429/502/401/400) → handler.
A request answered with an error was not executed, so repeating it cannot run it twice.

``WS {base}/events``: the same key and session headers; JSON text frames. The client sends
``{"action": "subscribe", "channels": [...], "symbols": [...]}`` and gets ``subscribed``, then
``{"type": "event", "channel": ..., "data": ...}`` frames for its own account only.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..faults import FaultError
from ..market import BUY, SELL, Symbol
from ..wire import decode, encode, iso
from .faults import parse_spec, validate_rule
from .state import BASE_PATH, Bridge, BridgeError, Session, check_request_id, fingerprint, invalid

JSON = "application/json"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
CHANNELS = ("quote", "depth", "account", "order", "profit")
CHANNEL_ALIASES = {"on-profit": "profit", "quotes": "quote", "orders": "order"}
MAX_BODY = 64 * 1024
MAX_QUEUED = 10_000
WATCH_INTERVAL = 0.25  # how often an open socket re-checks its session

Handler = Callable[[Session | None, Any], tuple[int, Any]]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode(data), status_code=status, media_type=JSON, headers=headers)


def error_response(exc: BridgeError) -> Response:
    headers = None
    if exc.retry_after is not None:
        headers = {"Retry-After": str(max(0, math.ceil(exc.retry_after)))}
    return _json(exc.body(), exc.status, headers)


def _fault_error(code: str, retry_after: float) -> BridgeError:
    messages = {
        "RateLimited": "too many requests for this workspace; retry after the indicated delay",
        "BridgeUnavailable": "the bridge cannot reach the MT4 terminal of this account",
        "Unauthorized": "the session was revoked",
        "ValidationError": "the request was rejected by the bridge (injected fault)",
    }
    return BridgeError(code, messages[code],
                       retry_after=retry_after if code == "RateLimited" else None)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise invalid(f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        return None
    try:
        return decode(raw)
    except msgspec.DecodeError:
        raise invalid("the body is not valid JSON") from None


# ----------------------------------------------------------------------------- events socket


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
    """Fans bridge events and market ticks out to the sockets of the account they concern."""

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


# ----------------------------------------------------------------------------- the app


class BridgeApp:
    """Routes of the bridge port; one per sandbox process."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.hub = EventHub(bridge)
        self.inflight: dict[tuple[int, str], tuple[str, asyncio.Future[None]]] = {}
        self.paused = False  # control API: queued tasks wait until execution resumes
        self.held: list[str] = []

    # -------------------------------------------------------------- REST pipeline
    async def call(
        self,
        request: Request,
        operation: str,
        handler: Handler,
        *,
        session_from: str = "header",  # "header" | "path" | "none"
        write: bool = False,
    ) -> Response:
        bridge = self.bridge
        bridge.count(operation)
        try:
            bridge.check_key(request.headers.get("authorization"))
            body = await _body(request) if request.method in ("POST", "PATCH") else None
            session = None
            if session_from == "path":
                session = bridge.session(request.path_params["session_id"])
                header = request.headers.get("x-session-id")
                if header is not None and header != session.id:
                    raise invalid("x-session-id does not match the session in the path")
            elif session_from == "header":
                session = bridge.session(request.headers.get("x-session-id"))
            request_id = (
                check_request_id(request.headers.get("x-request-id")) if write else None
            )
            if write and request_id is not None and session is not None:
                fp = fingerprint(request.method, request.url.path, body)
                return await self._once(session.login, request_id, fp,
                                        lambda: self._faulted(operation, handler, session, body))
            status, data = await self._faulted(operation, handler, session, body)
            return _json(data, status)
        except BridgeError as exc:
            return error_response(exc)

    async def _faulted(self, operation: str, handler: Handler, session: Session | None,
                       body: Any) -> tuple[int, Any]:
        fired = self.bridge.faults.fire(operation)
        latency = max((r.latency for r in fired), default=0.0)
        if latency > 0:
            await asyncio.sleep(latency)
        for rule in fired:
            if rule.error:
                raise _fault_error(rule.error, rule.retryAfter)
        if session is not None:  # it may have expired while the request waited
            self.bridge.session(session.id)
        result = handler(session, body)
        self.bridge.count(operation, executed=True)
        return result

    async def _once(self, login: int, request_id: str, fp: str,
                    run: Callable[[], Awaitable[tuple[int, Any]]]) -> Response:
        """At most one execution per (account, request id); later ones replay its task."""
        key = (login, request_id)
        while True:
            stored = self.bridge.stored_write(login, request_id, fp)
            if stored is not None:
                task = self.bridge.tasks[stored.task_id]
                return _json(task.view(), stored.status, {"x-idempotent-replay": "true"})
            running = self.inflight.get(key)
            if running is None:
                break
            if running[0] != fp:
                raise BridgeError("TaskConflict", f"x-request-id {request_id!r} is in use by "
                                  "another request with a different payload")
            await asyncio.shield(running[1])
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.inflight[key] = (fp, done)
        try:
            status, data = await run()
            self.bridge.remember_write(login, request_id, fp, status, data["taskId"])
            return _json(data, status)
        finally:
            self.inflight.pop(key, None)
            done.set_result(None)

    def _schedule(self, task_id: str) -> None:
        """A queued task runs a moment later, as a terminal would fill it (the loop keeps the
        timer; nothing else needs it)."""
        if self.paused:
            self.held.append(task_id)
            return
        asyncio.get_running_loop().call_later(self.bridge.exec_delay, self.bridge.execute,
                                              task_id)

    def set_paused(self, paused: bool) -> int:
        """Pause task execution (tasks stay queued) or resume it; returns tasks released."""
        self.paused = paused
        if paused:
            return 0
        held, self.held = self.held, []
        for task_id in held:
            self._schedule(task_id)
        return len(held)

    # -------------------------------------------------------------- handlers
    def routes(self) -> list:
        b = self.bridge

        def open_session(_: Session | None, body: Any) -> tuple[int, Any]:
            s = b.open_session(body)
            return 200, {"sessionId": s.id, "expiresAt": iso(s.expires), "server": b.server,
                         "login": s.login}

        def inspect(s: Session | None, _: Any) -> tuple[int, Any]:
            assert s is not None
            return 200, b.session_view(s)

        def heartbeat(s: Session | None, _: Any) -> tuple[int, Any]:
            assert s is not None
            b.heartbeat(s)
            return 200, {"sessionId": s.id, "expiresAt": iso(s.expires)}

        def release(s: Session | None, _: Any) -> tuple[int, Any]:
            assert s is not None
            b.release(s)
            return 200, {"sessionId": s.id, "released": True}

        def account(s: Session | None, _: Any) -> tuple[int, Any]:
            assert s is not None
            return 200, b.account_view(s.login)

        def positions(s: Session | None, _: Any) -> tuple[int, Any]:
            assert s is not None
            return 200, b.positions_view(s.login)

        def symbols(s: Session | None, _: Any) -> tuple[int, Any]:
            return 200, b.symbols_view()

        async def session_open(request: Request) -> Response:
            return await self.call(request, "session.open", open_session, session_from="none")

        async def session_one(request: Request) -> Response:
            if request.method == "DELETE":
                return await self.call(request, "session.close", release, session_from="path")
            return await self.call(request, "session.get", inspect, session_from="path")

        async def session_heartbeat(request: Request) -> Response:
            return await self.call(request, "session.heartbeat", heartbeat, session_from="path")

        async def get_account(request: Request) -> Response:
            return await self.call(request, "account", account)

        async def get_positions(request: Request) -> Response:
            return await self.call(request, "positions", positions)

        async def get_symbols(request: Request) -> Response:
            return await self.call(request, "symbols", symbols)

        async def quotes_history(request: Request) -> Response:
            params = request.query_params
            return await self.call(request, "quotes.history",
                                   lambda s, _: (200, b.history_view(params)))

        async def orders(request: Request) -> Response:
            def submit(s: Session | None, body: Any) -> tuple[int, Any]:
                assert s is not None
                task = b.submit_order(s.login, body, request.headers.get("x-request-id"))
                self._schedule(task.id)
                return 202, task.view()

            return await self.call(request, "orders.submit", submit, write=True)

        async def order_one(request: Request) -> Response:
            task_id = request.path_params["task_id"]

            def modify(s: Session | None, body: Any) -> tuple[int, Any]:
                assert s is not None
                return 200, b.modify(s.login, task_id, body).view()

            return await self.call(request, "orders.modify", modify, write=True)

        async def position_close(request: Request) -> Response:
            ticket = request.path_params["ticket"]

            def close(s: Session | None, body: Any) -> tuple[int, Any]:
                assert s is not None
                task = b.submit_close(s.login, ticket, body, request.headers.get("x-request-id"))
                self._schedule(task.id)
                return 202, task.view()

            return await self.call(request, "positions.close", close, write=True)

        base = BASE_PATH
        return [
            Route(f"{base}/session/open", session_open, methods=["POST"]),
            Route(f"{base}/session/{{session_id}}", session_one, methods=["GET", "DELETE"]),
            Route(f"{base}/session/{{session_id}}/heartbeat", session_heartbeat,
                  methods=["POST"]),
            Route(f"{base}/account", get_account, methods=["GET"]),
            Route(f"{base}/positions", get_positions, methods=["GET"]),
            Route(f"{base}/symbols", get_symbols, methods=["GET"]),
            Route(f"{base}/quotes/history", quotes_history, methods=["GET"]),
            Route(f"{base}/orders", orders, methods=["POST"]),
            Route(f"{base}/orders/{{task_id}}", order_one, methods=["PATCH"]),
            Route(f"{base}/positions/{{ticket}}/close", position_close, methods=["POST"]),
            WebSocketRoute(f"{base}/events", self.events),
            *self.control_routes(),
        ]

    # -------------------------------------------------------------- /events
    async def _deny(self, ws: WebSocket, exc: BridgeError) -> None:
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            headers = None
            if exc.retry_after is not None:
                headers = {"Retry-After": str(max(0, math.ceil(exc.retry_after)))}
            await ws.send_denial_response(_json(exc.body(), exc.status, headers))
            return
        await ws.accept()
        await ws.send_text(encode({"type": "error", **exc.body()}).decode())
        await ws.close(code=4000 + exc.status)

    async def events(self, ws: WebSocket) -> None:
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
                    raise _fault_error(rule.error, rule.retryAfter)
        except BridgeError as exc:
            await self._deny(ws, exc)
            return
        await ws.accept()
        if any(rule.drop for rule in fired):
            await ws.close(code=1011)
            return
        b.count("events", executed=True)
        sock = EventSocket(ws, session)
        self.hub.add(sock)
        sock.send({"type": "ready", "login": session.login, "server": b.server,
                   "channels": list(CHANNELS)})
        tasks = [asyncio.create_task(self._writer(sock)),
                 asyncio.create_task(self._reader(sock)),
                 asyncio.create_task(self._watch(sock))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sock.closed = True
            self.hub.remove(sock)
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

    # -------------------------------------------------------------- control API
    def control_routes(self) -> list[Route]:
        b = self.bridge

        def guard(fn: Callable[[Request], Awaitable[Response]]):
            async def wrapper(request: Request) -> Response:
                host = request.client.host if request.client else ""
                if host not in LOOPBACK:
                    return _json({"error": "the control API only answers loopback callers"},
                                 403)
                try:
                    return await fn(request)
                except BridgeError as exc:
                    return _json({"error": exc.message}, 400)
                except FaultError as exc:
                    return _json({"error": str(exc)}, 400)

            return wrapper

        async def summary(request: Request) -> Response:
            return _json({"bridge_url": str(request.base_url).rstrip("/") + BASE_PATH,
                          "server": b.server, "logins": sorted(b.lp.accounts),
                          "sessionTtl": b.session_ttl, "execDelay": b.exec_delay,
                          "sockets": len(self.hub.sockets), "paused": self.paused,
                          **b.stats_dict()})

        async def faults(request: Request) -> Response:
            if request.method == "GET":
                return _json({"rules": [r.as_dict() for r in b.faults.rules]})
            if request.method == "DELETE":
                b.faults.clear()
                return _json({"rules": []})
            body = await _body(request)
            if isinstance(body, str):  # a --bridge-fault style spec
                rule = b.faults.add(parse_spec(body))
            else:
                rule = b.faults.add(validate_rule(body))
            return _json({"id": rule.id})

        async def fault_one(request: Request) -> Response:
            try:
                rule_id = int(request.path_params["id"])
            except ValueError:
                return _json({"error": "rule id must be an integer"}, 400)
            if not b.faults.remove(rule_id):
                return _json({"error": f"no rule {rule_id}"}, 404)
            return _json({"deleted": rule_id})

        async def expire(request: Request) -> Response:
            body = await _body(request) or {}
            sid = body.get("sessionId") if isinstance(body, dict) else None
            if sid is not None and not isinstance(sid, str):
                return _json({"error": "'sessionId' must be a string"}, 400)
            return _json({"expired": b.expire(sid)})

        async def drop(request: Request) -> Response:
            return _json({"dropped": self.hub.drop_all()})

        async def execution(request: Request) -> Response:
            body = await _body(request)
            paused = body.get("paused") if isinstance(body, dict) else None
            if not isinstance(paused, bool):
                return _json({"error": 'body must be {"paused": true|false}'}, 400)
            released = self.set_paused(paused)
            return _json({"paused": self.paused, "released": released})

        async def account_state(request: Request) -> Response:
            try:
                login = int(request.path_params["login"])
            except ValueError:
                return _json({"error": "login must be an integer"}, 400)
            state = b.control_state(login)
            if state is None:
                return _json({"error": f"no coverage account {login}"}, 404)
            return _json(state)

        async def stats(request: Request) -> Response:
            if request.method == "DELETE":
                b.stats.clear()
            return _json(b.stats_dict())

        return [
            Route("/_sandbox/bridge", guard(summary), methods=["GET"]),
            Route("/_sandbox/bridge/faults", guard(faults), methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/bridge/faults/{id}", guard(fault_one), methods=["DELETE"]),
            Route("/_sandbox/bridge/sessions/expire", guard(expire), methods=["POST"]),
            Route("/_sandbox/bridge/events/drop", guard(drop), methods=["POST"]),
            Route("/_sandbox/bridge/execution", guard(execution), methods=["POST"]),
            Route("/_sandbox/bridge/accounts/{login}", guard(account_state), methods=["GET"]),
            Route("/_sandbox/bridge/stats", guard(stats), methods=["GET", "DELETE"]),
        ]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in the bridge's error format, not as plain text."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = "NotFound" if status == 404 else "ValidationError"
    message = "no such endpoint" if status == 404 else f"method {request.method} not allowed"
    return _json({"error": {"code": code, "message": message}}, status)


def build_bridge_app(bridge: Bridge) -> Starlette:
    """The ASGI app of the bridge port."""
    app = BridgeApp(bridge)
    starlette = Starlette(routes=app.routes(), exception_handlers={HTTPException: _http_error})
    starlette.state.bridge_app = app
    return starlette
