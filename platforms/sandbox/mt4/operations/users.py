"""MT4 user records: list, read, create, update, passwords and group operations."""

from __future__ import annotations

from ...registry import Ctx, op
from ...wire import Raw, Result, enum_lookup, mt4_error, multi, page, parse_limit, validation
from .. import dto
from ..records import Account
from .arguments import MT4, login_arg, platform_of


@op(MT4, "GET", "UsersRequest", 10)
def users_request(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    accounts = p.accounts
    return page(
        p.logins,
        parse_limit(ctx.q("limit")),
        ctx.q("cursor"),
        lambda login: dto.user_bytes(accounts[login]),
    )


@op(MT4, "GET", "UserRecordGet", 10, nargs=(1,))
def user_record_get(ctx: Ctx) -> Result:
    return Result(Raw(dto.user_bytes(platform_of(ctx).account(login_arg(ctx)))))


@op(MT4, "GET", "UserRecordRequest", 10, nargs=(1,))
def user_record_request(ctx: Ctx) -> Result:
    return user_record_get(ctx)


@op(MT4, "GET", "UserRecordsRequest", 10)
def user_records_request(ctx: Ctx) -> Result:
    logins = multi(ctx.qlist("logins"), "logins")
    if not logins:
        raise validation("'logins' must list at least one login")
    p = platform_of(ctx)
    return Result(
        Raw([dto.user_bytes(p.accounts[x]) for x in dict.fromkeys(logins) if x in p.accounts])
    )


@op(MT4, "POST", "UserRecordNew", 15)
def user_record_new(ctx: Ctx) -> Result:
    body = ctx.json_object()
    p = platform_of(ctx)
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
    dto.apply_user_fields(
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
    p = platform_of(ctx)
    acc = p.account(login_arg(ctx))
    dto.apply_user_fields(p, acc, body, money=True)
    acc.touch(ctx.now)
    p.user_changed(acc)
    p.check_stopout(acc, ctx.now)
    return Result(Raw(dto.user_bytes(acc)))


@op(MT4, "PATCH", "UserRecord", 15, nargs=(1,))
def user_record_patch(ctx: Ctx) -> Result:
    body = ctx.json_object()
    p = platform_of(ctx)
    acc = p.account(login_arg(ctx))
    dto.apply_user_fields(p, acc, body, money=True)
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
    p = platform_of(ctx)
    acc = p.account(login_arg(ctx))
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
    p = platform_of(ctx)
    acc = p.account(login_arg(ctx))
    pw = _password_body(ctx)
    if not acc.password or pw != acc.password:
        raise mt4_error("InvalidData", "Invalid password")
    return Result(True)


GROUP_OPS = ["Delete", "Enable", "Disable", "Leverage", "SetGroup"]


@op(MT4, "POST", "UsersGroupOp", 60)
def users_group_op(ctx: Ctx) -> Result:
    body = ctx.json_object()
    p = platform_of(ctx)
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
