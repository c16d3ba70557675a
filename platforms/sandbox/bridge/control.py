"""The bridge port's loopback-only control API under ``/_sandbox/bridge`` (tests and demos)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..faults import FaultError
from .events import EventHub
from .execution import Execution
from .faults import parse_spec, validate_rule
from .state import BASE_PATH, Bridge
from .wire import BridgeError, json_response, read_body

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def control_routes(bridge: Bridge, hub: EventHub, execution: Execution) -> list[Route]:
    """Faults, session expiry, socket drops, paused execution, account state and stats."""
    b = bridge

    def guard(fn: Callable[[Request], Awaitable[Response]]):
        async def wrapper(request: Request) -> Response:
            host = request.client.host if request.client else ""
            if host not in LOOPBACK:
                return json_response({"error": "the control API only answers loopback callers"},
                             403)
            try:
                return await fn(request)
            except BridgeError as exc:
                return json_response({"error": exc.message}, 400)
            except FaultError as exc:
                return json_response({"error": str(exc)}, 400)

        return wrapper

    async def summary(request: Request) -> Response:
        return json_response({"bridge_url": str(request.base_url).rstrip("/") + BASE_PATH,
                      "server": b.server, "logins": sorted(b.lp.accounts),
                      "sessionTtl": b.session_ttl, "execDelay": b.exec_delay,
                      "sockets": len(hub.sockets), "paused": execution.paused,
                      **b.stats_dict()})

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return json_response({"rules": [r.as_dict() for r in b.faults.rules]})
        if request.method == "DELETE":
            b.faults.clear()
            return json_response({"rules": []})
        body = await read_body(request)
        if isinstance(body, str):  # a --bridge-fault style spec
            rule = b.faults.add(parse_spec(body))
        else:
            rule = b.faults.add(validate_rule(body))
        return json_response({"id": rule.id})

    async def fault_one(request: Request) -> Response:
        try:
            rule_id = int(request.path_params["id"])
        except ValueError:
            return json_response({"error": "rule id must be an integer"}, 400)
        if not b.faults.remove(rule_id):
            return json_response({"error": f"no rule {rule_id}"}, 404)
        return json_response({"deleted": rule_id})

    async def expire(request: Request) -> Response:
        body = await read_body(request) or {}
        sid = body.get("sessionId") if isinstance(body, dict) else None
        if sid is not None and not isinstance(sid, str):
            return json_response({"error": "'sessionId' must be a string"}, 400)
        return json_response({"expired": b.expire(sid)})

    async def drop(request: Request) -> Response:
        return json_response({"dropped": hub.drop_all()})

    async def pause_execution(request: Request) -> Response:
        body = await read_body(request)
        paused = body.get("paused") if isinstance(body, dict) else None
        if not isinstance(paused, bool):
            return json_response({"error": 'body must be {"paused": true|false}'}, 400)
        released = execution.set_paused(paused)
        return json_response({"paused": execution.paused, "released": released})

    async def account_state(request: Request) -> Response:
        try:
            login = int(request.path_params["login"])
        except ValueError:
            return json_response({"error": "login must be an integer"}, 400)
        state = b.control_state(login)
        if state is None:
            return json_response({"error": f"no coverage account {login}"}, 404)
        return json_response(state)

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            b.stats.clear()
        return json_response(b.stats_dict())

    return [
        Route("/_sandbox/bridge", guard(summary), methods=["GET"]),
        Route("/_sandbox/bridge/faults", guard(faults), methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/bridge/faults/{id}", guard(fault_one), methods=["DELETE"]),
        Route("/_sandbox/bridge/sessions/expire", guard(expire), methods=["POST"]),
        Route("/_sandbox/bridge/events/drop", guard(drop), methods=["POST"]),
        Route("/_sandbox/bridge/execution", guard(pause_execution), methods=["POST"]),
        Route("/_sandbox/bridge/accounts/{login}", guard(account_state), methods=["GET"]),
        Route("/_sandbox/bridge/stats", guard(stats), methods=["GET", "DELETE"]),
    ]
