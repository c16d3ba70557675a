"""The sandbox's two ASGI apps: the main port (OAuth, the v2 API, platform list and ping, the
SignalR hubs and the loopback control API) and the x86 sidecar (OAuth and its v2 operations)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .control import build_control
from .hubs import HubServer, hub_routes
from .hubs_control import build_hubs_control
from .oauth import discovery, token_endpoint
from .pipeline import JSON_TYPE, serve_api
from .recorder import Recorder
from .simulator import Sandbox
from .wire import encode


def build_routes(sandbox: Sandbox, port: str) -> list[BaseRoute]:
    """OAuth, the v2 API and, on the main port, the platform list, ping and the hubs."""

    async def well_known(request: Request) -> Response:
        return JSONResponse(discovery(sandbox.base_url))

    async def token(request: Request) -> Response:
        return await token_endpoint(request, sandbox.tokens)

    async def api(request: Request) -> Response:
        return await serve_api(sandbox, request, port)

    routes: list[BaseRoute] = [
        Route("/.well-known/openid-configuration", well_known, methods=["GET"]),
        Route("/connect/token", token, methods=["POST"]),
        Route("/api/v2/{rest:path}", api, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
    ]
    if port == "main":

        async def trade_platforms(request: Request) -> Response:
            if not sandbox.tokens.check_authorization(request.headers.get("authorization")):
                return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return Response(encode(sandbox.platforms_list()), media_type=JSON_TYPE)

        async def ping(request: Request) -> Response:
            if not sandbox.tokens.check_authorization(request.headers.get("authorization")):
                return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
            tp = request.path_params["tp"].lower()
            if tp not in sandbox.platforms:
                return JSONResponse(
                    {"error": "NotFound", "message": f"Trade platform '{tp}' not found"},
                    status_code=404,
                )
            return JSONResponse({"id": tp, "connected": True, "latencyMs": 1})

        routes += [
            Route("/api/TradePlatforms", trade_platforms, methods=["GET"]),
            Route("/api/TradePlatforms/{tp}/Ping", ping, methods=["GET"]),
        ]
        hub = HubServer(sandbox)
        routes += [*hub_routes(hub), *build_hubs_control(sandbox, hub)]
    return routes


def build_app(sandbox: Sandbox, port: str) -> Recorder:
    """The ASGI app of one port: ``main`` (with the ``/_sandbox`` control API) or ``sidecar``."""
    routes = build_routes(sandbox, port)
    if port == "main":
        routes = [*build_control(sandbox), *routes]
    return Recorder(Starlette(routes=routes), sandbox, port)
