"""MT4 trades: open orders, history, reports and the TradeTransaction write."""

from __future__ import annotations

from typing import Any

from ...market import BALANCE, CREDIT, SELL, TRADE_COMMANDS
from ...registry import Ctx, op
from ...wire import (
    Raw,
    Result,
    enum_lookup,
    iso,
    mt4_error,
    multi,
    not_found,
    page,
    parse_limit,
    parse_time,
    validation,
)
from .. import dto
from ..platform import MT4Platform
from .arguments import MT4, group_name_arg, login_arg, platform_of


def _trade_filter(p: MT4Platform, group: str | None):
    if not group:
        return lambda ticket: dto.trade_bytes(p, p.trades[ticket])
    groups = set(p.group_matches(group)) if any(c in group for c in "*?[") else {group}

    def render(ticket: int) -> bytes | None:
        t = p.trades[ticket]
        acc = p.accounts.get(t.login)
        if acc is None or acc.group.name not in groups:
            return None
        return dto.trade_bytes(p, t)

    return render


@op(MT4, "GET", "TradesRequest", 10)
def trades_request(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    return page(
        p.tickets, parse_limit(ctx.q("limit")), ctx.q("cursor"), _trade_filter(p, ctx.q("group"))
    )


@op(MT4, "GET", "TradesGet", 10, nargs=(0, 1))
def trades_get(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    if ctx.args:
        ticket = ctx.int_arg(0, "ticket")
        t = p.trades.get(ticket)
        if t is None:
            raise not_found(f"Order #{ticket} not found among open orders")
        return Result(Raw(dto.trade_bytes(p, t)))
    return page(p.tickets, parse_limit(ctx.q("limit")), ctx.q("cursor"), _trade_filter(p, None))


@op(MT4, "GET", "TradesGetByLogin", 10, nargs=(2,))
def trades_get_by_login(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    acc = p.account(login_arg(ctx))
    group = group_name_arg(ctx, 1)
    if group != acc.group.name:
        raise not_found(f"Account {acc.login} is not in group '{group}'")
    return Result(Raw([dto.trade_bytes(p, t) for t in sorted(acc.open, key=lambda t: t.ticket)]))


@op(MT4, "GET", "TradeRecordGet", 10, nargs=(1,))
def trade_record_get(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    ticket = ctx.int_arg(0, "order")
    t = p.find_trade(ticket)
    if t is None:
        raise not_found(f"Order #{ticket} not found")
    return Result(Raw(dto.trade_bytes(p, t)))


@op(MT4, "GET", "TradesUserHistory", 30, nargs=(1,))
def trades_user_history(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    acc = p.account(login_arg(ctx))
    rows = p.history(
        acc, parse_time(ctx.q("fromTime"), "fromTime"), parse_time(ctx.q("toTime"), "toTime")
    )
    return Result(Raw([dto.trade_bytes(p, t) for t in rows]))


def _window(ctx: Ctx) -> tuple[float, float]:
    t_from = parse_time(ctx.q("from"), "from")
    t_to = parse_time(ctx.q("to"), "to")
    if t_from is None or t_to is None:
        raise validation("'from' and 'to' are required")
    if t_to < t_from:
        raise validation("'to' must not be before 'from'")
    return t_from, t_to


@op(MT4, "GET", "ReportsRequest", 30)
def reports_request(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    t_from, t_to = _window(ctx)
    logins = multi(ctx.qlist("logins"), "logins")
    if not logins:
        raise validation("'logins' must list at least one login")
    rows = []
    for login in dict.fromkeys(logins):
        acc = p.accounts.get(login)
        if acc is not None:
            rows.extend(dto.trade_bytes(p, t) for t in p.history(acc, t_from, t_to))
    return Result(Raw(rows))


@op(MT4, "GET", "DailyReportsRequest", 30)
def daily_reports_request(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    t_from, t_to = _window(ctx)
    logins = multi(ctx.qlist("logins"), "logins")
    if not logins:
        raise validation("'logins' must list at least one login")
    day0 = int(t_from // 86400)
    day1 = min(int(t_to // 86400), day0 + 366)
    rows = []
    for login in dict.fromkeys(logins):
        acc = p.accounts.get(login)
        if acc is None:
            continue
        info = p.margin_info(acc)
        hist = p.history(acc, day0 * 86400.0, (day1 + 1) * 86400.0)
        for day in range(day0, day1 + 1):
            lo, hi = day * 86400.0, day * 86400.0 + 86400
            if hi <= acc.reg_time or lo > ctx.now:
                continue
            deposit = sum(t.profit for t in hist if t.cmd == BALANCE and lo <= t.close_time < hi)
            closed = sum(t.profit for t in hist if t.cmd <= SELL and lo <= t.close_time < hi)
            rows.append(
                {
                    "login": login,
                    "ctm": iso(lo),
                    "group": acc.group.name,
                    "bank": "Sandbox",
                    "balancePrev": acc.prev_balance,
                    "balance": acc.balance,
                    "deposit": round(deposit, 2),
                    "credit": acc.credit,
                    "profitClosed": round(closed, 2),
                    "profit": info["floating"],
                    "equity": info["equity"],
                    "margin": info["margin"],
                    "marginFree": info["free"],
                }
            )
    return Result(rows)


TX_OPEN = {"BrOpen", "OpenMarket", "OpenInstant", "OpenRequest"}
TX_CLOSE = {"BrClose", "CloseMarket", "CloseInstant", "CloseRequest"}
TX_MODIFY = {"BrModify", "Modify"}
TX_DELETE = {"BrDelete", "Delete"}


def _num(body: dict, key: str, kind: type = float) -> Any:
    value = body.get(key)
    if value is None:
        return kind(0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise validation(f"'{key}' must be a number")
    if kind is int and value != int(value):
        raise validation(f"'{key}' must be an integer")
    return kind(value)


@op(MT4, "POST", "TradeTransaction", 5)
def trade_transaction(ctx: Ctx) -> Result:
    body = ctx.json_object()
    p = platform_of(ctx)
    raw_type = body.get("tradeTransactionType")
    if raw_type is None or raw_type == "":
        raise validation(
            "'tradeTransactionType' is required; valid values: " + ", ".join(dto.TRADE_TYPES)
        )
    if isinstance(raw_type, int) or (isinstance(raw_type, str) and raw_type.strip().isdigit()):
        num = int(raw_type)
        if num not in dto.TRADE_TYPE_NUMBERS:
            raise validation(f"'tradeTransactionType' has an unknown value {raw_type!r}")
        tx_type = dto.TRADE_TYPES[dto.TRADE_TYPE_NUMBERS.index(num)]
    else:
        tx_type = dto.TRADE_TYPES[enum_lookup(raw_type, dto.TRADE_TYPES, "tradeTransactionType")]
    raw_cmd = body.get("tradeCommand")
    cmd = 0 if raw_cmd in (None, "") else enum_lookup(raw_cmd, TRADE_COMMANDS, "tradeCommand")
    flags = body.get("tradeRequestFlags")
    if flags not in (None, ""):
        names = {n.lower() for n, _ in dto.REQUEST_FLAGS} | {"none"}
        if not isinstance(flags, str) or any(
            x.strip().lower() not in names for x in flags.split(",")
        ):
            raise validation(
                "'tradeRequestFlags' has an unknown value; valid values: None, "
                + ", ".join(n for n, _ in dto.REQUEST_FLAGS)
            )
    order = _num(body, "order", int)
    order_by = _num(body, "orderBy", int)
    volume = _num(body, "volume", int)
    price = _num(body, "price")
    sl = _num(body, "sl")
    tp = _num(body, "tp")
    comment = body.get("comment") or ""
    if not isinstance(comment, str):
        raise validation("'comment' must be a string")
    expiration = (
        parse_time(body.get("expiration"), "expiration")
        if isinstance(body.get("expiration"), str)
        else None
    )
    now = ctx.now
    echo = dict(body)
    echo["tradeTransactionType"] = tx_type
    echo["tradeCommand"] = TRADE_COMMANDS[cmd]

    if tx_type == "BrBalance":
        if cmd not in (BALANCE, CREDIT):
            raise validation("BrBalance needs tradeCommand Balance or Credit")
        acc = p.account(order_by)
        t = p.balance_op(acc, cmd, price, comment, now)
        echo["order"] = t.ticket
    elif tx_type in TX_OPEN or tx_type == "PendingOpen":
        acc = p.account(order_by)
        sym = p.symbol(body.get("symbol"))
        if tx_type == "PendingOpen" and cmd <= SELL:
            raise validation("PendingOpen needs BuyLimit, SellLimit, BuyStop or SellStop")
        if tx_type != "PendingOpen" and cmd > SELL:
            raise validation(f"{tx_type} needs tradeCommand Buy or Sell")
        t = p.open_trade(acc, sym, cmd, volume, price, sl, tp, comment, now, expiration or 0.0)
        echo["order"] = t.ticket
        echo["price"] = t.open_price
        echo["symbol"] = sym.name
    elif tx_type in TX_CLOSE or tx_type in TX_MODIFY or tx_type in TX_DELETE:
        t = p.trades.get(order)
        if t is None:
            raise not_found(f"Open order #{order} not found")
        if body.get("symbol") not in (None, "") and body["symbol"] != t.sym.name:
            p.symbol(body["symbol"])
            raise mt4_error("InvalidData", f"#{order} is on {t.sym.name}, not {body['symbol']}")
        if tx_type in TX_CLOSE:
            if volume < 0 or volume > 100000:
                raise mt4_error("TradeBadVolume", f"Invalid volume {volume}")
            closed = p.close_trade(t, volume, now)
            p.check_stopout(p.accounts[closed.login], now)
            echo["price"] = closed.close_price
        elif tx_type in TX_MODIFY:
            p.modify_trade(t, price, sl, tp, now, expiration)
        else:
            p.delete_trade(t, now)
        echo["order"] = t.ticket
        echo.setdefault("orderBy", t.login)
    else:
        raise mt4_error("InvalidData", f"{tx_type} is not supported by the sandbox")
    echo.setdefault("tradeRequestFlags", "None")
    return Result(_tx_echo(echo))


TX_FIELDS = [
    "tradeTransactionType",
    "tradeCommand",
    "tradeRequestFlags",
    "expiration",
    "order",
    "orderBy",
    "symbol",
    "volume",
    "price",
    "sl",
    "tp",
    "ieDeviation",
    "comment",
    "crc",
]


def _tx_echo(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in TX_FIELDS:
        value = body.get(key)
        if key == "expiration":
            out[key] = value if isinstance(value, str) and value else iso(0)
        elif key in ("order", "orderBy", "volume", "ieDeviation", "crc"):
            out[key] = int(value or 0)
        elif key in ("price", "sl", "tp"):
            out[key] = float(value or 0)
        elif value is not None:
            out[key] = value
    return out
