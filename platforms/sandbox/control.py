"""The loopback-only control API under ``/_sandbox`` on the main port (tests and demos)."""

from __future__ import annotations

import random
import time
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import FaultError, validate_rule
from .mt4 import dto
from .simulator import Sandbox
from .wire import ApiFail, decode, encode

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _json(data: Any, status: int = 200) -> Response:
    return Response(encode(data), status_code=status, media_type="application/json")


def _bad(message: str, status: int = 400) -> Response:
    return _json({"error": message}, status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    return decode(raw)


def account_state(sb: Sandbox, login: int) -> dict[str, Any] | None:
    p = sb.mt4
    acc = p.accounts.get(login)
    if acc is None:
        return None
    info = p.margin_info(acc)
    p.refresh_level(acc)
    return {
        "platform": "MT4",
        "login": login,
        "group": acc.group.name,
        "currency": acc.group.currency,
        "leverage": acc.leverage,
        "balance": acc.balance,
        "credit": acc.credit,
        "equity": info["equity"],
        "margin": info["margin"],
        "freeMargin": info["free"],
        "marginLevel": info["level"],
        "floatingProfit": info["floating"],
        "levelType": acc.level_type,
        "marginCall": acc.group.margin_call,
        "stopOut": acc.group.stop_out,
        "name": acc.name,
        "email": acc.email,
        "enableFlags": acc.enable_flags,
        "modified": acc.mtime,
        "online": login in set(p.online),
        "openTrades": [dto.trade_dict(p, t) for t in sorted(acc.open, key=lambda t: t.ticket)],
        "closedSinceStart": [dto.trade_dict(p, t) for t in acc.closed],
    }


def build_control(sb: Sandbox) -> list[Route]:
    def guard(fn):
        async def wrapper(request: Request) -> Response:
            host = request.client.host if request.client else ""
            if host not in LOOPBACK:
                return _bad("the control API only answers loopback callers", 403)
            try:
                return await fn(request)
            except msgspec.DecodeError:
                return _bad("malformed JSON body")
            except FaultError as exc:
                return _bad(str(exc))
            except ApiFail as exc:
                return _bad(exc.message, 404 if exc.code == "NotFound" else 400)

        return wrapper

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return _json({"rules": [r.as_dict() for r in sb.faults.rules]})
        if request.method == "DELETE":
            sb.faults.clear()
            if not sb.sidecar_is_up and sb.sidecar_control is not None:
                await sb.sidecar_control(True)
            return _json({"rules": []})
        rule = sb.faults.add(validate_rule(await _body(request)))
        return _json({"id": rule.id})

    async def fault_one(request: Request) -> Response:
        try:
            rule_id = int(request.path_params["id"])
        except ValueError:
            return _bad("rule id must be an integer")
        if not sb.faults.remove(rule_id):
            return _bad(f"no rule {rule_id}", 404)
        return _json({"deleted": rule_id})

    async def revoke(request: Request) -> Response:
        return _json({"revoked": sb.tokens.revoke_all()})

    async def sidecar(request: Request) -> Response:
        body = await _body(request)
        up = body.get("up") if isinstance(body, dict) else None
        if not isinstance(up, bool):
            return _bad('body must be {"up": true|false}')
        if sb.sidecar_control is None:
            return _bad("sidecar control unavailable", 409)
        await sb.sidecar_control(up)
        return _json({"up": sb.sidecar_is_up, "sidecar_url": sb.sidecar_url})

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            sb.stats.clear()
            sb.tokens.issued = 0
        return _json(sb.stats_dict())

    async def tick(request: Request) -> Response:
        body = await _body(request)
        count = body.get("count", 1) if isinstance(body, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100000:
            return _bad("'count' must be an integer 1..100000")
        return _json(sb.tick(count))

    async def price(request: Request) -> Response:
        body = await _body(request)
        if not isinstance(body, dict) or body.get("symbol") not in sb.market.symbols:
            return _bad("'symbol' must name a simulated symbol")
        bid = body.get("bid")
        ask = body.get("ask")
        if isinstance(bid, bool) or not isinstance(bid, int | float) or bid <= 0:
            return _bad("'bid' must be a positive number")
        if ask is not None and (not isinstance(ask, int | float) or ask < bid):
            return _bad("'ask' must be a number >= bid")
        sym = sb.market.set_price(
            body["symbol"], float(bid), None if ask is None else float(ask), time.time()
        )
        closes = sb.full_sweep()
        return _json({"symbol": sym.name, "bid": sym.bid, "ask": sym.ask, "stopOutCloses": closes})

    async def account(request: Request) -> Response:
        platform = request.query_params.get("platform", "MT4").upper()
        try:
            login = int(request.path_params["login"])
        except ValueError:
            return _bad("login must be an integer")
        if platform == "MT5":
            user = sb.mt5.users.get(login)
            if user is None:
                return _bad(f"no MT5 user {login}", 404)
            positions = [
                sb.mt5.position_view(p) for p in sb.mt5.positions.values() if p["login"] == login
            ]
            return _json({"platform": "MT5", **user, "positions": positions})
        state = account_state(sb, login)
        if state is None:
            return _bad(f"no MT4 account {login}", 404)
        return _json(state)

    async def patch_user(request: Request) -> Response:
        try:
            login = int(request.path_params["login"])
        except ValueError:
            return _bad("login must be an integer")
        body = await _body(request)
        if not isinstance(body, dict):
            return _bad("body must be a JSON object")
        platform = request.query_params.get("platform", "MT4").upper()
        if platform == "MT5":
            user = sb.mt5.users.get(login)
            if user is None:
                return _bad(f"no MT5 user {login}", 404)
            user.update({k: v for k, v in body.items() if k in user and k != "login"})
            return _json(user)
        acc = sb.mt4.accounts.get(login)
        if acc is None:
            return _bad(f"no MT4 account {login}", 404)
        now = time.time()
        dto.apply_user_fields(sb.mt4, acc, body, money=True)
        acc.touch(now)
        sb.mt4.check_stopout(acc, now)
        return _json(account_state(sb, login))

    async def exchanges(request: Request) -> Response:
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            return _bad("'since' must be an integer")
        rows = [e for e in sb.exchanges if e["seq"] > since]
        nxt = rows[-1]["seq"] if rows else max(since, 0)
        return _json({"exchanges": rows, "next": nxt, "recording": sb.config.record_exchanges})

    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "base_url": sb.base_url,
                "sidecar_url": sb.sidecar_url,
                "sidecar_up": sb.sidecar_is_up,
                "tick": sb.market.tick_no,
                "users": len(sb.mt4.accounts),
                "openTrades": len(sb.mt4.trades),
            }
        )

    async def perturb(request: Request) -> Response:
        """Mirror helper: change a seeded fraction of MT4 accounts and open trades at once
        (benchmarks of incremental snapshots). Accounts get a comment and a bumped
        modification time; trades get a comment (open ones) and the given share of the chosen
        market trades is closed."""
        body = await _body(request)
        if not isinstance(body, dict):
            return _bad("body must be a JSON object")
        fraction = body.get("fraction", 0.01)
        close_share = body.get("closeShare", 0.2)
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) \
                or not 0 < fraction <= 1:
            return _bad("'fraction' must be a number in (0, 1]")
        if isinstance(close_share, bool) or not isinstance(close_share, int | float) \
                or not 0 <= close_share <= 1:
            return _bad("'closeShare' must be a number in [0, 1]")
        rng = random.Random(body.get("seed", 1))
        p = sb.mt4
        now = time.time()
        logins = rng.sample(p.logins, k=max(1, int(len(p.logins) * fraction)))
        for login in logins:
            acc = p.accounts[login]
            acc.comment = f"perturbed {int(now)}"
            acc.touch(now)
        tickets = rng.sample(p.tickets, k=min(len(p.tickets), max(1, int(len(p.tickets)
                                                                          * fraction))))
        closed = modified = 0
        for ticket in tickets:
            t = p.trades.get(ticket)
            if t is None:
                continue
            if t.cmd <= 1 and rng.random() < close_share:
                p.close_trade(t, 0, now)
                closed += 1
            else:
                t.comment = f"perturbed {int(now)}"
                t.mtime = now
                modified += 1
        return _json({"accounts": len(logins), "tradesModified": modified,
                      "tradesClosed": closed})

    return [
        Route("/_sandbox", guard(info), methods=["GET"]),
        Route("/_sandbox/mirror/perturb", guard(perturb), methods=["POST"]),
        Route("/_sandbox/faults", guard(faults), methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/faults/{id}", guard(fault_one), methods=["DELETE"]),
        Route("/_sandbox/tokens/revoke", guard(revoke), methods=["POST"]),
        Route("/_sandbox/sidecar", guard(sidecar), methods=["POST"]),
        Route("/_sandbox/stats", guard(stats), methods=["GET", "DELETE"]),
        Route("/_sandbox/market/tick", guard(tick), methods=["POST"]),
        Route("/_sandbox/market/price", guard(price), methods=["POST"]),
        Route("/_sandbox/accounts/{login}", guard(account), methods=["GET"]),
        Route("/_sandbox/users/{login}", guard(patch_user), methods=["POST"]),
        Route("/_sandbox/exchanges", guard(exchanges), methods=["GET"]),
    ]
