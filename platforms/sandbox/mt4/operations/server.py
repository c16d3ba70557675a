"""MT4 server-wide reads: time, journal, margins, online users, groups, symbols, prices, charts."""

from __future__ import annotations

import datetime as dt

from ...market import PERIODS
from ...registry import Ctx, op
from ...wire import (
    Raw,
    Result,
    encode,
    enum_lookup,
    iso,
    page,
    parse_limit,
    parse_time,
    to_wall,
    validation,
)
from .. import dto
from .arguments import MT4, group_name_arg, login_arg, platform_of


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
            "timeZone": platform_of(ctx).utc_offset_seconds // 3600,
        }
    )


def _log_time(ts: float) -> str:
    """The journal's time: the server's wall clock, without a zone (as MT4 writes it)."""
    return dt.datetime.fromtimestamp(to_wall(ts), tz=dt.UTC).strftime("%Y.%m.%d %H:%M:%S")


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
    for ts, code, ip, message in platform_of(ctx).journal:
        if ts < t_from or ts > t_to:
            continue
        if wanted is not None and code not in wanted:
            continue
        if needle and needle not in message.lower():
            continue
        rows.append({"code": code, "time": _log_time(ts), "ip": ip, "message": message})
    return Result(rows)




@op(MT4, "GET", "MarginsGet", 10)
def margins_get(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    return Result(Raw([dto.margin_bytes(p, a, ctx.now) for a in p.iter_accounts()]))


@op(MT4, "GET", "MarginLevelGet", 10, nargs=(1,))
def margin_level_get(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    return Result(Raw(dto.margin_bytes(p, p.account(login_arg(ctx)), ctx.now)))


@op(MT4, "GET", "MarginLevelRequest", 10, nargs=(1,))
def margin_level_request(ctx: Ctx) -> Result:
    return margin_level_get(ctx)




@op(MT4, "GET", "OnlineRequest", 10)
def online_request(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    accounts = p.accounts

    def render(login: int) -> bytes | None:
        acc = accounts.get(login)
        return None if acc is None else encode({"login": login, "group": acc.group.name})

    return page(p.online, parse_limit(ctx.q("limit")), ctx.q("cursor"), render)


@op(MT4, "GET", "OnlineGet", 10)
def online_get(ctx: Ctx) -> Result:
    return online_request(ctx)




@op(MT4, "GET", "GroupsRequest", 10)
def groups_request(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    return page(
        p.group_names,
        parse_limit(ctx.q("limit")),
        ctx.q("cursor"),
        lambda name: encode(dto.group_dict(p.groups[name])),
        key_type=str,
    )


@op(MT4, "GET", "GroupsGet", 10)
def groups_get(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    return Result([dto.group_dict(p.groups[n]) for n in p.group_names])


@op(MT4, "GET", "GroupRecordGet", 10, nargs=(1,))
def group_record_get(ctx: Ctx) -> Result:
    return Result(dto.group_dict(platform_of(ctx).group(group_name_arg(ctx, 0))))


@op(MT4, "GET", "EnsureGroupNameExist", 10, nargs=(1,))
def ensure_group_name_exist(ctx: Ctx) -> Result:
    return Result(group_name_arg(ctx, 0) in platform_of(ctx).groups)




@op(MT4, "GET", "CfgRequestSymbol", 10, nargs=(0, 1))
def cfg_request_symbol(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    if ctx.args:
        return Result(dto.symbol_config(p.symbol(ctx.args[0])))
    return Result([dto.symbol_config(s) for s in p.market.symbols.values()])


@op(MT4, "GET", "SymbolInfoGet", 10)
def symbol_info_get(ctx: Ctx) -> Result:
    name = ctx.q("symbol")
    if not name:
        raise validation("'symbol' is required")
    return Result(dto.symbol_info(platform_of(ctx).symbol(name)))


@op(MT4, "GET", "SymbolsGroupsGet", 10)
def symbols_groups_get(ctx: Ctx) -> Result:
    return Result(dto.symbol_groups())


@op(MT4, "GET", "TickInfoLast", 10, nargs=(0, 1))
def tick_info_last(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    if ctx.args:
        return Result(dto.tick_info(p.symbol(ctx.args[0])))
    return Result([dto.tick_info(s) for s in p.market.symbols.values()])


CHART_MODES = ["RangeIn", "RangeOut", "RangeLast", "RangeInExcludeOutOfRage"]


@op(MT4, "GET", "ChartRequest", 30, nargs=(1,))
def chart_request(ctx: Ctx) -> Result:
    p = platform_of(ctx)
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
