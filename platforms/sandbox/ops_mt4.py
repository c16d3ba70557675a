"""MT4 v2 operation handlers (main port and x86 sidecar)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from . import dto
from .market import BALANCE, CREDIT, PERIODS, SELL, TRADE_COMMANDS
from .ops import Ctx, op
from .state import Account, MT4Platform
from .wire import (
    ApiFail,
    Raw,
    Result,
    encode,
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

MT4 = "MT4"
SNAPSHOT_MAX = 1_000_000
SNAPSHOT_DEFAULT = 100_000


def _p(ctx: Ctx) -> MT4Platform:
    return ctx.platform


MAX_GROUP_NAME = 16  # MT4 ConGroup.group is char[16]


def _group_name(ctx: Ctx, i: int) -> str:
    name = ctx.args[i]
    if not name or len(name) > MAX_GROUP_NAME:
        raise validation(f"'group' must be 1-{MAX_GROUP_NAME} characters, got {name!r}")
    return name


def _login(ctx: Ctx, i: int = 0) -> int:
    login = ctx.int_arg(i, "login")
    if login < 1:
        raise validation("'login' must be a positive integer")
    return login


# ------------------------------------------------------------------------------ common


@op(MT4, "GET", "ServerTime", 10)
def server_time(ctx: Ctx) -> Result:
    return Result(iso(int(ctx.now)))


@op(MT4, "GET", "ManagerCommon", 10)
def manager_common(ctx: Ctx) -> Result:
    return Result(
        {
            "name": "Sandbox-Live",
            "owner": "Sandbox Markets Ltd",
            "build": 1420,
            "version": 400,
            "timeZone": 0,
        }
    )


def _log_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y.%m.%d %H:%M:%S")


LOG_MODES = ["Standard", "Logins", "Trades", "Errors", "Full", "Updater", "SendMail", "Failover"]


@op(MT4, "GET", "JournalRequest", 30)
def journal_request(ctx: Ctx) -> Result:
    t_from = parse_time(ctx.q("from"), "from")
    if t_from is None:
        raise validation("'from' is required")
    t_to = parse_time(ctx.q("to"), "to") or ctx.now
    mode = LOG_MODES[enum_lookup(ctx.q("mode"), LOG_MODES, "mode")] if ctx.q("mode") else "Full"
    needle = (ctx.q("filter") or "").lower()
    wanted = {"Logins": {"Login"}, "Trades": {"Trade"}, "Errors": {"Error", "Warning"}}.get(mode)
    rows = []
    for ts, code, ip, message in _p(ctx).journal:
        if ts < t_from or ts > t_to:
            continue
        if wanted is not None and code not in wanted:
            continue
        if needle and needle not in message.lower():
            continue
        rows.append({"code": code, "time": _log_time(ts), "ip": ip, "message": message})
    return Result(rows)


# ------------------------------------------------------------------------------ users


@op(MT4, "GET", "UsersRequest", 10)
def users_request(ctx: Ctx) -> Result:
    p = _p(ctx)
    accounts = p.accounts
    return page(
        p.logins,
        parse_limit(ctx.q("limit")),
        ctx.q("cursor"),
        lambda login: dto.user_bytes(accounts[login]),
    )


@op(MT4, "GET", "UserRecordGet", 10, nargs=(1,))
def user_record_get(ctx: Ctx) -> Result:
    return Result(Raw(dto.user_bytes(_p(ctx).account(_login(ctx)))))


@op(MT4, "GET", "UserRecordRequest", 10, nargs=(1,))
def user_record_request(ctx: Ctx) -> Result:
    return user_record_get(ctx)


@op(MT4, "GET", "UserRecordsRequest", 10)
def user_records_request(ctx: Ctx) -> Result:
    logins = multi(ctx.qlist("logins"), "logins")
    if not logins:
        raise validation("'logins' must list at least one login")
    p = _p(ctx)
    return Result(
        Raw([dto.user_bytes(p.accounts[x]) for x in dict.fromkeys(logins) if x in p.accounts])
    )


USER_STR_FIELDS = {
    "name": "name",
    "externalId": "external_id",
    "status": "status",
    "country": "country",
    "city": "city",
    "state": "state",
    "zipCode": "zip_code",
    "address": "address",
    "leadSource": "lead_source",
    "phone": "phone",
    "email": "email",
    "comment": "comment",
}
USER_INT_FIELDS = {
    "leverage": "leverage",
    "agentAccount": "agent",
    "enableFlags": "enable_flags",
    "sendReports": "send_reports",
    "mqid": "mqid",
    "userColor": "color",
}
USER_FLOAT_FIELDS = {
    "interestRate": "interest_rate",
    "taxes": "taxes",
    "balance": "balance",
    "credit": "credit",
}


def apply_user_fields(p: MT4Platform, acc: Account, body: dict[str, Any], *, money: bool) -> None:
    for key, value in body.items():
        if key == "group":
            if value is None:
                continue
            if not isinstance(value, str):
                raise validation("'group' must be a string")
            acc.group = p.group(value) if value in p.groups else _bad_group(value)
        elif key in USER_STR_FIELDS:
            if value is not None and not isinstance(value, str):
                raise validation(f"'{key}' must be a string")
            setattr(acc, USER_STR_FIELDS[key], value)
        elif key in USER_INT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise validation(f"'{key}' must be an integer")
            if key == "leverage" and value < 1:
                raise mt4_error("InvalidData", "Leverage must be positive")
            setattr(acc, USER_INT_FIELDS[key], value)
        elif key in USER_FLOAT_FIELDS:
            if key in ("balance", "credit") and not money:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise validation(f"'{key}' must be a number")
            setattr(acc, USER_FLOAT_FIELDS[key], round(float(value), 2))
        # unknown keys (and login) are ignored, as the merge-patch contract says


def _bad_group(name: str) -> Any:
    raise mt4_error("InvalidData", f"Group '{name}' does not exist")


@op(MT4, "POST", "UserRecordNew", 15)
def user_record_new(ctx: Ctx) -> Result:
    body = ctx.json_object()
    p = _p(ctx)
    login = body.get("login") or 0
    if isinstance(login, bool) or not isinstance(login, int) or login < 0:
        raise validation("'login' must be 0 or a positive integer")
    if login == 0:
        login = p.next_free_login()
    elif login in p.accounts:
        raise mt4_error("InvalidData", f"Login {login} already exists")
    gname = body.get("group") or "demo\\usd"
    if gname not in p.groups:
        raise mt4_error("InvalidData", f"Group '{gname}' does not exist")
    acc = Account(login, p.groups[gname])
    acc.reg_time = acc.last_time = float(int(ctx.now))
    acc.password = ""
    acc.investor = ""
    apply_user_fields(
        p, acc, {k: v for k, v in body.items() if k not in ("login", "group")}, money=False
    )
    if not body.get("leverage"):
        acc.leverage = acc.group.leverage
    acc.touch(ctx.now)
    p.add_account(acc)
    p.log(ctx.now, "Info", f"'{login}': account created in '{gname}'")
    return Result(Raw(dto.user_bytes(acc)))


@op(MT4, "POST", "UserRecordUpdate", 15, nargs=(1,))
def user_record_update(ctx: Ctx) -> Result:
    body = ctx.json_object()
    p = _p(ctx)
    acc = p.account(_login(ctx))
    apply_user_fields(p, acc, body, money=True)
    acc.touch(ctx.now)
    p.user_changed(acc)
    p.check_stopout(acc, ctx.now)
    return Result(Raw(dto.user_bytes(acc)))


@op(MT4, "PATCH", "UserRecord", 15, nargs=(1,))
def user_record_patch(ctx: Ctx) -> Result:
    body = ctx.json_object()
    p = _p(ctx)
    acc = p.account(_login(ctx))
    apply_user_fields(p, acc, body, money=True)
    acc.touch(ctx.now)
    p.user_changed(acc)
    p.check_stopout(acc, ctx.now)
    return Result(Raw(dto.user_bytes(acc)))


def _password_body(ctx: Ctx) -> str:
    value = ctx.json()
    if not isinstance(value, str):
        raise validation("The body must be the password as a JSON string")
    return value


def _qbool(ctx: Ctx, name: str) -> bool:
    raw = (ctx.q(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise validation(f"'{name}' must be true or false")
    return raw in ("true", "1")


@op(MT4, "POST", "UserPasswordSet", 15, nargs=(1,))
def user_password_set(ctx: Ctx) -> Result:
    p = _p(ctx)
    acc = p.account(_login(ctx))
    pw = _password_body(ctx)
    investor = _qbool(ctx, "changeInvestor")
    _qbool(ctx, "cleanPubkey")
    if len(pw) < 5 or len(pw) > 15:
        raise mt4_error("InvalidData", "The password must be 5 to 15 characters")
    if investor:
        acc.investor = pw
    else:
        acc.password = pw
    acc.touch(ctx.now)
    p.user_changed(acc)
    return Result(True)


@op(MT4, "POST", "UserPasswordCheck", 15, nargs=(1,))
def user_password_check(ctx: Ctx) -> Result:
    p = _p(ctx)
    acc = p.account(_login(ctx))
    pw = _password_body(ctx)
    if not acc.password or pw != acc.password:
        raise mt4_error("InvalidData", "Invalid password")
    return Result(True)


GROUP_OPS = ["Delete", "Enable", "Disable", "Leverage", "SetGroup"]


@op(MT4, "POST", "UsersGroupOp", 60)
def users_group_op(ctx: Ctx) -> Result:
    body = ctx.json_object()
    p = _p(ctx)
    command = GROUP_OPS[enum_lookup(body.get("command"), GROUP_OPS, "command")]
    logins = body.get("logins")
    if (
        not isinstance(logins, list)
        or not logins
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in logins)
    ):
        raise validation("'logins' must be a non-empty list of integers")
    if command == "SetGroup":
        gname = body.get("newGroup")
        if not isinstance(gname, str) or gname not in p.groups:
            raise validation(f"'newGroup' must name an existing group, got {gname!r}")
    if command == "Leverage":
        lev = body.get("leverage")
        if not isinstance(lev, int) or isinstance(lev, bool) or lev < 1:
            raise validation("'leverage' must be a positive integer")
    for login in logins:
        acc = p.accounts.get(login)
        if acc is None:
            continue
        if command == "Delete":
            p.remove_account(login, ctx.now)
            continue
        if command == "Enable":
            acc.enable_flags |= 0x1
        elif command == "Disable":
            acc.enable_flags &= ~0x1
        elif command == "Leverage":
            acc.leverage = body["leverage"]
        else:
            acc.group = p.groups[body["newGroup"]]
        acc.touch(ctx.now)
        p.user_changed(acc)
        p.check_stopout(acc, ctx.now)
    return Result(True)


@op(MT4, "POST", "UsersSyncStart", 60)
def users_sync_start(ctx: Ctx) -> Result:
    p = _p(ctx)
    since = _timestamp(ctx)
    p.users_sync = [dto.user_bytes(a) for a in p.changed_accounts(since)]
    return Result(True)


@op(MT4, "POST", "TradesSyncStart", 60)
def trades_sync_start(ctx: Ctx) -> Result:
    p = _p(ctx)
    since = _timestamp(ctx)
    p.trades_sync = [dto.trade_bytes(p, t) for t in p.changed_trades(since)]
    return Result(True)


def _timestamp(ctx: Ctx) -> float:
    raw = ctx.q("timestamp") or "0"
    try:
        value = int(raw)
    except ValueError:
        raise validation(f"'timestamp' must be an integer (unix seconds), got {raw!r}") from None
    if value < 0 or value > 2**31 - 1:
        raise validation("'timestamp' must be a non-negative int32")
    return float(value)


def _snapshot_limit(ctx: Ctx) -> int:
    limit = parse_limit(ctx.q("limit"), maximum=SNAPSHOT_MAX)
    return SNAPSHOT_DEFAULT if limit is None else limit


@op(MT4, "GET", "UsersSnapshot", 30)
def users_snapshot(ctx: Ctx) -> Result:
    p = _p(ctx)
    limit = _snapshot_limit(ctx)
    accounts = p.accounts
    return Result(Raw([dto.user_bytes(accounts[x]) for x in p.logins[:limit]]))


@op(MT4, "GET", "UsersSyncRead", 30)
def users_sync_read(ctx: Ctx) -> Result:
    limit = _snapshot_limit(ctx)
    return Result(Raw((_p(ctx).users_sync or [])[:limit]))


@op(MT4, "GET", "TradesSnapshot", 30)
def trades_snapshot(ctx: Ctx) -> Result:
    p = _p(ctx)
    limit = _snapshot_limit(ctx)
    return Result(Raw([dto.trade_bytes(p, p.trades[t]) for t in p.tickets[:limit]]))


@op(MT4, "GET", "TradesSyncRead", 30)
def trades_sync_read(ctx: Ctx) -> Result:
    limit = _snapshot_limit(ctx)
    return Result(Raw((_p(ctx).trades_sync or [])[:limit]))


# ------------------------------------------------------------------------------ trades


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
    p = _p(ctx)
    return page(
        p.tickets, parse_limit(ctx.q("limit")), ctx.q("cursor"), _trade_filter(p, ctx.q("group"))
    )


@op(MT4, "GET", "TradesGet", 10, nargs=(0, 1))
def trades_get(ctx: Ctx) -> Result:
    p = _p(ctx)
    if ctx.args:
        ticket = ctx.int_arg(0, "ticket")
        t = p.trades.get(ticket)
        if t is None:
            raise not_found(f"Order #{ticket} not found among open orders")
        return Result(Raw(dto.trade_bytes(p, t)))
    return page(p.tickets, parse_limit(ctx.q("limit")), ctx.q("cursor"), _trade_filter(p, None))


@op(MT4, "GET", "TradesGetByLogin", 10, nargs=(2,))
def trades_get_by_login(ctx: Ctx) -> Result:
    p = _p(ctx)
    acc = p.account(_login(ctx))
    group = _group_name(ctx, 1)
    if group != acc.group.name:
        raise not_found(f"Account {acc.login} is not in group '{group}'")
    return Result(Raw([dto.trade_bytes(p, t) for t in sorted(acc.open, key=lambda t: t.ticket)]))


@op(MT4, "GET", "TradeRecordGet", 10, nargs=(1,))
def trade_record_get(ctx: Ctx) -> Result:
    p = _p(ctx)
    ticket = ctx.int_arg(0, "order")
    t = p.find_trade(ticket)
    if t is None:
        raise not_found(f"Order #{ticket} not found")
    return Result(Raw(dto.trade_bytes(p, t)))


@op(MT4, "GET", "TradesUserHistory", 30, nargs=(1,))
def trades_user_history(ctx: Ctx) -> Result:
    p = _p(ctx)
    acc = p.account(_login(ctx))
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
    p = _p(ctx)
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
    p = _p(ctx)
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
    p = _p(ctx)
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


# ------------------------------------------------------------------------------ margins


@op(MT4, "GET", "MarginsGet", 10)
def margins_get(ctx: Ctx) -> Result:
    p = _p(ctx)
    return Result(Raw([dto.margin_bytes(p, a, ctx.now) for a in p.iter_accounts()]))


@op(MT4, "GET", "MarginLevelGet", 10, nargs=(1,))
def margin_level_get(ctx: Ctx) -> Result:
    p = _p(ctx)
    return Result(Raw(dto.margin_bytes(p, p.account(_login(ctx)), ctx.now)))


@op(MT4, "GET", "MarginLevelRequest", 10, nargs=(1,))
def margin_level_request(ctx: Ctx) -> Result:
    return margin_level_get(ctx)


# ------------------------------------------------------------------------------ online


@op(MT4, "GET", "OnlineRequest", 10)
def online_request(ctx: Ctx) -> Result:
    p = _p(ctx)
    accounts = p.accounts

    def render(login: int) -> bytes | None:
        acc = accounts.get(login)
        return None if acc is None else encode({"login": login, "group": acc.group.name})

    return page(p.online, parse_limit(ctx.q("limit")), ctx.q("cursor"), render)


@op(MT4, "GET", "OnlineGet", 10)
def online_get(ctx: Ctx) -> Result:
    return online_request(ctx)


# ------------------------------------------------------------------------------ groups


@op(MT4, "GET", "GroupsRequest", 10)
def groups_request(ctx: Ctx) -> Result:
    p = _p(ctx)
    return page(
        p.group_names,
        parse_limit(ctx.q("limit")),
        ctx.q("cursor"),
        lambda name: encode(dto.group_dict(p.groups[name])),
        key_type=str,
    )


@op(MT4, "GET", "GroupsGet", 10)
def groups_get(ctx: Ctx) -> Result:
    p = _p(ctx)
    return Result([dto.group_dict(p.groups[n]) for n in p.group_names])


@op(MT4, "GET", "GroupRecordGet", 10, nargs=(1,))
def group_record_get(ctx: Ctx) -> Result:
    return Result(dto.group_dict(_p(ctx).group(_group_name(ctx, 0))))


@op(MT4, "GET", "EnsureGroupNameExist", 10, nargs=(1,))
def ensure_group_name_exist(ctx: Ctx) -> Result:
    return Result(_group_name(ctx, 0) in _p(ctx).groups)


# ------------------------------------------------------------------------------ symbols / prices


@op(MT4, "GET", "CfgRequestSymbol", 10, nargs=(0, 1))
def cfg_request_symbol(ctx: Ctx) -> Result:
    p = _p(ctx)
    if ctx.args:
        return Result(dto.symbol_config(p.symbol(ctx.args[0])))
    return Result([dto.symbol_config(s) for s in p.market.symbols.values()])


@op(MT4, "GET", "SymbolInfoGet", 10)
def symbol_info_get(ctx: Ctx) -> Result:
    name = ctx.q("symbol")
    if not name:
        raise validation("'symbol' is required")
    return Result(dto.symbol_info(_p(ctx).symbol(name)))


@op(MT4, "GET", "SymbolsGroupsGet", 10)
def symbols_groups_get(ctx: Ctx) -> Result:
    return Result(dto.symbol_groups())


@op(MT4, "GET", "TickInfoLast", 10, nargs=(0, 1))
def tick_info_last(ctx: Ctx) -> Result:
    p = _p(ctx)
    if ctx.args:
        return Result(dto.tick_info(p.symbol(ctx.args[0])))
    return Result([dto.tick_info(s) for s in p.market.symbols.values()])


CHART_MODES = ["RangeIn", "RangeOut", "RangeLast", "RangeInExcludeOutOfRage"]


@op(MT4, "GET", "ChartRequest", 30, nargs=(1,))
def chart_request(ctx: Ctx) -> Result:
    p = _p(ctx)
    sym = p.symbol(ctx.args[0])
    period_name = ctx.q("period") or "H1"
    names = list(PERIODS)
    period = PERIODS[names[enum_lookup(period_name, names, "period")]]
    if ctx.q("mode"):
        enum_lookup(ctx.q("mode"), CHART_MODES, "mode")
    end = parse_time(ctx.q("end"), "end") or ctx.now
    start = parse_time(ctx.q("start"), "start")
    if start is None:
        start = end - period * 100
    if end < start:
        raise validation("'end' must not be before 'start'")
    end = min(end, ctx.now)
    return Result(dto.chart_bars(p.market.bars(sym, period, start, end)))


# ----------------------------------------------------------------- sidecar: messaging/plugins


@op(MT4, "POST", "NewsSend", 15)
def news_send(ctx: Ctx) -> Result:
    body = ctx.json_object()
    if not isinstance(body.get("topic"), str) or not body["topic"]:
        raise validation("'topic' is required")
    _p(ctx).news.append({"time": ctx.now, **body})
    return Result(True)


@op(MT4, "POST", "MailSend", 15)
def mail_send(ctx: Ctx) -> Result:
    body = ctx.json_object()
    logins = body.get("logins")
    if not isinstance(logins, list) or not (1 <= len(logins) <= 10000):
        raise validation("'logins' must list 1..10000 logins")
    _p(ctx).mails.append(
        {
            "time": iso(int(ctx.now)),
            "senderLogin": int(body.get("senderLogin") or 0),
            "senderName": body.get("senderName") or "",
            "subject": body.get("subject") or "",
            "body": body.get("body") or "",
        }
    )
    return Result(True)


@op(MT4, "GET", "MailsRequest", 30)
def mails_request(ctx: Ctx) -> Result:
    return Result(list(_p(ctx).mails))


@op(MT4, "GET", "PluginsGet", 10)
def plugins_get(ctx: Ctx) -> Result:
    return Result([pl["plugin"] for pl in _p(ctx).plugins])


@op(MT4, "GET", "PluginParamGet", 10, nargs=(1,))
def plugin_param_get(ctx: Ctx) -> Result:
    pos = ctx.int_arg(0, "pos")
    plugins = _p(ctx).plugins
    if not 0 <= pos < len(plugins):
        raise not_found(f"No plugin at position {pos}")
    return Result(plugins[pos])


@op(MT4, "GET", "CfgRequestPlugin", 10)
def cfg_request_plugin(ctx: Ctx) -> Result:
    return Result(list(_p(ctx).plugins))


def _plugin_update(ctx: Ctx) -> Result:
    body = ctx.json_object()
    plugin = body.get("plugin")
    if not isinstance(plugin, dict) or not plugin.get("file"):
        raise validation("'plugin.file' is required")
    for pl in _p(ctx).plugins:
        if pl["plugin"]["file"] == plugin["file"]:
            pl["plugin"].update({k: v for k, v in plugin.items() if k in pl["plugin"]})
            if isinstance(body.get("params"), list):
                pl["params"] = [
                    {"name": str(x.get("name", "")), "value": str(x.get("value", ""))}
                    for x in body["params"]
                    if isinstance(x, dict)
                ]
            return Result(True)
    raise not_found(f"Plugin '{plugin['file']}' not found")


@op(MT4, "POST", "PluginUpdate", 15)
def plugin_update(ctx: Ctx) -> Result:
    return _plugin_update(ctx)


@op(MT4, "POST", "CfgUpdatePlugin", 15)
def cfg_update_plugin(ctx: Ctx) -> Result:
    return _plugin_update(ctx)


@op(MT4, "POST", "ExternalCommandBinary", 60)
def external_command_binary(ctx: Ctx) -> Result:
    body = ctx.json_object()
    data = body.get("data")
    if not isinstance(data, str):
        raise validation("'data' must be base64 bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise validation("'data' is not valid base64") from None
    # The sandbox's "plugin" echoes the bytes reversed so a round trip is observable.
    return Result({"data": base64.b64encode(raw[::-1]).decode()})


def fail(code: str, message: str) -> ApiFail:
    return ApiFail(code, message)
