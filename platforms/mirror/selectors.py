"""Reads of the mirror that already apply the user's scope (``platforms.access.scope``)."""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.db.models import Case, Count, F, FloatField, OuterRef, Q, Subquery, Sum, Value, When

from platforms.access.scope import group_masks_for, group_scope_q
from platforms.mirror.models import (
    MirrorAccount,
    MirrorClosedTrade,
    MirrorGroup,
    MirrorOpenTrade,
    MirrorState,
    MirrorSymbol,
)
from platforms.models import TradePlatform


def mirror_accounts(user, platform: TradePlatform):
    return MirrorAccount.objects.filter(platform=platform).filter(
        group_scope_q(user, platform)
    )


def mirror_open_trades(user, platform: TradePlatform):
    return MirrorOpenTrade.objects.filter(platform=platform).filter(
        group_scope_q(user, platform)
    )


def mirror_closed_trades(user, platform: TradePlatform):
    return MirrorClosedTrade.objects.filter(platform=platform).filter(
        group_scope_q(user, platform)
    )


def with_account_currency(trades):
    """``trades`` with each row's account ``currency`` (its money's decimals: JPY has none),
    read by a correlated lookup on the account's unique key, so only the shown page pays."""
    currency = MirrorAccount.objects.filter(
        platform_id=OuterRef("platform_id"), login=OuterRef("login")).values("currency")[:1]
    return trades.annotate(currency=Subquery(currency))


def mirror_state(platform: TradePlatform):
    """When the mirror was last refreshed (None before the first run)."""
    return MirrorState.objects.filter(platform=platform).first()


def trade_totals(trades) -> dict:
    """Count, lots, swap and profit over a (filtered) trades queryset."""
    return trades.aggregate(count=Count("pk"), lots=Sum("volume_lots"), swap=Sum("swap"),
                            profit=Sum("profit"), commission=Sum("commission"))


def exposure_by_symbol(trades) -> list[dict]:
    """Per symbol: buy lots, sell lots, net lots and floating profit of open market trades."""
    def lots(command):
        return Sum(Case(When(command=command, then=F("volume_lots")), default=Value(0.0),
                        output_field=FloatField()))

    rows = (trades.filter(is_pending=False).values("symbol")
            .annotate(buy=lots("Buy"), sell=lots("Sell"), profit=Sum("profit"))
            .order_by("symbol"))
    return [{**row, "net": (row["buy"] or 0) - (row["sell"] or 0)} for row in rows]


def mirror_symbols(platform: TradePlatform):
    return MirrorSymbol.objects.filter(platform=platform).order_by("symbol")


def mirror_groups(user, platform: TradePlatform):
    """Groups the user may see, each with its number of mirrored accounts."""
    accounts = (MirrorAccount.objects.filter(platform=platform, group=OuterRef("name"))
                .order_by().values("group").annotate(n=Count("pk")).values("n"))
    return (MirrorGroup.objects.filter(platform=platform)
            .filter(group_scope_q(user, platform, field="name"))
            .annotate(accounts=Subquery(accounts)).order_by("name"))


def platform_summary(user, platform: TradePlatform) -> dict:
    """What the overview card shows from the mirror: counts, and money per account currency."""
    accounts = mirror_accounts(user, platform)
    per_currency = list(accounts.values("currency").annotate(
        balance=Sum("balance"), equity=Sum("equity"), credit=Sum("credit")).order_by("currency"))
    counts = accounts.aggregate(
        accounts=Count("pk"), margin_call=Count("pk", filter=Q(margin_state="MarginCall")),
        stop_out=Count("pk", filter=Q(margin_state="StopOut")))
    trades = mirror_open_trades(user, platform).aggregate(
        open_trades=Count("pk", filter=Q(is_pending=False)),
        pending=Count("pk", filter=Q(is_pending=True)), floating=Sum("profit"))
    return {**counts, **trades, "money": per_currency, "state": mirror_state(platform)}


def summaries_total(summaries: list[dict]) -> dict:
    """Counts added up across platforms; money added up per currency only."""
    total = {key: sum(s[key] or 0 for s in summaries)
             for key in ("accounts", "margin_call", "stop_out", "open_trades", "pending",
                         "floating")}
    money: dict[str, dict] = {}
    for summary in summaries:
        for row in summary["money"]:
            into = money.setdefault(row["currency"] or "?", {"balance": 0.0, "equity": 0.0})
            into["balance"] += row["balance"] or 0
            into["equity"] += row["equity"] or 0
    total["money"] = [{"currency": c, **v} for c, v in sorted(money.items())]
    return total


def cached_for_filter(user, platform: TradePlatform, filterset, version_field: str, name: str,
                      compute):
    """``compute(queryset)`` for this filter, cached until the mirror's next refresh.

    Counts, totals and exposure do not change with sort or page, so the htmx requests that
    page or sort a 300,000-row list reuse them. The key holds the filter as applied, the
    user's group scope and the mirror version (``version_field`` of ``MirrorState``); with
    no version yet (nothing mirrored) nothing is cached.
    """
    queryset = filterset.qs  # validates a bound form; cleaned_data holds what was applied
    state = mirror_state(platform)
    version = getattr(state, version_field, None) if state else None
    if version is None:
        return compute(queryset)
    applied = getattr(filterset.form, "cleaned_data", {})
    filters = sorted((k, repr(v)) for k, v in applied.items() if v not in (None, "", []))
    zone = str(getattr(filterset, "tz", ""))  # date filters read days on the reader's clock
    raw = repr((name, platform.pk, version.isoformat(), group_masks_for(user, platform), filters,
                zone))
    key = "mirror:" + hashlib.sha256(raw.encode()).hexdigest()
    return cache.get_or_set(key, lambda: compute(queryset), 600)


def cached_trade_summary(user, platform: TradePlatform, filterset) -> dict:
    """Totals and exposure of the filtered open trades (see :func:`cached_for_filter`)."""
    return cached_for_filter(
        user, platform, filterset, "trades_as_of", "trade-summary",
        lambda trades: {"totals": trade_totals(trades), "exposure": exposure_by_symbol(trades)},
    )
