"""The sandbox process state and its two ASGI apps (main port and x86 sidecar).

Pipeline of every ``/api/v2/...`` call: route (404 if the path is not served on this port) →
bearer auth (401) → stats.received → deadline (``X-Request-Timeout`` / ``?requestTimeout``) →
platform lookup → Idempotency-Key (replay / in-progress / mismatch) → faults (html502, latency,
error) → handler → stats.executed → idempotency store → envelope.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import MT4_PLATFORM_ID, MT5_PLATFORM_ID, mt5, ops_mt4  # noqa: F401 - registers ops
from .faults import Faults
from .market import Market
from .mt5 import MT5Platform
from .oauth import TokenStore, discovery, token_endpoint
from .ops import Ctx, Op, find, known_action
from .state import MT4Platform
from .wire import ApiFail, Result, encode, envelope_error, envelope_ok, new_activity_id

log = logging.getLogger("platforms.sandbox")

JSON_TYPE = "application/json; charset=utf-8"
IDEM_KEEP_OK = 60.0
IDEM_KEEP_UNKNOWN = 3600.0
#: the idempotency store is scanned for expired keys only past this many (and then its double)
IDEM_PRUNE_AT = 5000
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>"
    b"502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
FAULT_MANAGER_CODES = {"MT4Error": "TechProblem", "MT5Error": "TechProblem"}
FAULT_OUTCOMES = {"Busy": "not-started", "Timeout": "timeout", "OutcomeUnknown": "unknown"}


class IdemEntry:
    __slots__ = ("body", "expires", "fingerprint", "outcome", "running")

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.running = True
        self.body = b""
        self.outcome: str | None = None
        self.expires = time.time() + IDEM_KEEP_UNKNOWN


class Config:
    def __init__(self, **kw: Any) -> None:
        self.host: str = kw.get("host", "127.0.0.1")
        self.port: int = kw.get("port", 8100)
        self.sidecar_port: int = kw.get("sidecar_port", 8101)
        self.users: int = kw.get("users", 500)
        self.seed: int = kw.get("seed", 1)
        self.tick_rate: float = kw.get("tick_rate", 4.0)
        self.token_lifetime: int = kw.get("token_lifetime", 3600)
        self.client_id: str = kw.get("client_id", "sandbox")
        self.client_secret: str = kw.get("client_secret", "sandbox-secret")
        self.faults: list[dict] = kw.get("faults", [])
        self.record_exchanges: bool = kw.get("record_exchanges", False)
        self.mt5_users: int | None = kw.get("mt5_users")


class Sandbox:
    """Everything shared by both listeners: market, platforms, tokens, faults, stats, caches."""

    def __init__(self, config: Config) -> None:
        self.config = config
        now = time.time()
        anchor = float(int(now // 86400) * 86400)
        self.market = Market(config.seed, anchor)
        self.mt4 = MT4Platform(config.seed, config.users, self.market, now=now)
        mt5_users = (
            config.mt5_users
            if config.mt5_users is not None
            else min(max(config.users // 10, 50), 5000)
        )
        self.mt5 = MT5Platform(config.seed, mt5_users, self.market)
        self.platforms: dict[str, tuple[str, Any]] = {
            MT4_PLATFORM_ID: ("MT4", self.mt4),
            MT5_PLATFORM_ID: ("MT5", self.mt5),
        }
        self.tokens = TokenStore(config.client_id, config.client_secret, config.token_lifetime)
        self.faults = Faults(config.seed)
        for rule in config.faults:
            self.faults.add(rule)
        self.stats: dict[str, list[int]] = {}
        self.idem: dict[str, IdemEntry] = {}
        self.idem_prune_at = IDEM_PRUNE_AT
        self.exchanges: list[dict[str, Any]] = []
        self.exchange_seq = 0
        self.base_url = ""
        self.sidecar_url = ""
        self.sidecar_control: Callable[[bool], Awaitable[None]] | None = None
        self.sidecar_is_up = True
        self.background: set[asyncio.Task] = set()

    # ---------------------------------------------------------------- bookkeeping
    def count(self, name: str, executed: bool = False) -> None:
        row = self.stats.setdefault(name, [0, 0])
        row[1 if executed else 0] += 1

    def stats_dict(self) -> dict[str, Any]:
        return {
            "operations": {
                k: {"received": v[0], "executed": v[1]} for k, v in sorted(self.stats.items())
            },
            "tokensIssued": self.tokens.issued,
        }

    def tick(self, count: int = 1) -> dict[str, Any]:
        closes = 0
        for _ in range(count):
            now = time.time()
            self.market.tick(now)
            closes += self.mt4.sweep(now)
        return {"tick": self.market.tick_no, "stopOutCloses": closes}

    def full_sweep(self) -> int:
        now = time.time()
        closes = 0
        for acc in list(self.mt4.accounts.values()):
            if acc.open:
                closes += self.mt4.check_stopout(acc, now)
        return closes

    def prune_idem(self) -> None:
        """Forget expired replies once the store has grown past its mark.

        The mark then doubles with what is still live, so a burst of more than the mark's keys
        inside their lifetime costs one scan per doubling, not one per request (a scan per
        write made every write O(keys): the sandbox slowed from ~800 to ~170 writes/s over
        a 15,000-call run)."""
        if len(self.idem) > self.idem_prune_at:
            now = time.time()
            self.idem = {k: e for k, e in self.idem.items() if e.running or e.expires > now}
            self.idem_prune_at = max(IDEM_PRUNE_AT, 2 * len(self.idem))

    # ---------------------------------------------------------------- the v2 pipeline
    async def api(self, request: Request, port: str) -> Response:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        segs = [unquote(s) for s in raw_path.decode("latin-1").split("?", 1)[0].split("/")]
        # ['', 'api', 'v2', 'MT4', tp, Action, *args]
        if len(segs) < 6 or segs[1] != "api" or segs[2] != "v2" or segs[3] not in ("MT4", "MT5"):
            return Response(status_code=404)
        family, tp, action, args = segs[3], segs[4], segs[5], segs[6:]
        if args and args[-1] == "":
            args = args[:-1]
        method = request.method.upper()
        operation = find(family, method, action)
        if operation is None:
            if known_action(family, action):
                return Response(status_code=405)
            return Response(status_code=404)
        if len(args) not in operation.nargs:
            return Response(status_code=404)
        if (port == "main") == operation.sidecar:
            return Response(status_code=404)
        if not self.tokens.check_authorization(request.headers.get("authorization")):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await self._run(request, port, operation, family, tp, args)

    async def _run(
        self, request: Request, port: str, operation: Op, family: str, tp: str, args: list[str]
    ) -> Response:
        self.count(operation.name)
        activity = new_activity_id()
        headers = {"X-Request-Timeout-Applied": _fmt(operation.timeout)}

        def fail(exc: ApiFail) -> Response:
            h = dict(headers)
            if exc.outcome:
                h["X-Request-Outcome"] = exc.outcome
            return Response(envelope_error(exc, activity), media_type=JSON_TYPE, headers=h)

        try:
            deadline = _deadline(request, operation.timeout)
        except ApiFail as exc:
            return fail(exc)
        headers["X-Request-Timeout-Applied"] = _fmt(deadline)
        entry = self.platforms.get(tp.lower())
        if entry is None or entry[0] != family:
            return fail(ApiFail("NotFound", f"Trade platform '{tp}' not found for {family}"))
        platform = entry[1]
        body = await request.body()

        key = None
        if operation.write:
            key = request.headers.get("idempotency-key") or request.query_params.get("cacheId")
            if key is not None:
                if not key or len(key) > 255 or not all(32 <= ord(c) < 127 for c in key):
                    return fail(
                        ApiFail(
                            "Validation", "Idempotency-Key must be 1-255 printable ASCII characters"
                        )
                    )
                fp = _fingerprint(request, body)
                self.prune_idem()
                stored = self.idem.get(key)
                if stored is not None and not stored.running and stored.expires < time.time():
                    stored = None
                if stored is not None:
                    if stored.fingerprint != fp:
                        return fail(
                            ApiFail(
                                "Validation",
                                f"Idempotency-Key '{key}' was already "
                                "used for another request (different method, path, "
                                "query or body); use a new key",
                            )
                        )
                    if stored.running:
                        return fail(
                            ApiFail(
                                "OutcomeUnknown",
                                "A request with this Idempotency-Key is still in progress",
                                outcome="in-progress",
                            )
                        )
                    h = dict(headers)
                    h["Idempotency-Replayed"] = "true"
                    if stored.outcome:
                        h["X-Request-Outcome"] = stored.outcome
                    return Response(stored.body, media_type=JSON_TYPE, headers=h)
                self.idem[key] = IdemEntry(fp)

        def release() -> None:
            if key is not None:
                self.idem.pop(key, None)

        ctx = Ctx(platform, args, request.query_params, body, self)
        fired = self.faults.pick(operation.name, family, port)
        latency = max((r.latency for r in fired), default=0.0)
        error = next((r.error for r in fired if r.error), None)
        if any(r.html502 for r in fired):
            release()
            return Response(HTML_502, status_code=502, media_type="text/html")
        if any(r.drop for r in fired):
            # "Transport drop": a write is applied (and stored under its key), then the
            # connection closes before the answer. ASGI cannot close a socket before the status
            # line, so a proxy-style 502 head is sent and the body never comes: the client sees
            # a truncated answer, i.e. a transport error after sending.
            if operation.write:
                self._execute(operation, ctx, key, activity)
            else:
                release()
            return DroppedResponse()
        if latency > 0:
            if latency > deadline:
                await asyncio.sleep(deadline)
                if not operation.write:
                    release()
                    return fail(
                        ApiFail(
                            "Timeout",
                            f"The trade server did not answer within "
                            f"{_fmt(deadline)} s; nothing was changed",
                            outcome="timeout",
                        )
                    )
                task = asyncio.create_task(
                    self._late_write(operation, ctx, key, latency - deadline, activity)
                )
                self.background.add(task)
                task.add_done_callback(self.background.discard)
                return fail(
                    ApiFail(
                        "OutcomeUnknown",
                        f"The trade server did not answer within "
                        f"{_fmt(deadline)} s; the operation may still be applied",
                        outcome="unknown",
                    )
                )
            await asyncio.sleep(latency)
        if error is not None:
            # A write that misses its deadline is never "nothing changed" on the real server:
            # an injected Timeout on a write is answered, and applied, as OutcomeUnknown.
            if error in ("OutcomeUnknown", "Timeout") and operation.write:
                self._execute(operation, ctx, key, activity, outcome="unknown")
                return fail(
                    ApiFail(
                        "OutcomeUnknown",
                        "The trade server did not confirm the "
                        "operation in time; it may have been applied",
                        outcome="unknown",
                    )
                )
            release()
            return fail(
                ApiFail(
                    error,
                    _fault_message(error),
                    FAULT_MANAGER_CODES.get(error),
                    outcome=FAULT_OUTCOMES.get(error),
                )
            )
        out = self._execute(operation, ctx, key, activity)
        return Response(out, media_type=JSON_TYPE, headers=headers)

    def _execute(
        self, operation: Op, ctx: Ctx, key: str | None, activity: str, outcome: str | None = None
    ) -> bytes:
        try:
            result = operation.handler(ctx)
            if not isinstance(result, Result):
                result = Result(result)
            out = envelope_ok(result, activity)
        except ApiFail as exc:
            out = envelope_error(exc, activity)
        except Exception as exc:
            log.error("handler %s failed: %s", operation.name, traceback.format_exc())
            out = envelope_error(
                ApiFail("Internal", f"Internal error: {type(exc).__name__}"), activity
            )
        self.count(operation.name, executed=True)
        if key is not None:
            entry = self.idem.get(key)
            if entry is not None:
                entry.running = False
                entry.body = out
                entry.outcome = None
                entry.expires = time.time() + (IDEM_KEEP_UNKNOWN if outcome else IDEM_KEEP_OK)
        return out

    async def _late_write(
        self, operation: Op, ctx: Ctx, key: str | None, delay: float, activity: str
    ) -> None:
        await asyncio.sleep(delay)
        ctx.now = time.time()
        self._execute(operation, ctx, key, activity, outcome="unknown")

    # ---------------------------------------------------------------- unversioned endpoints
    def platforms_list(self) -> list[dict[str, Any]]:
        org = {
            "id": "5a1d0b0e-0000-4000-8000-00000000cafe",
            "name": "Sandbox Markets Ltd",
            "created": "2024-01-01T00:00:00Z",
        }
        return [
            {
                "id": MT4_PLATFORM_ID,
                "name": "Sandbox MT4",
                "type": "MT4",
                "login": 1,
                "organizationId": org["id"],
                "organization": org,
                "created": "2024-01-01T00:00:00Z",
            },
            {
                "id": MT5_PLATFORM_ID,
                "name": "Sandbox MT5",
                "type": "MT5",
                "login": 1000,
                "organizationId": org["id"],
                "organization": org,
                "created": "2024-01-01T00:00:00Z",
            },
        ]


class DroppedResponse(Response):
    """Starts a response and returns without its body: uvicorn then closes the connection."""

    def __init__(self) -> None:
        super().__init__(HTML_502, status_code=502, media_type="text/html")

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})


def _fmt(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _deadline(request: Request, default: float) -> float:
    raw = request.headers.get("x-request-timeout")
    if raw is None:
        raw = request.query_params.get("requestTimeout")
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ApiFail(
            "Validation", f"X-Request-Timeout must be a number of seconds (1-300), got {raw!r}"
        ) from None
    if not math.isfinite(value) or value < 1 or value > 300:
        raise ApiFail(
            "Validation", f"X-Request-Timeout must be between 1 and 300 seconds, got {raw}"
        )
    return value


def _fingerprint(request: Request, body: bytes) -> str:
    skip = {"requesttimeout", "cacheid", "cachetimeout"}
    query = sorted((k, v) for k, v in request.query_params.multi_items() if k.lower() not in skip)
    h = hashlib.sha256()
    h.update(request.method.encode())
    h.update(request.url.path.encode())
    h.update(encode(query))
    h.update(body)
    return h.hexdigest()


def _fault_message(error: str) -> str:
    return {
        "Busy": "Too many requests are queued for this trade platform; the request was not sent",
        "Timeout": "The trade server did not answer in time; nothing was changed",
        "NoConnect": "No connection to the trade platform",
        "Internal": "Internal server error",
        "MT4Error": "The manager API returned an error",
        "MT5Error": "The manager API returned an error",
    }.get(error, f"Injected fault: {error}")


# -------------------------------------------------------------------------------- ASGI apps


class Recorder:
    """ASGI middleware keeping request/response pairs (/api, /connect, /.well-known)."""

    PREFIXES = ("/api/", "/connect/", "/.well-known/")

    def __init__(self, app: Any, sandbox: Sandbox, port: str) -> None:
        self.app = app
        self.sandbox = sandbox
        self.port = port

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or not self.sandbox.config.record_exchanges
            or not scope["path"].startswith(self.PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        req_body = bytearray()
        resp: dict[str, Any] = {"status": 0, "headers": [], "body": bytearray()}

        async def rx() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                req_body.extend(message.get("body", b""))
            return message

        async def tx(message: dict) -> None:
            if message["type"] == "http.response.start":
                resp["status"] = message["status"]
                resp["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                resp["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, rx, tx)
        finally:
            sb = self.sandbox
            sb.exchange_seq += 1
            sb.exchanges.append(
                {
                    "seq": sb.exchange_seq,
                    "port": self.port,
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope.get("query_string", b"").decode("latin-1"),
                    "requestHeaders": {
                        k.decode("latin-1"): v.decode("latin-1")
                        for k, v in scope.get("headers", [])
                    },
                    "requestBody": bytes(req_body).decode("utf-8", "replace"),
                    "status": resp["status"],
                    "responseHeaders": {
                        k.decode("latin-1"): v.decode("latin-1") for k, v in resp["headers"]
                    },
                    "responseBody": bytes(resp["body"]).decode("utf-8", "replace"),
                }
            )


def build_routes(sandbox: Sandbox, port: str) -> list[Route]:
    async def well_known(request: Request) -> Response:
        return JSONResponse(discovery(sandbox.base_url))

    async def token(request: Request) -> Response:
        return await token_endpoint(request, sandbox.tokens)

    async def api(request: Request) -> Response:
        return await sandbox.api(request, port)

    routes = [
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
        from .hubs import build_hub_routes  # SignalR hubs + their /_sandbox/hubs controls

        routes += build_hub_routes(sandbox)
    return routes
