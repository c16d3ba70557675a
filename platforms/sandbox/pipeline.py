"""The v2 call pipeline, the same on both ports.

Route (404 if the path is not served on this port) → bearer auth (401) → stats.received →
deadline (``X-Request-Timeout`` / ``?requestTimeout``) → platform lookup → Idempotency-Key
(replay / in-progress / mismatch) → faults (html502, drop, latency, error) → handler →
stats.executed → idempotency store → envelope.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import traceback
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from .idempotency import IdemEntry, fingerprint, valid_key
from .mt4 import operations as mt4_operations
from .mt5 import operations as mt5_operations
from .registry import Ctx, Op, find, known_action
from .simulator import Sandbox
from .wire import ApiFail, Result, envelope_error, envelope_ok, new_activity_id, server_clock

log = logging.getLogger("platforms.sandbox")

#: The operations answer through the registry; these imports are what register them.
OPERATION_MODULES = (mt4_operations, mt5_operations)
JSON_TYPE = "application/json; charset=utf-8"
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>"
    b"502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
FAULT_MANAGER_CODES = {"MT4Error": "TechProblem", "MT5Error": "TechProblem"}
FAULT_OUTCOMES = {"Busy": "not-started", "Timeout": "timeout", "OutcomeUnknown": "unknown"}


async def serve_api(sb: Sandbox, request: Request, port: str) -> Response:
    """Answer one ``/api/v2/{MT4|MT5}/{platform}/{Action}/{args}`` call on ``port``."""
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
    if not sb.tokens.check_authorization(request.headers.get("authorization")):
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return await _run(sb, request, port, operation, family, tp, args)


async def _run(
    sb: Sandbox, request: Request, port: str, operation: Op, family: str, tp: str, args: list[str]
) -> Response:
    sb.count(operation.name)
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
    entry = sb.platforms.get(tp.lower())
    if entry is None or entry[0] != family:
        return fail(ApiFail("NotFound", f"Trade platform '{tp}' not found for {family}"))
    platform = entry[1]
    body = await request.body()

    key = None
    if operation.write:
        key = request.headers.get("idempotency-key") or request.query_params.get("cacheId")
        if key is not None:
            if not valid_key(key):
                return fail(
                    ApiFail(
                        "Validation", "Idempotency-Key must be 1-255 printable ASCII characters"
                    )
                )
            fp = fingerprint(request, body)
            sb.prune_idem()
            stored = sb.idem.get(key)
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
            sb.idem[key] = IdemEntry(fp)

    def release() -> None:
        if key is not None:
            sb.idem.pop(key, None)

    ctx = Ctx(platform, args, request.query_params, body, sb)
    fired = sb.faults.pick(operation.name, family, port)
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
            _execute(sb, operation, ctx, key, activity)
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
                _late_write(sb, operation, ctx, key, latency - deadline, activity)
            )
            sb.background.add(task)
            task.add_done_callback(sb.background.discard)
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
            _execute(sb, operation, ctx, key, activity, outcome="unknown")
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
    out = _execute(sb, operation, ctx, key, activity)
    return Response(out, media_type=JSON_TYPE, headers=headers)


def _execute(
    sb: Sandbox, operation: Op, ctx: Ctx, key: str | None, activity: str, outcome: str | None = None
) -> bytes:
    try:
        # lazily built answers encode inside the clock too
        with server_clock(getattr(ctx.platform, "utc_offset_seconds", 0)):
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
    sb.count(operation.name, executed=True)
    if key is not None:
        entry = sb.idem.get(key)
        if entry is not None:
            entry.answered(out, unknown=bool(outcome))
    return out


async def _late_write(
    sb: Sandbox, operation: Op, ctx: Ctx, key: str | None, delay: float, activity: str
) -> None:
    await asyncio.sleep(delay)
    ctx.now = time.time()
    _execute(sb, operation, ctx, key, activity, outcome="unknown")


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


def _fault_message(error: str) -> str:
    return {
        "Busy": "Too many requests are queued for this trade platform; the request was not sent",
        "Timeout": "The trade server did not answer in time; nothing was changed",
        "NoConnect": "No connection to the trade platform",
        "Internal": "Internal server error",
        "MT4Error": "The manager API returned an error",
        "MT5Error": "The manager API returned an error",
    }.get(error, f"Injected fault: {error}")
