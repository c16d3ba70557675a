"""Reads that go to the platform live, falling back to the mirror when the platform fails.

A page built from these shows ``source == "mirror"`` with the live error, so staff see they are
looking at stored data and how old it is, instead of an error page.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import Http404
from django.utils import timezone

from platforms.access.masks import group_allowed
from platforms.access.scope import group_masks_for
from platforms.client import ManagerApiError, NotFound
from platforms.connections import client_for
from platforms.mirror.models import MirrorAccount, MirrorClosedTrade, MirrorOpenTrade
from platforms.models import AuditEvent, PlatformKind, TradePlatform
from platforms.timezones import server_to_utc, utc_to_server
from platforms.transport.interactive import concurrently

PENDING_COMMANDS = frozenset({"BuyLimit", "SellLimit", "BuyStop", "SellStop"})
MONEY_COMMANDS = frozenset({"Balance", "Credit"})


class PlatformUnavailable(Exception):
    """The platform failed and the mirror has nothing to show instead."""


@dataclass
class AccountView:
    login: int
    name: str = ""
    group: str = ""
    email: str = ""
    phone: str = ""
    country: str = ""
    city: str = ""
    address: str = ""
    comment: str = ""
    status: str = ""
    leverage: int = 0
    balance: float = 0.0
    credit: float = 0.0
    equity: float | None = None
    margin: float | None = None
    free_margin: float | None = None
    margin_level: float | None = None
    margin_state: str = ""
    enabled: bool = True
    read_only: bool = False
    registered_at: datetime | None = None
    last_access_at: datetime | None = None
    last_ip: str = ""
    source: str = "live"
    as_of: datetime = field(default_factory=timezone.now)
    live_error: str = ""
    #: the account currency (its money's decimals); the mirror's, as the WebAPI user has none
    currency: str = ""


@dataclass
class TradeRow:
    ticket: int
    login: int
    symbol: str
    command: str
    volume_lots: float
    open_time: datetime | None
    open_price: float
    sl: float = 0.0
    tp: float = 0.0
    close_time: datetime | None = None
    close_price: float = 0.0
    commission: float = 0.0
    swap: float = 0.0
    profit: float = 0.0
    comment: str = ""
    #: the symbol's digits (its prices' decimals)
    digits: int | None = None

    @property
    def is_pending(self) -> bool:
        return self.command in PENDING_COMMANDS

    @property
    def is_money(self) -> bool:
        return self.command in MONEY_COMMANDS


def _instant(value: datetime | None, minutes: int) -> datetime | None:
    """A live read's server time as the true instant; MT4's "unset" (the epoch) is None."""
    if value is None or value.year <= 1970:
        return None
    return server_to_utc(value, minutes)


def _ip(raw: int) -> str:
    if not raw:
        return ""
    try:
        return str(ipaddress.IPv4Address(raw & 0xFFFFFFFF))
    except ValueError:
        return ""


def _from_mirror(row: MirrorAccount, error: str) -> AccountView:
    return AccountView(
        login=row.login, name=row.name, group=row.group, email=row.email, phone=row.phone,
        country=row.country, city=row.city, address=row.address, comment=row.comment,
        status=row.status, leverage=row.leverage, balance=row.balance, credit=row.credit,
        equity=row.equity, margin=row.margin, free_margin=row.free_margin,
        margin_level=row.margin_level, margin_state=row.margin_state, enabled=row.enabled,
        read_only=row.read_only, registered_at=row.registered_at,
        last_access_at=row.last_access_at, last_ip=row.last_ip, source="mirror",
        as_of=row.last_seen_at, live_error=error, currency=row.currency,
    )


def _live_account(platform: TradePlatform, login: int) -> AccountView:
    client = client_for(platform)
    minutes = platform.utc_offset_minutes
    if platform.kind == PlatformKind.MT5:
        user = client.mt5.user_get(login)
        rights = {r.strip() for r in (user.rights or "").split(",")}
        return AccountView(
            login=user.login, name=user.name or "", group=user.group or "",
            email=user.e_mail or "", phone=user.phone or "", country=user.country or "",
            city=user.city or "", address=user.address or "", comment=user.comment or "",
            status=user.status or "", leverage=user.leverage, balance=user.balance,
            credit=user.credit, enabled="Enabled" in rights, read_only="TradeDisabled" in rights,
            registered_at=_instant(user.registration, minutes),
            last_access_at=_instant(user.last_access, minutes),
            last_ip=user.last_ip or "",
        )
    # Side by side: inside a page both share its interactive deadline (one wait, not two).
    user, margin = concurrently(lambda: client.mt4.user_record_get(login),
                                lambda: client.mt4.margin_level_get(login))
    if isinstance(user, Exception):
        raise user
    view = AccountView(
        login=user.login, name=user.name or "", group=user.group or "", email=user.email or "",
        phone=user.phone or "", country=user.country or "", city=user.city or "",
        address=user.address or "", comment=user.comment or "", status=user.status or "",
        leverage=user.leverage, balance=user.balance, credit=user.credit,
        enabled=bool(user.enable_flags & 0x01), read_only=bool(user.enable_flags & 0x04),
        registered_at=_instant(user.registration_date, minutes),
        last_access_at=_instant(user.last_date, minutes),
        last_ip=_ip(user.last_ip),
    )
    if isinstance(margin, NotFound):
        return view
    if isinstance(margin, Exception):
        raise margin
    view.equity, view.margin, view.free_margin = margin.equity, margin.margin, margin.free
    view.margin_level = margin.level if margin.margin else None
    view.margin_state = margin.level_type or ""
    return view


def account_view(user, platform: TradePlatform, login: int) -> AccountView:
    """The account's profile and figures, live when possible; 404 when outside the user's scope.

    Raises :class:`PlatformUnavailable` when the platform fails and the mirror has no row.
    """
    try:
        view = _live_account(platform, login)
        view.currency = (MirrorAccount.objects.filter(platform=platform, login=login)
                         .values_list("currency", flat=True).first() or "")
    except NotFound as exc:
        raise Http404(f"Account {login} does not exist on {platform.name}") from exc
    except ManagerApiError as exc:
        row = MirrorAccount.objects.filter(platform=platform, login=login).first()
        if row is None:
            raise PlatformUnavailable(str(exc)) from exc
        view = _from_mirror(row, str(exc))
    if not group_allowed(view.group, group_masks_for(user, platform)):
        raise Http404("Account outside your scope")
    return view


def _rows_from_mt4(trades, minutes: int) -> list[TradeRow]:
    """Live MT4 trades; their times (the server's clock, ``minutes`` east) as instants."""
    return [
        TradeRow(
            ticket=t.order, login=t.login, symbol=t.symbol or "", command=t.trade_command or "",
            volume_lots=t.volume_lots or t.volume / 100,
            open_time=_instant(t.open_time, minutes),
            open_price=t.open_price, sl=t.sl, tp=t.tp,
            close_time=_instant(t.close_time, minutes),
            close_price=t.close_price, commission=t.commission, swap=t.storage, profit=t.profit,
            comment=t.comment or "", digits=t.digits,
        )
        for t in trades
    ]


def _rows_from_mirror(rows) -> list[TradeRow]:
    return [
        TradeRow(
            ticket=t.ticket, login=t.login, symbol=t.symbol, command=t.command,
            volume_lots=t.volume_lots, open_time=t.open_time, open_price=t.open_price, sl=t.sl,
            tp=t.tp, close_time=getattr(t, "close_time", None),
            close_price=getattr(t, "close_price", getattr(t, "current_price", 0.0)),
            commission=t.commission, swap=t.swap, profit=t.profit, comment=t.comment,
            digits=t.digits,
        )
        for t in rows
    ]


@dataclass
class TradeList:
    rows: list[TradeRow]
    source: str = "live"
    live_error: str = ""


def _live_open_trades(platform: TradePlatform, login: int, group: str) -> TradeList:
    """The MT4 live read alone (no ORM: it may run in :func:`concurrently`'s pool)."""
    trades = client_for(platform).mt4.trades_get_by_login(login, group)
    live = _rows_from_mt4(trades, platform.utc_offset_minutes)
    return TradeList(sorted(live, key=lambda r: r.ticket))


def _mirror_open_trades(platform: TradePlatform, login: int, error: str) -> TradeList:
    rows = MirrorOpenTrade.objects.filter(platform=platform, login=login).order_by("ticket")
    return TradeList(_rows_from_mirror(rows), "mirror", error)


def open_trades(platform: TradePlatform, account: AccountView) -> TradeList:
    """Open market trades and pending orders of one account."""
    if platform.kind != PlatformKind.MT4:
        return _mirror_open_trades(
            platform, account.login, "MT5 offers no per-account live read; showing the mirror")
    try:
        return _live_open_trades(platform, account.login, account.group)
    except ManagerApiError as exc:
        return _mirror_open_trades(platform, account.login, str(exc))


def account_with_open_trades(user, platform: TradePlatform,
                             login: int) -> tuple[AccountView, TradeList]:
    """:func:`account_view` and :func:`open_trades` of the same account, read side by side.

    The trades read needs the account's group, so it is sent with the mirror's; in the rare
    case the live account has moved group since, it is read again with the live one.
    Raises what :func:`account_view` raises.
    """
    known = MirrorAccount.objects.filter(platform=platform, login=login).values_list(
        "group", flat=True).first()
    if platform.kind != PlatformKind.MT4 or known is None:
        account = account_view(user, platform, login)
        return account, open_trades(platform, account)
    # account_view touches the ORM, so it runs first, in this thread (see concurrently).
    account, trades = concurrently(lambda: account_view(user, platform, login),
                                   lambda: _live_open_trades(platform, login, known))
    if isinstance(account, Exception):
        raise account
    if isinstance(trades, ManagerApiError):
        return account, _mirror_open_trades(platform, login, str(trades))
    if isinstance(trades, Exception):
        raise trades
    if account.group != known:
        return account, open_trades(platform, account)
    return account, trades


def closed_trades(
    platform: TradePlatform, login: int, start: datetime, end: datetime
) -> TradeList:
    """Closed trades and balance operations of one account between the instants ``start``
    and ``end`` (asked of the server on its own clock)."""
    if platform.kind == PlatformKind.MT4:
        minutes = platform.utc_offset_minutes
        try:
            trades = client_for(platform).mt4.trades_user_history(
                login, utc_to_server(start, minutes), utc_to_server(end, minutes))
            rows = _rows_from_mt4(trades, minutes)
            return TradeList(sorted(rows, key=lambda r: (r.close_time or start, r.ticket)))
        except ManagerApiError as exc:
            error = str(exc)
    else:
        error = "MT5 history comes from the mirror"
    rows = MirrorClosedTrade.objects.filter(
        platform=platform, login=login, close_time__gte=start, close_time__lt=end
    ).order_by("close_time", "ticket")
    return TradeList(_rows_from_mirror(rows), "mirror", error)


def balance_curve(
    rows: list[TradeRow], current_balance: float, start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    """Balance at ``start``, after each closed trade or money operation, and now (``end``)."""
    ordered = sorted((r for r in rows if r.close_time), key=lambda r: r.close_time)
    balance = current_balance - sum(r.profit + r.commission + r.swap for r in ordered)
    curve = [(start, round(balance, 2))]
    for row in ordered:
        balance += row.profit + row.commission + row.swap
        curve.append((row.close_time, round(balance, 2)))
    curve.append((min(end, timezone.now()), round(current_balance, 2)))
    return curve


def default_range(days: int = 30) -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    return end - timedelta(days=days), end


def account_audit(platform: TradePlatform, login: int):
    return AuditEvent.objects.filter(platform=platform, target=str(login)).select_related(
        "actor"
    )[:200]


@dataclass
class Quote:
    bid: float | None = None
    ask: float | None = None
    direction: str = ""


def quotes(platform: TradePlatform, symbols: list[str]) -> tuple[dict[str, Quote], str]:
    """Last bid/ask per symbol from the pump cache (MT4); ``("", error)`` when unavailable."""
    if platform.kind != PlatformKind.MT4:
        return {}, "MT5 quotes arrive with the live feed"
    client = client_for(platform)
    found: dict[str, Quote] = {}
    try:
        for symbol in symbols:
            info = client.mt4.symbol_info_get(symbol)
            found[symbol] = Quote(info.bid, info.ask, info.direction or "")
    except ManagerApiError as exc:
        return found, str(exc)
    return found, ""


CHART_PERIODS = {"M1": 1, "M5": 5, "M15": 15, "M30": 30, "H1": 60, "H4": 240, "D1": 1440}


def ohlc_bars(platform: TradePlatform, symbol: str, period: str, bars: int = 200):
    """The last ``bars`` OHLC bars of ``symbol`` (``ChartRequest``), oldest first, each with
    ``at``: its time as an instant (``time`` is the server's clock)."""
    minutes = CHART_PERIODS[period]
    offset = platform.utc_offset_minutes
    end = datetime.now(UTC)
    start = end - timedelta(minutes=minutes * bars)
    rows = client_for(platform).mt4.chart_request(
        symbol, period, utc_to_server(start, offset), utc_to_server(end, offset))
    timed = [ChartBar(server_to_utc(bar.time, offset), bar) for bar in rows if bar.time]
    return sorted(timed, key=lambda bar: bar.time)


@dataclass(frozen=True)
class ChartBar:
    """An OHLC bar with ``at``, its time as an instant; the bar's fields read through."""

    at: datetime | None
    bar: Any

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "bar":
            raise AttributeError(name)
        return getattr(self.bar, name)


@dataclass
class OnlineRow:
    login: int
    group: str
    name: str = ""
    last_ip: str = ""
    since: datetime | None = None


def online_users(user, platform: TradePlatform) -> list[OnlineRow]:
    """Who is connected now (``OnlineRequest``), with names and IPs from the mirror.

    The API gives only login and group; IP and "since" are the mirror's last IP and last access.
    """
    masks = group_masks_for(user, platform)
    sessions = [s for s in client_for(platform).mt4.iter_online()
                if group_allowed(s.group or "", masks)]
    known = {a.login: a for a in MirrorAccount.objects.filter(
        platform=platform, login__in=[s.login for s in sessions]
    ).only("login", "name", "last_ip", "last_access_at")}
    rows = []
    for s in sorted(sessions, key=lambda s: s.login):
        account = known.get(s.login)
        rows.append(OnlineRow(s.login, s.group or "", account.name if account else "",
                              account.last_ip if account else "",
                              account.last_access_at if account else None))
    return rows
