"""The MT5 v2 operations (main port): server, groups, users, symbols and the by-group lists of
positions, orders and deals. Importing the module registers them in :mod:`..registry`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..registry import Ctx, op
from ..wire import Result, encode, iso, not_found, page, parse_limit, validation
from .platform import MT5Platform

MT5 = "MT5"


def platform_of(ctx: Ctx) -> MT5Platform:
    return ctx.platform


def _merge(target: dict[str, Any], patch: dict[str, Any], protected: set[str]) -> None:
    for key, value in patch.items():
        if key in protected or key not in target:
            continue  # unknown keys are ignored (merge-patch contract)
        old = target[key]
        if value is None:
            continue
        if (
            isinstance(old, bool) != isinstance(value, bool)
            or (isinstance(old, int | float) and not isinstance(value, int | float))
            or (isinstance(old, str) and not isinstance(value, str))
        ):
            raise validation(f"'{key}' has the wrong type")
        target[key] = value


def _json_patch(ctx: Ctx) -> dict[str, Any]:
    return ctx.json_object()


@op(MT5, "GET", "ServerTime", 10)
def server_time(ctx: Ctx) -> Result:
    return Result(iso(int(ctx.now)))


@op(MT5, "GET", "TimeGet", 10)
def time_get(ctx: Ctx) -> Result:
    return Result(
        {"timeZone": ctx.platform.utc_offset_seconds // 60, "timeServer": "Sandbox MT5",
         "daylight": False, "daylightState": 0}
    )


@op(MT5, "GET", "ManagerCurrent", 10)
def manager_current(ctx: Ctx) -> Result:
    return Result(
        {
            "login": 1000,
            "mailbox": "Sandbox manager",
            "server": 1,
            "limitLogs": "All",
            "limitReports": "All",
            "right": ["Admin", "Manager", "AccRead", "AccDetails", "TradesRead", "Reports"],
        }
    )


@op(MT5, "GET", "GroupGet", 10, nargs=(1,))
def group_get(ctx: Ctx) -> Result:
    g = platform_of(ctx).groups.get(ctx.args[0])
    if g is None:
        raise not_found(f"Group '{ctx.args[0]}' not found")
    return Result(g)


@op(MT5, "PATCH", "GroupRecord", 15, nargs=(1,))
def group_record(ctx: Ctx) -> Result:
    patch = _json_patch(ctx)
    g = platform_of(ctx).groups.get(ctx.args[0])
    if g is None:
        raise not_found(f"Group '{ctx.args[0]}' not found")
    _merge(g, patch, {"group"})
    return Result(g)


def _login5(ctx: Ctx) -> int:
    login = ctx.int_arg(0, "login")
    if login < 1:
        raise validation("'login' must be a positive integer")
    return login


@op(MT5, "GET", "UserGet", 10, nargs=(1,))
def user_get(ctx: Ctx) -> Result:
    login = _login5(ctx)
    user = platform_of(ctx).users.get(login)
    if user is None:
        raise not_found(f"User {login} not found")
    return Result(user)


@op(MT5, "PATCH", "UserRecord", 15, nargs=(1,))
def user_record(ctx: Ctx) -> Result:
    patch = _json_patch(ctx)
    p = platform_of(ctx)
    login = _login5(ctx)
    user = p.users.get(login)
    if user is None:
        raise not_found(f"User {login} not found")
    if "group" in patch and patch["group"] is not None and patch["group"] not in p.groups:
        raise validation(f"Group '{patch['group']}' does not exist")
    _merge(user, patch, {"login"})
    return Result(user)


@op(MT5, "GET", "SymbolGet", 10, nargs=(1,))
def symbol_get(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    sym = p.market.symbols.get(ctx.args[0])
    if sym is None:
        raise not_found(f"Symbol '{ctx.args[0]}' not found")
    return Result(p.symbol_dict(sym))


@op(MT5, "PATCH", "SymbolRecord", 15, nargs=(1,))
def symbol_record(ctx: Ctx) -> Result:
    patch = _json_patch(ctx)
    p = platform_of(ctx)
    sym = p.market.symbols.get(ctx.args[0])
    if sym is None:
        raise not_found(f"Symbol '{ctx.args[0]}' not found")
    current = p.symbol_dict(sym)
    _merge(current, patch, {"symbol"})
    p.symbol_patches[sym.name] = {k: v for k, v in current.items() if k in patch}
    return Result(p.symbol_dict(sym))


def _by_group(
    ctx: Ctx, keys: list[int], table: dict[int, dict], view: Callable[[dict], dict]
) -> Result:
    p = platform_of(ctx)
    groups = p.mask_groups(ctx.args[0])
    users = p.users

    def render(key: int) -> bytes | None:
        row = table.get(key)
        if row is None:
            return None
        user = users.get(row["login"])
        if user is None or user["group"] not in groups:
            return None
        return encode(view(row))

    return page(keys, parse_limit(ctx.q("limit")), ctx.q("cursor"), render)


@op(MT5, "GET", "PositionByGroup", 10, nargs=(1,))
def position_by_group(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    return _by_group(ctx, p.position_keys, p.positions, p.position_view)


@op(MT5, "GET", "OrderByGroup", 10, nargs=(1,))
def order_by_group(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    return _by_group(ctx, p.order_keys, p.orders, p.order_view)


@op(MT5, "GET", "DealByGroup", 30, nargs=(1,))
def deal_by_group(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    return _by_group(ctx, p.deal_keys, p.deals, lambda d: d)
