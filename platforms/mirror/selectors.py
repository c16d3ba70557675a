"""Reads of the mirror that already apply the user's scope (``platforms.access.scope``)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.db.models import Case, Count, F, FloatField, OuterRef, Q, Subquery, Sum, Value, When

from platforms.access.masks import masks_q
from platforms.access.scope import group_masks_for, group_scope_q, scope_for
from platforms.mirror.models import (
    MirrorAccount,
    MirrorAccountTotal,
    MirrorClosedTrade,
    MirrorGroup,
    MirrorOpenTrade,
    MirrorState,
    MirrorSymbol,
    MirrorTradeTotal,
)
from platforms.mirror.totals import totals_fresh
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
    """What the overview card shows from the mirror: counts, and money per account currency.

    From the totals the last run added up (a few hundred rows, whatever the platform's size),
    or, before a run has written them, from the rows themselves.
    """
    state = mirror_state(platform)
    if not totals_fresh(state):
        return _platform_summary_from_rows(user, platform, state)
    scope = group_scope_q(user, platform)
    accounts = MirrorAccountTotal.objects.filter(platform=platform).filter(scope)
    per_currency = list(accounts.values("currency").annotate(
        balance=Sum("balance"), equity=Sum("equity"), credit=Sum("credit")).order_by("currency"))
    counts = accounts.aggregate(
        n=Sum("accounts", default=0),
        margin_call=Sum("accounts", filter=Q(margin_state="MarginCall"), default=0),
        stop_out=Sum("accounts", filter=Q(margin_state="StopOut"), default=0))
    trades = MirrorTradeTotal.objects.filter(platform=platform).filter(scope).aggregate(
        open_trades=Sum("trades", filter=Q(is_pending=False), default=0),
        pending=Sum("trades", filter=Q(is_pending=True), default=0), floating=Sum("profit"))
    return {"accounts": counts["n"], "margin_call": counts["margin_call"],
            "stop_out": counts["stop_out"], **trades, "money": per_currency, "state": state}


def platform_summaries(user, platforms: list[TradePlatform]) -> dict[int, dict]:
    """:func:`platform_summary` of every platform in ``platforms`` (the overview's cards), in
    a fixed number of queries however many platforms: the totals of all of them at once, each
    platform within the user's own masks. A platform whose totals are not fresh is added up
    from its rows, as :func:`platform_summary` does."""
    if not platforms:
        return {}
    grants = scope_for(user).platforms
    states = {s.platform_id: s for s in MirrorState.objects.filter(platform__in=platforms)}
    fresh = [p for p in platforms if totals_fresh(states.get(p.pk)) and p.pk in grants]
    result = {p.pk: _platform_summary_from_rows(user, p, states.get(p.pk))
              for p in platforms if p not in fresh}
    if not fresh:
        return result
    within = Q(pk__in=[])
    for p in fresh:
        within |= Q(platform_id=p.pk) & masks_q("group", grants[p.pk])
    for p in fresh:
        result[p.pk] = {"accounts": 0, "margin_call": 0, "stop_out": 0, "open_trades": 0,
                        "pending": 0, "floating": None, "money": [], "state": states[p.pk]}
    accounts = MirrorAccountTotal.objects.filter(within)
    for money in (accounts.values("platform_id", "currency").order_by("platform_id", "currency")
                  .annotate(balance=Sum("balance"), equity=Sum("equity"), credit=Sum("credit"))):
        result[money["platform_id"]]["money"].append(
            {k: v for k, v in money.items() if k != "platform_id"})
    for counted in accounts.values("platform_id").order_by("platform_id").annotate(
            n=Sum("accounts"), mc=Sum("accounts", filter=Q(margin_state="MarginCall"), default=0),
            so=Sum("accounts", filter=Q(margin_state="StopOut"), default=0)):
        result[counted["platform_id"]].update(accounts=counted["n"], margin_call=counted["mc"],
                                              stop_out=counted["so"])
    for traded in MirrorTradeTotal.objects.filter(within).values("platform_id") \
            .order_by("platform_id").annotate(
                o=Sum("trades", filter=Q(is_pending=False), default=0),
                pe=Sum("trades", filter=Q(is_pending=True), default=0), f=Sum("profit")):
        result[traded["platform_id"]].update(open_trades=traded["o"], pending=traded["pe"],
                                             floating=traded["f"])
    return result


def _platform_summary_from_rows(user, platform: TradePlatform, state) -> dict:
    accounts = mirror_accounts(user, platform)
    per_currency = list(accounts.values("currency").annotate(
        balance=Sum("balance"), equity=Sum("equity"), credit=Sum("credit")).order_by("currency"))
    counts = accounts.aggregate(
        accounts=Count("pk"), margin_call=Count("pk", filter=Q(margin_state="MarginCall")),
        stop_out=Count("pk", filter=Q(margin_state="StopOut")))
    trades = mirror_open_trades(user, platform).aggregate(
        open_trades=Count("pk", filter=Q(is_pending=False)),
        pending=Count("pk", filter=Q(is_pending=True)), floating=Sum("profit"))
    return {**counts, **trades, "money": per_currency, "state": state}


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
                      compute, state: MirrorState | object | None = ...):
    """``compute(queryset)`` for this filter, cached until the mirror's next refresh.

    Counts, totals and exposure do not change with sort or page, so the htmx requests that
    page or sort a 300,000-row list reuse them. The key holds the filter as applied, the
    user's group scope and the mirror version (``version_field`` of ``MirrorState``); with
    no version yet (nothing mirrored) nothing is cached.
    """
    queryset = filterset.qs  # validates a bound form; cleaned_data holds what was applied
    if state is ...:  # not read by the caller yet (None: read, and there is no state)
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
    """Totals and exposure of the filtered open trades: from the run's totals when they answer
    the filters (group, symbol, pending), else added up and cached (:func:`cached_for_filter`)."""
    state = mirror_state(platform)
    totals = _filtered_totals(MirrorTradeTotal, user, platform, filterset, TRADE_TOTAL_FILTERS,
                              state)
    if totals is not None:
        return _summary_from_totals(totals)
    return cached_for_filter(
        user, platform, filterset, "trades_as_of", "trade-summary",
        lambda trades: {"totals": trade_totals(trades), "exposure": exposure_by_symbol(trades)},
        state,
    )


# ---------------------------------------------------------------- counts at a million rows
#: Filters the totals can answer (their columns carry what these filters test).
ACCOUNT_TOTAL_FILTERS = frozenset({"group", "state"})
TRADE_TOTAL_FILTERS = frozenset({"group", "symbol", "pending"})


def _applied(filterset) -> dict:
    filterset.qs  # validates a bound form; cleaned_data holds what was applied  # noqa: B018
    data = getattr(filterset.form, "cleaned_data", {})
    return {k: v for k, v in data.items() if v not in (None, "", [])}


def _filtered_totals(model, user, platform: TradePlatform, filterset, allowed: frozenset,
                     state: MirrorState | None):
    """The platform's totals within the user's masks and the list's filters, or None when a
    filter asks something the totals do not hold (or they are not fresh)."""
    applied = _applied(filterset)
    if not set(applied) <= allowed or not totals_fresh(state):
        return None
    totals = model.objects.filter(platform=platform).filter(group_scope_q(user, platform))
    for name, value in applied.items():
        totals = filterset.filters[name].filter(totals, value)
    return totals


def bounded_count(queryset, bound: int | None = None) -> tuple[int, bool]:
    """``(count, more)``: the rows counted up to ``bound`` (``LIST_COUNT_BOUND``), and whether
    there are more. ``COUNT(*)`` over a subquery with ``LIMIT bound + 1``: it stops reading
    once it knows the answer is "more than ``bound``", so a list of a million rows costs a
    bounded scan, not a full one."""
    bound = bound or settings.LIST_COUNT_BOUND
    n = queryset.order_by()[: bound + 1].count()
    return min(n, bound), n > bound


def account_count(user, platform: TradePlatform, filterset) -> tuple[int, bool]:
    """``(count, more)`` for the accounts list: exact from the totals when they answer the
    filters, else bounded (:func:`bounded_count`), cached until the mirror's next refresh."""
    state = mirror_state(platform)
    totals = _filtered_totals(MirrorAccountTotal, user, platform, filterset,
                              ACCOUNT_TOTAL_FILTERS, state)
    if totals is not None:
        return totals.aggregate(n=Sum("accounts", default=0))["n"], False
    # its own cache name: an exact count cached by the code before holds a plain number
    return tuple(cached_for_filter(user, platform, filterset, "accounts_as_of",
                                   "account-count-bounded", bounded_count, state))


def _summary_from_totals(totals) -> dict:
    sums = totals.aggregate(count=Sum("trades", default=0), lots=Sum("lots"), swap=Sum("swap"),
                            profit=Sum("profit"), commission=Sum("commission"))
    rows = (totals.filter(is_pending=False).values("symbol")
            .annotate(buy=Sum("buy_lots"), sell=Sum("sell_lots"), profit=Sum("profit"))
            .order_by("symbol"))
    return {"totals": sums,
            "exposure": [{**row, "net": (row["buy"] or 0) - (row["sell"] or 0)} for row in rows]}
