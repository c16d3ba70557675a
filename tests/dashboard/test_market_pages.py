"""Symbols with live quotes and OHLC charts, groups with account counts, who is online."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from platforms.connections import client_for
from platforms.mirror.models import MirrorGroup, MirrorSymbol
from tests.factories import MirrorAccountFactory


def _symbol(platform, name="EURUSD", digits=5):
    return MirrorSymbol.objects.create(platform=platform, symbol=name, digits=digits,
                                       contract_size=100000, last_seen_at=timezone.now())


def _cell(page: str, symbol: str, field: str) -> str:
    row = page[page.index(f':{symbol}"'):]
    return re.search(rf'data-field="{field}">([^<]*)<', row).group(1)


def test_symbols_show_spec_and_live_bid_ask_with_the_symbols_digits(dealer_client,
                                                                     sandbox_platforms):
    mt4, _ = sandbox_platforms
    _symbol(mt4, "GBPUSD", digits=5)
    _symbol(mt4, "US500", digits=1)
    page = dealer_client.get(reverse("dashboard:symbols", args=[mt4.pk])).content.decode()
    assert f'data-live-symbol="{mt4.pk}:GBPUSD"' in page
    for symbol, shape in (("GBPUSD", r"\d\.\d{5}"), ("US500", r"\d{4}\.\d")):
        live = client_for(mt4).mt4.symbol_info_get(symbol)
        bid, ask = _cell(page, symbol, "bid"), _cell(page, symbol, "ask")
        assert re.fullmatch(shape, bid) and re.fullmatch(shape, ask), (symbol, bid, ask)
        assert float(bid) == pytest.approx(live.bid, abs=0.1)  # may tick between reads


@pytest.mark.parametrize("period", ["M5", "H1", "D1"])
def test_symbol_chart_draws_candles_from_chart_request(dealer_client, sandbox_platforms, period):
    mt4, _ = sandbox_platforms
    _symbol(mt4)
    response = dealer_client.get(reverse("dashboard:symbol", args=[mt4.pk, "EURUSD"]),
                                 {"period": period})
    assert response.status_code == 200
    assert response.context["bars"], "ChartRequest returned bars"
    assert '"type": "candlestick"' in response.content.decode()


def test_symbol_chart_bad_period_and_unknown_symbol(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    _symbol(mt4)
    bad = dealer_client.get(reverse("dashboard:symbol", args=[mt4.pk, "EURUSD"]),
                            {"period": "<script>"})
    assert bad.status_code == 200 and "Unknown period" in bad.content.decode()
    assert "<script>" not in bad.content.decode().split("Unknown period")[1][:40]
    missing = dealer_client.get(reverse("dashboard:symbol", args=[mt4.pk, "NOPE"]))
    assert missing.status_code == 404


def test_groups_list_levels_and_account_counts(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    MirrorGroup.objects.create(platform=mt4, name="real\\usd", currency="USD", margin_call=100,
                               stop_out=50, stop_out_mode="Percent", last_seen_at=timezone.now())
    for login in (1, 2, 3):
        MirrorAccountFactory(platform=mt4, login=login, group="real\\usd")
    response = dealer_client.get(reverse("dashboard:groups", args=[mt4.pk]))
    group = response.context["groups"][0]
    assert (group.name, group.accounts) == ("real\\usd", 3)
    assert "100 %" in response.content.decode()


def test_online_lists_the_sandbox_sessions(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    sessions = list(client_for(mt4).mt4.iter_online())
    assert sessions, "the sandbox seeds online sessions"
    response = dealer_client.get(reverse("dashboard:online", args=[mt4.pk]))
    assert [r.login for r in response.context["rows"]] == sorted(s.login for s in sessions)


def test_mt5_pages_explain_what_mt5_lacks(dealer_client, sandbox_platforms):
    _, mt5 = sandbox_platforms
    page = dealer_client.get(reverse("dashboard:online", args=[mt5.pk])).content.decode()
    assert "MT5" in page and "no online-sessions operation" in page
