"""HTTP surface of the simulated terminal bridge (the ``/events`` socket is in :mod:`.events`,
the loopback control API in :mod:`.control`).

Pipeline of a REST call: route (JSON 404/405) → API key (401) → body (400) → session (401) →
``x-request-id`` on writes (replay, 409 on a different payload; a duplicate that arrives while
the first is still running waits for it) → faults (latency, then 429/502/401/400) → handler.
A request answered with an error was not executed, so repeating it cannot run it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from ..wire import iso
from .control import control_routes
from .events import EventHub
from .execution import Execution
from .records import Session
from .state import BASE_PATH, Bridge
from .wire import (
    BridgeError,
    check_request_id,
    error_response,
    fault_error,
    fingerprint,
    invalid,
    json_response,
    read_body,
)

Handler = Callable[[Session | None, Any], tuple[int, Any]]


class BridgeApp:
    """Routes of the bridge port; one per sandbox process."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.hub = EventHub(bridge)
        self.execution = Execution(bridge)
        self.inflight: dict[tuple[int, str], tuple[str, asyncio.Future[None]]] = {}

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
            body = await read_body(request) if request.method in ("POST", "PATCH") else None
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
            return json_response(data, status)
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
                raise fault_error(rule.error, rule.retryAfter)
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
                return json_response(task.view(), stored.status, {"x-idempotent-replay": "true"})
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
            return json_response(data, status)
        finally:
            self.inflight.pop(key, None)
            done.set_result(None)

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
                self.execution.schedule(task.id)
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
                self.execution.schedule(task.id)
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
            WebSocketRoute(f"{base}/events", self.hub.serve),
            *control_routes(b, self.hub, self.execution),
        ]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in the bridge's error format, not as plain text."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = "NotFound" if status == 404 else "ValidationError"
    message = "no such endpoint" if status == 404 else f"method {request.method} not allowed"
    return json_response({"error": {"code": code, "message": message}}, status)


def build_bridge_app(bridge: Bridge) -> Starlette:
    """The ASGI app of the bridge port."""
    app = BridgeApp(bridge)
    return Starlette(routes=app.routes(), exception_handlers={HTTPException: _http_error})
