"""The account card: profile and figures read live, tabs loaded on demand."""

from __future__ import annotations

from django.http import Http404, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from dashboard.access import staff_required
from dashboard.exports import csv_response
from dashboard.forms import DateRangeForm
from dashboard.listing import chosen_columns, save_columns
from dashboard.rendering import render_page
from dashboard.tables import ACCOUNTS, PAGE_SIZES, account_link, build_listing, margin_css
from dashboard.timezones import display_zone
from platforms.access.actions import action
from platforms.access.scope import can_see_personal_data, get_visible_platform
from platforms.client import ManagerApiError
from platforms.connections import client_for
from platforms.live import reads as live_reads
from platforms.live.reads import PlatformUnavailable
from platforms.mirror.filters import AccountFilter
from platforms.mirror.selectors import account_count, mirror_accounts, mirror_state
from platforms.models import PlatformKind
from platforms.server.selectors import timed_journal, visible_journal
from platforms.timezones import utc_to_server
from platforms.trading.kinds import account_actions
from platforms.trading.selectors import visible_events

TABS = ["open", "pending", "history", "money", "daily", "journal", "audit"]
TEMPLATE = "dashboard/accounts/account_card.html"


def _card_context(request, pk: int, login: int, *, with_open_trades: bool = False) -> dict:
    platform = get_visible_platform(request.user, pk)
    context = {"platform": platform, "login": login,
               "personal": can_see_personal_data(request.user),
               "actions": account_actions(request.user, platform.kind),
               "trade_actions": (platform.kind == PlatformKind.MT4
                                 and request.user.has_perm("platforms.operate_trades"))}
    try:
        if with_open_trades:
            context["account"], context["trades"] = live_reads.account_with_open_trades(
                request.user, platform, login)
        else:
            context["account"] = live_reads.account_view(request.user, platform, login)
    except PlatformUnavailable as exc:
        context["unavailable"] = str(exc)
    return context


@require_GET
@staff_required
def account_card(request, pk: int, login: int):
    context = _card_context(request, pk, login)
    tab = request.GET.get("tab", "open")
    context.update(tabs=TABS, tab=tab if tab in TABS else "open", query=request.GET.urlencode())
    return render_page(request, TEMPLATE, context)


@require_GET
@staff_required
def account_tab(request, pk: int, login: int, tab: str):
    if tab not in TABS:
        raise Http404("No such tab")
    context = _card_context(request, pk, login, with_open_trades=tab in ("open", "pending"))
    account = context.get("account")
    if account is None:
        return render_page(request, TEMPLATE, context, partial="unavailable")
    platform = context["platform"]
    context["tab"] = tab
    if tab in ("open", "pending"):
        trades = context["trades"]
        wanted = tab == "pending"
        context["rows"] = [r for r in trades.rows if r.is_pending == wanted]
        return render_page(request, TEMPLATE, context, partial="trades-tab")
    if tab == "audit":
        context["events"] = list(visible_events(request.user,
                                                live_reads.account_audit(platform, login)))
        return render_page(request, TEMPLATE, context, partial="audit-tab")
    dates = DateRangeForm(request.GET, default_days=365 if tab == "money" else 90)
    context["dates"] = dates
    if not dates.is_valid():
        return render_page(request, TEMPLATE, context, partial="range-error")
    zone = display_zone(request, platform)
    start, end = dates.bounds(zone.tz)  # days on the reader's clock (the form says which)
    context["range"] = dates.cleaned_data
    if tab in ("history", "money"):
        history = live_reads.closed_trades(platform, login, start, end)
        wanted_money = tab == "money"
        context["trades"] = history
        context["rows"] = [r for r in history.rows if r.is_money == wanted_money]
        context["totals"] = {
            "profit": sum(r.profit for r in context["rows"]),
            "commission": sum(r.commission for r in context["rows"]),
            "swap": sum(r.swap for r in context["rows"]),
        }
        if tab == "history" and history.rows:
            curve = live_reads.balance_curve(history.rows, account.balance, start, end)
            context["chart"] = {
                "data": [{"x": [zone.text(t) for t, _ in curve], "y": [b for _, b in curve],
                          "type": "scatter", "mode": "lines", "name": "Balance",
                          "line": {"shape": "hv"}}],
                "layout": {"height": 260, "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
                           "xaxis": {"title": {"text": zone.label}}},
            }
        return render_page(request, TEMPLATE, context, partial="history-tab")
    if platform.kind != PlatformKind.MT4:
        context["error"] = "Daily reports and the server journal exist on MT4 only."
        return render_page(request, TEMPLATE, context, partial="live-error")
    client = client_for(platform)
    try:
        if tab == "daily":
            context["reports"] = sorted(
                client.mt4.daily_reports_request(start, end, [login]), key=lambda d: d.ctm
            )
            return render_page(request, TEMPLATE, context, partial="daily-tab")
        minutes = platform.utc_offset_minutes  # the server reads the range on its own clock
        lines = client.mt4.journal_request(utc_to_server(start, minutes),
                                           utc_to_server(end, minutes), filter=str(login))
        context["lines"] = timed_journal(visible_journal(request.user, lines), minutes)
        return render_page(request, TEMPLATE, context, partial="journal-tab")
    except ManagerApiError as exc:
        context["error"] = str(exc)
        return render_page(request, TEMPLATE, context, partial="live-error")


def _account_filter(request, platform) -> AccountFilter:
    return AccountFilter(request.GET or None, personal=can_see_personal_data(request.user),
                         queryset=mirror_accounts(request.user, platform))


def _account_columns(request) -> tuple[list[str], list[str]]:
    """(every column this user may choose, the ones they chose)."""
    available = ACCOUNTS.column_names(personal=can_see_personal_data(request.user))
    return available, chosen_columns(request.user, ACCOUNTS.name, available)


@require_GET
@staff_required
def account_list(request, pk: int):
    """The mirrored accounts: search, filters, sort on every column; htmx swaps the table only."""
    platform = get_visible_platform(request.user, pk)
    filterset = _account_filter(request, platform)
    available, shown = _account_columns(request)
    count = account_count(request.user, platform, filterset)
    listing = build_listing(ACCOUNTS, filterset.qs, request.GET, shown, link=account_link,
                            css=margin_css, count=count, zone=display_zone(request, platform))
    context = {"platform": platform, "filter": filterset, "listing": listing,
               "available": [(name, ACCOUNTS.labels[name]) for name in available],
               "shown": shown, "query": request.GET.urlencode(),
               "page_sizes": PAGE_SIZES,
               "state": mirror_state(platform)}
    return render_page(request, "dashboard/accounts/accounts.html", context,
                       partial="accounts-table")


@require_POST
@action("view_tradeplatform", label="save one's own column choice (accounts list)")
def account_columns(request, pk: int):
    """Remember which columns this user wants in the accounts list."""
    platform = get_visible_platform(request.user, pk)
    available, _ = _account_columns(request)
    columns = request.POST.getlist("columns")
    if any(c not in available for c in columns):  # not echoed: a name is what the user typed
        return HttpResponseBadRequest("Unknown column names; nothing was saved.")
    save_columns(request.user, ACCOUNTS.name, columns, available)
    url = reverse("dashboard:accounts", args=[platform.pk])
    query = request.POST.get("query", "")
    return HttpResponseRedirect(f"{url}?{query}" if query else url)


@require_GET
@staff_required
def account_export(request, pk: int):
    """The accounts list with the current filters and sort, as a streamed CSV."""
    platform = get_visible_platform(request.user, pk)
    _, shown = _account_columns(request)
    ordered = ACCOUNTS.ordered(_account_filter(request, platform).qs, request.GET.get("sort"),
                               shown)
    fields = ["login", *[c for c in shown if c != "login"]]
    return csv_response(request, f"accounts-{platform.pk}", ordered, fields,
                        labels=ACCOUNTS.labels, numbers=ACCOUNTS.export_numbers,
                        zone=display_zone(request, platform))
