"""Loopback-only control routes for the realtime hubs, under ``/_sandbox/hubs``.

Faults: drop every hub socket, stall (stop sending without closing), refuse negotiation
(HTTP 503). Events on demand: push an account into margin call, emit a symbol update, and a
"storm" of synthetic margin-call updates at a fixed rate (benchmarks).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .hub_payloads import margin_payload
from .hubs import HubServer
from .simulator import Sandbox

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("body must be a JSON object")
    return value


def push_margin_call(sb: Sandbox, hub: HubServer, login: int, level_type: str) -> dict[str, Any]:
    """Move an MT4 account's balance so its level lands inside the wanted band, and publish."""
    p = sb.mt4
    acc = p.accounts.get(login)
    if acc is None:
        raise LookupError(f"no MT4 account {login}")
    info = p.margin_info(acc)
    if info["margin"] <= 0:
        raise ValueError(f"account {login} has no margin in use")
    g = acc.group
    target = {
        "MarginCall": (g.margin_call + g.stop_out) / 2.0,
        "Ok": g.margin_call * 3.0,
    }[level_type]
    equity = info["margin"] * target / 100.0
    before = acc.level_type
    acc.balance = round(equity - acc.credit - info["floating"], 2)
    now = time.time()
    acc.touch(now)
    p.user_changed(acc)
    p.refresh_level(acc)  # publishes the transition to the hubs
    if acc.level_type == before:  # no transition: still tell the streams the new figures
        hub.emit_margin(json.dumps(margin_payload(p, acc), separators=(",", ":")))
    info = p.margin_info(acc)
    return {
        "login": login,
        "levelType": acc.level_type,
        "level": info["level"],
        "equity": info["equity"],
        "margin": info["margin"],
        "balance": acc.balance,
    }


class Storm:
    """Synthetic ``StreamMarginCallUpdates`` items at a fixed rate; item k has equity
    ``10000 + k/100`` so a receiver can find its emission time in :attr:`times`."""

    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.times: list[float] = []
        self.logins: list[int] = []

    async def run(self, sb: Sandbox, hub: HubServer, rate: float, seconds: float) -> None:
        rng = random.Random(sb.config.seed)
        groups = [(g.name, g.margin_call, g.stop_out, g.leverage) for g in sb.mt4.groups.values()]
        slot = 0.01
        per_slot = rate * slot
        owed = 0.0
        start = time.monotonic()
        k = len(self.times)
        end = start + seconds
        n = len(self.logins)
        while time.monotonic() < end:
            owed += per_slot
            now = time.time()
            while owed >= 1.0:
                owed -= 1.0
                login = self.logins[rng.randrange(n)]
                name, mc, so, lev = groups[login % len(groups)]
                equity = round(10000 + k / 100.0, 2)
                margin = round(2000 + rng.random() * 18000, 2)
                level = round(equity / margin * 100.0, 2)
                lt = 2 if level <= so else 1 if level <= mc else 0
                item = (
                    f'{{"login":{login},"group":{json.dumps(name)},"leverage":{lev},'
                    f'"updated":{int(now)},"balance":{equity},"equity":{equity},'
                    f'"volumeLots":1.0,"margin":{margin},"free":{round(equity - margin, 2)},'
                    f'"level":{level},"controllingType":0,"levelType":{lt}}}'
                )
                self.times.append(now)
                hub.emit_margin(item)
                k += 1
            start += slot
            delay = start - time.monotonic()
            await asyncio.sleep(max(delay, 0))


def build_hubs_control(sb: Sandbox, hub: HubServer) -> list[Route]:
    storm = Storm()

    def guard(fn):
        async def wrapper(request: Request) -> Response:
            host = request.client.host if request.client else ""
            if host not in LOOPBACK:
                return _json({"error": "the control API only answers loopback callers"}, 403)
            try:
                return await fn(request)
            except (ValueError, TypeError, KeyError) as exc:
                return _json({"error": str(exc)}, 400)
            except LookupError as exc:
                return _json({"error": str(exc)}, 404)

        return wrapper

    async def status(request: Request) -> Response:
        return _json(hub.status())

    async def drop(request: Request) -> Response:
        return _json({"dropped": hub.drop_all()})

    async def stall(request: Request) -> Response:
        body = await _body(request)
        hub.stalled = bool(body.get("stalled", True))
        return _json(hub.status())

    async def negotiate(request: Request) -> Response:
        body = await _body(request)
        hub.refuse_negotiate = bool(body.get("refuse", True))
        return _json(hub.status())

    async def config(request: Request) -> Response:
        body = await _body(request)
        keep_alive = float(body.get("keepAliveSeconds", hub.keep_alive))
        if not 0.05 <= keep_alive <= 300:
            raise ValueError("keepAliveSeconds must be 0.05..300")
        hub.keep_alive = keep_alive
        return _json(hub.status())

    async def clear(request: Request) -> Response:
        hub.stalled = hub.refuse_negotiate = False
        return _json(hub.status())

    async def margin_call(request: Request) -> Response:
        body = await _body(request)
        login = int(body["login"])
        platform = str(body.get("platform", "MT4")).upper()
        level_type = str(body.get("levelType", "MarginCall"))
        if level_type not in ("MarginCall", "Ok"):
            raise ValueError("levelType must be MarginCall or Ok")
        if platform == "MT5":
            if login not in sb.mt5.users:
                raise LookupError(f"no MT5 user {login}")
            event = {
                "login": login,
                "type": level_type,
                "direction": "Enter" if level_type == "MarginCall" else "Leave",
            }
            if sb.market.events.listening("mt5.margin"):
                sb.market.events.publish("mt5.margin", event)
            return _json(event)
        return _json(push_margin_call(sb, hub, login, level_type))

    async def emit(request: Request) -> Response:
        body = await _body(request)
        sym = sb.market.symbols.get(str(body.get("symbol")))
        if sym is None:
            raise LookupError(f"no symbol {body.get('symbol')!r}")
        if sb.market.events.listening("symbol"):
            sb.market.events.publish("symbol", (str(body.get("kind", "Updated")), sym))
        return _json({"symbol": sym.name})

    async def storm_route(request: Request) -> Response:
        if request.method == "GET":
            running = storm.task is not None and not storm.task.done()
            return _json(
                {
                    "running": running,
                    "emitted": len(storm.times),
                    "times": storm.times if request.query_params.get("times") else None,
                }
            )
        body = await _body(request)
        rate = float(body.get("rate", 1000))
        seconds = float(body.get("seconds", 10))
        accounts = int(body.get("accounts", len(sb.mt4.logins)))
        if not (0 < rate <= 100_000 and 0 < seconds <= 600 and accounts > 0):
            raise ValueError("rate 1..100000, seconds 1..600, accounts > 0")
        if storm.task is not None and not storm.task.done():
            raise ValueError("a storm is already running")
        storm.times = []
        storm.logins = sb.mt4.logins[:accounts]
        storm.task = asyncio.create_task(storm.run(sb, hub, rate, seconds))
        return _json({"started": True, "rate": rate, "seconds": seconds})

    return [
        Route("/_sandbox/hubs", guard(status), methods=["GET"]),
        Route("/_sandbox/hubs/drop", guard(drop), methods=["POST"]),
        Route("/_sandbox/hubs/stall", guard(stall), methods=["POST"]),
        Route("/_sandbox/hubs/negotiate", guard(negotiate), methods=["POST"]),
        Route("/_sandbox/hubs/config", guard(config), methods=["POST"]),
        Route("/_sandbox/hubs/faults", guard(clear), methods=["DELETE"]),
        Route("/_sandbox/hubs/margin-call", guard(margin_call), methods=["POST"]),
        Route("/_sandbox/hubs/emit", guard(emit), methods=["POST"]),
        Route("/_sandbox/hubs/storm", guard(storm_route), methods=["GET", "POST"]),
    ]
