"""Open trades with exposure by symbol, and closed-trade history: read from the mirror."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django.views.decorators.http import require_GET

from dashboard.access import staff_required
from dashboard.exports import csv_response
from dashboard.rendering import render_page
from dashboard.tables import (
    CLOSED_TRADES,
    OPEN_TRADES,
    PAGE_SIZES,
    account_link,
    build_listing,
)
from dashboard.timezones import DisplayZone, display_zone
from platforms.access.scope import get_visible_platform
from platforms.mirror.filters import ClosedTradeFilter, OpenTradeFilter
from platforms.mirror.selectors import (
    cached_for_filter,
    cached_trade_summary,
    mirror_closed_trades,
    mirror_open_trades,
    mirror_state,
    trade_totals,
    with_account_currency,
)

OPEN_FIELDS = ["ticket", "login", "group", "symbol", "command", "is_pending", "volume_lots",
               "open_time", "open_price", "sl", "tp", "current_price", "swap", "profit",
               "comment"]
CLOSED_FIELDS = ["ticket", "login", "group", "symbol", "command", "volume_lots", "open_time",
                 "open_price", "close_time", "close_price", "sl", "tp", "commission", "swap",
                 "profit", "comment"]


def _open_filter(request, platform):
    return OpenTradeFilter(request.GET or None,
                           queryset=mirror_open_trades(request.user, platform))


def _history_query(request, zone: DisplayZone):
    """History defaults to the last 30 days so that the page never scans all of time."""
    query = request.GET.copy()
    if not query.get("start") and not query.get("end"):
        query["start"] = zone.local(timezone.now() - timedelta(days=30)).date().isoformat()
    return query


def _closed_filter(request, platform):
    """Days of the date range are read on the reader's clock (the labels say which)."""
    zone = display_zone(request, platform)
    return ClosedTradeFilter(_history_query(request, zone), tz=zone.tz, zone_label=zone.label,
                             queryset=mirror_closed_trades(request.user, platform))


@require_GET
@staff_required
def trade_list(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    filterset = _open_filter(request, platform)
    summary = cached_trade_summary(request.user, platform, filterset)
    listing = build_listing(OPEN_TRADES, with_account_currency(filterset.qs), request.GET,
                            OPEN_TRADES.column_names(True), link=account_link,
                            count=summary["totals"]["count"],
                            zone=display_zone(request, platform))
    exposure = summary["exposure"]
    chart = {
        "data": [{"type": "bar", "x": [r["symbol"] for r in exposure],
                  "y": [round(r["net"], 2) for r in exposure], "name": "Net lots"}],
        "layout": {"height": 240, "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
                   "yaxis": {"title": {"text": "net lots"}}},
    }
    context = {"platform": platform, "filter": filterset, "listing": listing,
               "totals": summary["totals"], "exposure": exposure, "chart": chart,
               "query": request.GET.urlencode(), "page_sizes": PAGE_SIZES,
               "state": mirror_state(platform)}
    return render_page(request, "dashboard/trades/trades.html", context, partial="trades-table")


@require_GET
@staff_required
def trade_export(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    trades = OPEN_TRADES.ordered(with_account_currency(_open_filter(request, platform).qs),
                                 request.GET.get("sort"), OPEN_TRADES.column_names(True))
    return csv_response(request, f"open-trades-{platform.pk}", trades, OPEN_FIELDS,
                        labels=OPEN_TRADES.labels, numbers=OPEN_TRADES.export_numbers,
                        zone=display_zone(request, platform))


@require_GET
@staff_required
def history_list(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    filterset = _closed_filter(request, platform)
    totals = cached_for_filter(request.user, platform, filterset, "history_as_of",
                               "history-totals", trade_totals)
    listing = build_listing(CLOSED_TRADES, with_account_currency(filterset.qs), request.GET,
                            CLOSED_TRADES.column_names(True), link=account_link,
                            count=totals["count"], zone=display_zone(request, platform))
    context = {"platform": platform, "filter": filterset, "listing": listing,
               "totals": totals, "query": request.GET.urlencode(),
               "page_sizes": PAGE_SIZES, "state": mirror_state(platform)}
    return render_page(request, "dashboard/trades/history.html", context, partial="history-table")


@require_GET
@staff_required
def history_export(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    trades = CLOSED_TRADES.ordered(with_account_currency(_closed_filter(request, platform).qs),
                                   request.GET.get("sort"), CLOSED_TRADES.column_names(True))
    return csv_response(request, f"closed-trades-{platform.pk}", trades, CLOSED_FIELDS,
                        labels=CLOSED_TRADES.labels, numbers=CLOSED_TRADES.export_numbers,
                        zone=display_zone(request, platform))
