"""Symbols (spec, quotes, OHLC chart), groups and online users of a platform."""

from __future__ import annotations

from django.http import Http404
from django.views.decorators.http import require_GET

from dashboard.access import staff_required
from dashboard.rendering import render_page
from dashboard.timezones import display_zone
from platforms.access.scope import can_see_personal_data, get_visible_platform
from platforms.client import ManagerApiError
from platforms.live import reads as live_reads
from platforms.mirror.selectors import mirror_groups, mirror_state, mirror_symbols
from platforms.models import PlatformKind


@require_GET
@staff_required
def symbol_list(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    symbols = list(mirror_symbols(platform))
    quotes, quote_error = live_reads.quotes(platform, [s.symbol for s in symbols])
    rows = [(s, quotes.get(s.symbol)) for s in symbols]
    return render_page(request, "dashboard/market/symbols.html", {
        "platform": platform, "rows": rows, "quote_error": quote_error,
        "state": mirror_state(platform),
    })


@require_GET
@staff_required
def symbol_chart(request, pk: int, symbol: str):
    platform = get_visible_platform(request.user, pk)
    spec = mirror_symbols(platform).filter(symbol=symbol).first()
    if spec is None:
        raise Http404("No such symbol on this platform")
    period = request.GET.get("period", "H1")
    context = {"platform": platform, "spec": spec, "periods": live_reads.CHART_PERIODS,
               "period": period}
    if period not in live_reads.CHART_PERIODS:
        context["error"] = f"Unknown period {period[:10]!r}; choose one of the buttons."
    elif platform.kind != PlatformKind.MT4:
        context["error"] = "Charts come from MT4's ChartRequest; MT5 has no chart operation."
    else:
        try:
            bars = live_reads.ohlc_bars(platform, symbol, period)
        except ManagerApiError as exc:
            context["error"] = str(exc)
        else:
            context["bars"] = bars
            zone = display_zone(request, platform)  # the axis is the reader's clock, named
            context["chart"] = {
                "data": [{"type": "candlestick", "name": symbol,
                          "x": [zone.text(b.at) for b in bars],
                          "open": [b.open for b in bars], "high": [b.high for b in bars],
                          "low": [b.low for b in bars], "close": [b.close for b in bars]}],
                "layout": {"height": 420, "margin": {"l": 60, "r": 10, "t": 10, "b": 40},
                           "xaxis": {"rangeslider": {"visible": False},
                                     "title": {"text": zone.label}}},
            }
    return render_page(request, "dashboard/market/symbol_chart.html", context)


@require_GET
@staff_required
def group_list(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    return render_page(request, "dashboard/market/groups.html", {
        "platform": platform, "groups": mirror_groups(request.user, platform),
        "state": mirror_state(platform),
    })


@require_GET
@staff_required
def online_list(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    context = {"platform": platform, "personal": can_see_personal_data(request.user)}
    if platform.kind != PlatformKind.MT4:
        context["error"] = "MT5's WebAPI has no online-sessions operation."
    else:
        try:
            context["rows"] = live_reads.online_users(request.user, platform)
        except ManagerApiError as exc:
            context["error"] = str(exc)
    return render_page(request, "dashboard/market/online.html", context)
