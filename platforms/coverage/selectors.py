"""Net exposure: clients' net position per symbol minus what the coverage accounts hold.

Reads only: the clients' side from the mirror (scoped by ``platforms.access.scope``), the
coverage side from the Django cache that ``platforms.coverage.tasks`` fills from the bridges, so
the page never waits on an LP. :func:`net_exposure` is pure (plain rows in, rows out) so that
tests and the benchmark can check it against figures they sum themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Case, F, FloatField, Max, Sum, Value, When
from django.http import Http404
from django.utils import timezone

from platforms.access.masks import group_allowed, masks_q
from platforms.access.scope import (
    group_scope_q,
    is_staff,
    scope_for,
    visible_platforms,
)
from platforms.coverage import stream_trades
from platforms.coverage.models import CoverageAccount
from platforms.mirror.models import MirrorOpenTrade, MirrorState, MirrorSymbol, MirrorTradeTotal
from platforms.mirror.totals import totals_fresh
from platforms.models import TradePlatform

#: Roles (Django groups) that may open the net-exposure page; superusers always may.
EXPOSURE_ROLES = frozenset({"risk", "dealer", "admin"})
#: The currency the page reports notional and P/L in (the coverage accounts' currency).
REPORT_CURRENCY = "USD"
#: Coverage figures older than this are refreshed in the background when the page is read.
STALE_AFTER_SECONDS = 2.0


def coverage_cache_key(account_pk: int) -> str:
    return f"coverage:snapshot:{account_pk}"


def may_view_exposure(user) -> bool:
    """Risk, dealer and admin staff (and superusers). Everyone else gets a 404, like a
    platform outside their grant: the page's existence is not disclosed."""
    if not is_staff(user):
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=EXPOSURE_ROLES).exists()


#: How long the nav's answer is remembered per user (``may_view_exposure_cached``); the
#: receivers in ``coverage.signals`` drop it sooner whenever it may have changed.
NAV_ANSWER_SECONDS = 3600


def nav_answer_key(user_pk: int) -> str:
    return f"coverage:may-view-exposure:{int(user_pk)}"


def may_view_exposure_cached(user) -> bool:
    """:func:`may_view_exposure` for the navigation of every page, from the cache: the nav is
    on every page and must not add a query to each (list pages hold a query budget). The
    answer is computed at login, dropped whenever the user, their roles or a role change
    (``coverage.signals``) and after :data:`NAV_ANSWER_SECONDS` anyway; the page
    itself always asks afresh."""
    if not is_staff(user) or user.is_superuser:
        return may_view_exposure(user)
    key = nav_answer_key(user.pk)
    answer = cache.get(key)
    if answer is None:
        answer = may_view_exposure(user)
        cache.set(key, answer, NAV_ANSWER_SECONDS)
    return bool(answer)


def exposure_platforms(user, pk: int | None = None) -> list[TradePlatform]:
    """The platforms a net-exposure view covers for ``user``: one (``pk``) or every visible
    one. A user without an exposure role, or a platform outside the grant, is a 404."""
    if not may_view_exposure(user):
        raise Http404("No such page.")
    platforms = visible_platforms(user)
    if pk is not None:
        platforms = platforms.filter(pk=pk)
    found = list(platforms)
    if not found:
        raise Http404("No such platform.")
    return found


def covering_accounts(platforms: Iterable[TradePlatform]) -> list[CoverageAccount]:
    """Enabled coverage accounts hedging any of ``platforms`` (secrets deferred)."""
    return list(
        CoverageAccount.objects.filter(enabled=True, covers__in=list(platforms))
        .distinct().defer("api_key", "terminal_password").order_by("name")
    )


# ---------------------------------------------------------------------------- coverage side


@dataclass(frozen=True)
class CoverageSnapshot:
    """What the last poll of one coverage account read (or the error it got)."""

    account_pk: int
    name: str
    lp_name: str
    login: int
    fetched_at: datetime | None
    account: Mapping[str, Any] | None
    positions: Sequence[Mapping[str, Any]]
    symbols: Mapping[str, Mapping[str, Any]]
    error: str = ""

    @property
    def age_seconds(self) -> float | None:
        if self.fetched_at is None:
            return None
        return max(0.0, (timezone.now() - self.fetched_at).total_seconds())

    def net_lots(self) -> dict[str, float]:
        """Net lots per symbol of the open positions (buy +, sell -; pending orders apart)."""
        net: dict[str, float] = {}
        for position in self.positions:
            sign = _side(position.get("type", ""))
            if sign:
                symbol = position.get("symbol", "")
                net[symbol] = net.get(symbol, 0.0) + sign * float(position.get("volume", 0))
        return net

    def profit(self) -> dict[str, float]:
        """Floating profit per symbol (profit + swap + commission of the open positions)."""
        totals: dict[str, float] = {}
        for position in self.positions:
            if _side(position.get("type", "")):
                symbol = position.get("symbol", "")
                totals[symbol] = totals.get(symbol, 0.0) + float(position.get("profit", 0)) \
                    + float(position.get("swap", 0)) + float(position.get("commission", 0))
        return totals


def _side(kind: str) -> int:
    kind = kind.lower()
    return 1 if kind == "buy" else -1 if kind == "sell" else 0


def coverage_snapshot(account: CoverageAccount) -> CoverageSnapshot:
    """The cached poll of ``account`` (an empty snapshot before its first poll)."""
    cached = cache.get(coverage_cache_key(account.pk)) or {}
    fetched = cached.get("fetched_at")
    return CoverageSnapshot(
        account_pk=account.pk, name=account.name, lp_name=account.lp_name,
        login=int(account.login),
        fetched_at=datetime.fromisoformat(fetched) if fetched else None,
        account=cached.get("account"), positions=cached.get("positions", []),
        symbols=cached.get("symbols", {}), error=cached.get("error", ""),
    )


# ---------------------------------------------------------------------------- clients' side


def _lots(command: str):
    return Sum(Case(When(command=command, then=F("volume_lots")), default=Value(0.0),
                    output_field=FloatField()))


def _platform_positions(user, platform: TradePlatform, fresh: bool = False,
                        masks: str | None = None) -> list[dict[str, Any]]:
    """One grouped query over the platform's open market trades within the user's masks:
    over the totals the last snapshot run added up per (group, symbol) when they are
    ``fresh`` (a few hundred rows however many trades), else over the trades themselves."""
    if fresh:
        within = (masks_q("group", masks) if masks is not None
                  else group_scope_q(user, platform))
        return [dict(row) for row in (
            MirrorTradeTotal.objects.filter(platform=platform, is_pending=False)
            .filter(within).values("symbol").order_by()
            .annotate(buy=Sum("buy_lots"), sell=Sum("sell_lots"), profit=Sum("profit"),
                      swap=Sum("swap"), commission=Sum("commission"), price=Max("price")))]
    rows = (
        MirrorOpenTrade.objects.filter(platform=platform, is_pending=False)
        .filter(group_scope_q(user, platform))
        .values("symbol").order_by()
        .annotate(buy=_lots("Buy"), sell=_lots("Sell"), profit=Sum("profit"),
                  swap=Sum("swap"), commission=Sum("commission"), price=Max("current_price"))
    )
    return [dict(row) for row in rows]


def _cached_platform_positions(user, platform: TradePlatform, version: datetime | None,
                               masks: str, fresh: bool = False) -> list[dict[str, Any]]:
    """:func:`_platform_positions`, cached until the mirror's trades change (the key holds the
    mirror's ``trades_as_of`` and the user's group masks), so a page re-read on every live
    update does not re-aggregate 300,000 trades each time; with no mirror version yet nothing
    is cached."""
    if version is None:
        return _platform_positions(user, platform)
    raw = repr((platform.pk, version.isoformat(), masks))
    key = "coverage:clients:" + hashlib.sha256(raw.encode()).hexdigest()
    return cache.get_or_set(key, lambda: _platform_positions(user, platform, fresh, masks),
                            600) or []


def _into(result: dict[str, dict[str, float]], symbol: str) -> dict[str, float]:
    return result.setdefault(symbol, {"buy": 0.0, "sell": 0.0, "profit": 0.0, "price": 0.0})


def _add_stream_trades(result: dict[str, dict[str, float]], user, platform: TradePlatform,
                       version: datetime | None, masks: str) -> int:
    """Replace the mirror's contribution of the orders the stream reported since ``version``
    with their reported state (``platforms.coverage.stream_trades``), within the user's group
    masks. Returns how many orders were overlaid (one small query when there are any)."""
    entries = {order: e for order, e in stream_trades.recent_trades(platform.pk, version).items()
               if (not masks.strip()) or (e[stream_trades.GROUP]
                                          and group_allowed(e[stream_trades.GROUP], masks))}
    if not entries:
        return 0
    mirrored = (MirrorOpenTrade.objects.filter(platform=platform, is_pending=False,
                                               ticket__in=list(entries))
                .filter(group_scope_q(user, platform))
                .values_list("symbol", "command", "volume_lots", "profit", "swap", "commission"))
    for symbol, command, lots, profit, swap, commission in mirrored:
        into = _into(result, symbol)
        into["buy" if command == "Buy" else "sell"] -= lots or 0.0
        into["profit"] -= (profit or 0.0) + (swap or 0.0) + (commission or 0.0)
    for entry in entries.values():
        side = entry[stream_trades.SIDE]
        if not entry[stream_trades.OPEN] or not side:
            continue
        into = _into(result, entry[stream_trades.SYMBOL])
        into["buy" if side > 0 else "sell"] += entry[stream_trades.LOTS]
        into["profit"] += entry[stream_trades.FLOATING]
    for row in result.values():  # float dust from subtracting what was added
        for side in ("buy", "sell"):
            row[side] = round(row[side], 8)
    return len(entries)


def client_positions(user, platforms: Iterable[TradePlatform]) -> dict[str, dict[str, float]]:
    """Per symbol over the open market trades the user may see on ``platforms``: buy lots,
    sell lots, floating profit (with swap and commission), a current price. The mirror (one
    grouped query per platform, cached per mirror version and group masks) plus the trades
    the live stream reported since the mirror's version (``stream_trades``)."""
    result: dict[str, dict[str, float]] = {}
    platforms = list(platforms)
    states = {s.platform_id: s for s in MirrorState.objects.filter(platform__in=platforms)}
    grants = scope_for(user).platforms  # one read of the grant for every platform
    for platform in platforms:
        state = states.get(platform.pk)
        version = state.trades_as_of if state else None
        masks = grants.get(platform.pk, "!*")
        for row in _cached_platform_positions(user, platform, version, masks,
                                              totals_fresh(state)):
            into = _into(result, row["symbol"])
            into["buy"] += row["buy"] or 0.0
            into["sell"] += row["sell"] or 0.0
            into["profit"] += (row["profit"] or 0.0) + (row["swap"] or 0.0) \
                + (row["commission"] or 0.0)
            into["price"] = into["price"] or (row["price"] or 0.0)
        _add_stream_trades(result, user, platform, version, masks)
    return result


def symbol_specs(platforms: Iterable[TradePlatform]) -> dict[str, dict[str, Any]]:
    """Contract size and currencies per symbol from the mirror (first platform wins)."""
    specs: dict[str, dict[str, Any]] = {}
    for row in (MirrorSymbol.objects.filter(platform__in=list(platforms))
                .values("symbol", "contract_size", "currency_base", "currency_profit")):
        specs.setdefault(row["symbol"], dict(row))
    return specs


# ---------------------------------------------------------------------------- the computation


@dataclass
class ExposureRow:
    symbol: str
    client_buy: float
    client_sell: float
    client_net: float
    client_notional: float
    client_profit: float
    coverage: dict[int, float] = field(default_factory=dict)  # coverage account pk → net lots
    coverage_net: float = 0.0
    coverage_profit: float = 0.0
    net: float = 0.0
    net_notional: float = 0.0
    net_profit: float = 0.0


def _mid(quote: Mapping[str, Any]) -> float:
    bid, ask = float(quote.get("bid") or 0), float(quote.get("ask") or 0)
    return (bid + ask) / 2 if bid and ask else bid or ask


def conversion_rate(currency: str, quotes: Mapping[str, Mapping[str, Any]],
                    into: str = REPORT_CURRENCY) -> float | None:
    """How many ``into`` one unit of ``currency`` is worth, from a direct or inverse pair."""
    if not currency or currency == into:
        return 1.0
    direct, inverse = quotes.get(currency + into), quotes.get(into + currency)
    if direct and _mid(direct):
        return _mid(direct)
    if inverse and _mid(inverse):
        return 1.0 / _mid(inverse)
    return None


def notional(lots: float, symbol: str, price: float, specs: Mapping[str, Mapping[str, Any]],
             quotes: Mapping[str, Mapping[str, Any]]) -> float:
    """``lots`` of ``symbol`` in the report currency: lots * contract size * price, converted
    from the symbol's profit currency. Unknown specs or rates count as 0 (shown as such)."""
    spec = specs.get(symbol) or quotes.get(symbol) or {}
    contract = float(spec.get("contract_size") or spec.get("contractSize") or 0)
    currency = spec.get("currency_profit") or spec.get("currencyProfit") or ""
    rate = conversion_rate(currency, quotes)
    if not contract or rate is None:
        return 0.0
    return lots * contract * price * rate


def net_exposure(clients: Mapping[str, Mapping[str, float]],
                 coverage: Sequence[CoverageSnapshot],
                 specs: Mapping[str, Mapping[str, Any]] | None = None,
                 quotes: Mapping[str, Mapping[str, Any]] | None = None) -> list[ExposureRow]:
    """Per symbol: clients' net lots (buy - sell) minus the coverage accounts' net lots.

    Pure: ``clients`` is :func:`client_positions`' shape, ``coverage`` the polled snapshots,
    ``quotes`` the LP's symbols (bid/ask, contract size) for prices and conversions. The net
    floating P/L is the clients' floating profit minus the coverage profit (the broker's
    result is its negative). Rows are sorted by absolute net notional, largest first.
    """
    specs = specs or {}
    if quotes is None:
        quotes = {}
        for snapshot in coverage:
            quotes = {**snapshot.symbols, **quotes}
    nets = {snapshot.account_pk: snapshot.net_lots() for snapshot in coverage}
    profits = [snapshot.profit() for snapshot in coverage]
    symbols = set(clients) | {s for net in nets.values() for s in net}
    rows = []
    for symbol in symbols:
        client = clients.get(symbol, {})
        buy, sell = float(client.get("buy", 0.0)), float(client.get("sell", 0.0))
        price = _mid(quotes.get(symbol, {})) or float(client.get("price", 0.0))
        per_account = {pk: round(net.get(symbol, 0.0), 8) for pk, net in nets.items()}
        covered = sum(per_account.values())
        row = ExposureRow(
            symbol=symbol, client_buy=buy, client_sell=sell, client_net=buy - sell,
            client_notional=notional(buy - sell, symbol, price, specs, quotes),
            client_profit=float(client.get("profit", 0.0)), coverage=per_account,
            coverage_net=covered,
            coverage_profit=sum(p.get(symbol, 0.0) for p in profits),
        )
        row.net = row.client_net - row.coverage_net
        row.net_notional = notional(row.net, symbol, price, specs, quotes)
        row.net_profit = row.client_profit - row.coverage_profit
        rows.append(row)
    rows.sort(key=lambda r: (-abs(r.net_notional), -abs(r.net), r.symbol))
    return rows


@dataclass
class ExposureReport:
    platforms: list[TradePlatform]
    rows: list[ExposureRow]
    coverage: list[CoverageSnapshot]
    oldest_seconds: float | None  # age of the oldest coverage figures (None: never polled)
    stale: list[int]  # coverage account pks due for a background refresh
    currency: str = REPORT_CURRENCY

    @property
    def totals(self) -> dict[str, float]:
        return {key: sum(getattr(r, key) for r in self.rows)
                for key in ("client_notional", "net_notional", "client_profit",
                            "coverage_profit", "net_profit")}


def exposure_report(user, platforms: list[TradePlatform]) -> ExposureReport:
    """The net-exposure page's figures for ``user`` over ``platforms`` (already scoped by
    :func:`exposure_platforms`). Never touches the network."""
    accounts = covering_accounts(platforms)
    snapshots = [coverage_snapshot(account) for account in accounts]
    rows = net_exposure(client_positions(user, platforms), snapshots, symbol_specs(platforms))
    ages = [s.age_seconds for s in snapshots]
    known = [a for a in ages if a is not None]
    oldest = None if not known or len(known) < len(ages) else max(known)
    stale = [s.account_pk for s, age in zip(snapshots, ages, strict=True)
             if age is None or age > STALE_AFTER_SECONDS]
    return ExposureReport(platforms, rows, snapshots, oldest, stale)
