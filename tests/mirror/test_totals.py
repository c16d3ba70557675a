"""The totals the snapshot runs keep (overview, trades totals, exposure) and the bounded count
of the lists: the same answers as adding up the rows, within the user's group masks."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from platforms.mirror.filters import AccountFilter, OpenTradeFilter
from platforms.mirror.models import MirrorOpenTrade, MirrorState
from platforms.mirror.selectors import (
    _platform_summary_from_rows,
    account_count,
    cached_trade_summary,
    exposure_by_symbol,
    mirror_accounts,
    mirror_open_trades,
    mirror_state,
    platform_summaries,
    platform_summary,
    trade_totals,
)
from platforms.mirror.totals import refresh_totals
from tests.factories import (
    MirrorAccountFactory,
    MirrorOpenTradeFactory,
    StaffUserFactory,
    TradePlatformFactory,
    grant,
)

pytestmark = pytest.mark.django_db
GROUPS = ("real\\usd", "real\\eur", "demo\\usd")


@pytest.fixture
def platform():
    platform = TradePlatformFactory(name="Scale")
    for n in range(30):
        group = GROUPS[n % 3]
        MirrorAccountFactory(platform=platform, login=1000 + n, group=group,
                             currency="EUR" if "eur" in group else "USD", balance=100.0 + n,
                             equity=90.0 + n, margin_state="MarginCall" if n % 7 == 0 else "Ok")
        for k, (symbol, command) in enumerate((("EURUSD", "Buy"), ("XAUUSD", "Sell"),
                                               ("EURUSD", "BuyLimit"))):
            MirrorOpenTradeFactory(platform=platform, login=1000 + n, group=group,
                                   ticket=50000 + 3 * n + k, symbol=symbol, command=command,
                                   volume_lots=0.1 * (n + 1), profit=float(n - 10),
                                   swap=-0.5, is_pending=command == "BuyLimit")
    stamp = timezone.now()
    MirrorState.objects.update_or_create(
        platform=platform, defaults={"accounts_as_of": stamp, "trades_as_of": stamp})
    refresh_totals(platform, stamp)
    return platform


@pytest.fixture(params=["", "real\\*,!real\\eur"], ids=["unmasked", "masked"])
def user(request, platform):
    return grant(StaffUserFactory(), platform, group_masks=request.param, role="dealer")


def _rounded(summary):
    def fix(value):
        if isinstance(value, float):
            return round(value, 6)
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value
    if isinstance(summary, dict):
        summary = {k: v for k, v in summary.items() if k != "state"}
    return fix(summary)


def test_the_overview_card_from_the_totals_equals_adding_up_the_rows(platform, user,
                                                                      django_assert_num_queries):
    with django_assert_num_queries(5):  # masks, state, money, counts, trades: no row read
        from_totals = platform_summary(user, platform)
    from_rows = _platform_summary_from_rows(user, platform, mirror_state(platform))
    assert _rounded(from_totals) == _rounded(from_rows)
    assert from_totals["accounts"] in (30, 10)  # the masked user sees real\usd only


@pytest.mark.parametrize("query", [{}, {"symbol": "eurusd"}, {"pending": "false"},
                                   {"group": "real\\*", "symbol": "XAUUSD"}])
def test_trade_totals_and_exposure_from_the_totals_equal_the_rows(platform, user, query):
    filterset = OpenTradeFilter(query or None, queryset=mirror_open_trades(user, platform))
    summary = cached_trade_summary(user, platform, filterset)
    rows = filterset.qs
    assert _rounded(summary["totals"]) == _rounded(trade_totals(rows))
    assert _rounded(summary["exposure"]) == _rounded(exposure_by_symbol(rows))
    assert summary["totals"]["count"] > 0


def test_totals_are_read_only_while_they_describe_the_mirror(platform, user):
    """A trade written after the totals (a run that failed halfway, a mirror filled before
    them) is counted once the stamps disagree: the rows are read instead."""
    MirrorOpenTradeFactory(platform=platform, login=1000, group="real\\usd", ticket=99999)
    before = platform_summary(user, platform)["open_trades"]
    MirrorState.objects.filter(platform=platform).update(
        trades_as_of=timezone.now() + timedelta(seconds=1))
    assert platform_summary(user, platform)["open_trades"] == before + 1
    assert MirrorOpenTrade.objects.filter(platform=platform, ticket=99999).exists()


def test_account_count_is_exact_from_the_totals_and_bounded_otherwise(platform, settings):
    boss = grant(StaffUserFactory(), platform, role="dealer")
    settings.LIST_COUNT_BOUND = 12

    def count(query):
        rows = mirror_accounts(boss, platform)
        return account_count(boss, platform, AccountFilter(query or None, queryset=rows))

    assert count({}) == (30, False)
    assert count({"group": "real\\*"}) == (20, False)
    assert count({"state": "MarginCall"}) == (5, False)
    assert count({"equity_min": "0"}) == (12, True)  # 30 match: "more than 12"
    assert count({"equity_min": "115"}) == (5, False)  # under the bound: exact


def test_deep_pages_under_a_bounded_count(platform, client, settings):
    settings.LIST_COUNT_BOUND = 20
    client.force_login(grant(StaffUserFactory(), platform, role="dealer"))
    url = reverse("dashboard:accounts", args=[platform.pk])
    first = client.get(url, {"equity_min": "0", "per_page": "10"}).content.decode()
    assert "more than 20 accounts" in first and "Page 1 of 2+" in first
    assert 'rel="next"' in first and 'rel="last"' not in first
    deep = client.get(url, {"equity_min": "0", "per_page": "10", "page": "9"}).content.decode()
    logins = [int(x) for x in re.findall(r'data-live-account="\d+:(\d+)"', deep)]
    assert logins == list(range(1010, 1020))  # clamped to the last counted page, in order
    reverse_sorted = client.get(url, {"equity_min": "0", "per_page": "10",
                                      "sort": "-login"}).content.decode()
    assert re.findall(r'data-live-account="\d+:(\d+)"', reverse_sorted)[0] == "1029"
    exact = client.get(url, {"per_page": "10"}).content.decode()
    assert "30 accounts" in exact and 'rel="last"' in exact


def test_the_overview_reads_every_platform_in_a_fixed_number_of_queries(
        platform, django_assert_max_num_queries):
    second = TradePlatformFactory(name="Scale 2")
    MirrorAccountFactory(platform=second, login=1, group="real\\usd", balance=5.0)
    MirrorOpenTradeFactory(platform=second, login=1, group="real\\usd", ticket=1, profit=2.0)
    stamp = timezone.now()
    MirrorState.objects.create(platform=second, accounts_as_of=stamp, trades_as_of=stamp)
    refresh_totals(second, stamp)
    third = TradePlatformFactory(name="Scale 3")  # never mirrored: added up from its rows
    user = grant(StaffUserFactory(), platform, second, third, group_masks="real\\*,!real\\eur",
                 role="dealer")
    platforms = [platform, second, third]
    with django_assert_max_num_queries(12):
        together = platform_summaries(user, platforms)
    for p in platforms:
        assert _rounded(together[p.pk]) == _rounded(platform_summary(user, p)), p.name
    assert together[second.pk]["accounts"] == 1 and together[third.pk]["accounts"] == 0
