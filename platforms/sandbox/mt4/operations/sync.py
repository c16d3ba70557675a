"""MT4 snapshots and syncs ("changed since T") of users and trades; the reads are sidecar-only."""

from __future__ import annotations

from ...registry import Ctx, op
from ...wire import Raw, Result, from_wall, parse_limit, validation
from .. import dto
from .arguments import MT4, platform_of

SNAPSHOT_MAX = 1_000_000
SNAPSHOT_DEFAULT = 100_000


@op(MT4, "POST", "UsersSyncStart", 60)
def users_sync_start(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    since = _timestamp(ctx)
    p.users_sync = [dto.user_bytes(a) for a in p.changed_accounts(since)]
    return Result(True)


@op(MT4, "POST", "TradesSyncStart", 60)
def trades_sync_start(ctx: Ctx) -> Result:
    p = platform_of(ctx)
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
    return from_wall(float(value))  # the server's wall-clock seconds (``ServerTime``)


def _snapshot_limit(ctx: Ctx) -> int:
    limit = parse_limit(ctx.q("limit"), maximum=SNAPSHOT_MAX)
    return SNAPSHOT_DEFAULT if limit is None else limit


@op(MT4, "GET", "UsersSnapshot", 30)
def users_snapshot(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    limit = _snapshot_limit(ctx)
    accounts = p.accounts
    return Result(Raw([dto.user_bytes(accounts[x]) for x in p.logins[:limit]]))


@op(MT4, "GET", "UsersSyncRead", 30)
def users_sync_read(ctx: Ctx) -> Result:
    limit = _snapshot_limit(ctx)
    return Result(Raw((platform_of(ctx).users_sync or [])[:limit]))


@op(MT4, "GET", "TradesSnapshot", 30)
def trades_snapshot(ctx: Ctx) -> Result:
    p = platform_of(ctx)
    limit = _snapshot_limit(ctx)
    return Result(Raw([dto.trade_bytes(p, p.trades[t]) for t in p.tickets[:limit]]))


@op(MT4, "GET", "TradesSyncRead", 30)
def trades_sync_read(ctx: Ctx) -> Result:
    limit = _snapshot_limit(ctx)
    return Result(Raw((platform_of(ctx).trades_sync or [])[:limit]))
