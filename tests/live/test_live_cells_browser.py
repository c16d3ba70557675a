"""Live cells outside the margin monitor: the account card's figures and the symbols' quotes."""

from __future__ import annotations

import re

import httpx
import pytest
from django.utils import timezone

from tests.live.pages import _logged_in_page, _state, _wait

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

#: money as ``dashboard.numbers`` writes it (USD): grouped, two decimals
GROUPED_MONEY = re.compile(r"-?\d{1,3}(,\d{3})*\.\d{2}")


def test_account_card_figures_and_symbol_quotes_update_without_reload(
    live_server_url, session, browser, hubs
):
    from platforms.mirror.models import MirrorSymbol

    cookie, pk = session
    MirrorSymbol.objects.create(platform_id=pk, symbol="EURUSD", digits=5,
                                last_seen_at=timezone.now())
    login = 100003
    page = _logged_in_page(browser, live_server_url, cookie)
    page.goto(f"{live_server_url}/platforms/{pk}/accounts/{login}/")
    _wait(page, lambda: _state(page) == "live", what="live indicator")
    figures = f'[data-live-account="{pk}:{login}"]'
    before = page.inner_text(f'{figures} [data-field="equity"]')

    r = httpx.post(f"{hubs.control_url}/hubs/margin-call", json={"login": login})
    assert r.status_code == 200, r.text
    _wait(page, lambda: page.inner_text(f'{figures} [data-field="equity"]') != before,
          timeout=3, what="equity cell following the margin call")
    _wait(page, lambda: "lt-1" in (page.get_attribute(figures, "class") or ""), timeout=3,
          what="margin-call state on the card")
    # the live values read as the server wrote them: grouped money, a level with its "%"
    for field in ("equity", "margin", "free_margin"):
        text = page.inner_text(f'{figures} [data-field="{field}"]')
        assert GROUPED_MONEY.fullmatch(text), (field, text)
        negative = "neg" in page.get_attribute(f'{figures} [data-field="{field}"]', "class")
        assert negative == text.startswith("-"), (field, text)
    level = page.inner_text(f'{figures} [data-field="margin_level"]')
    assert re.fullmatch(r"\d{1,3}(,\d{3})*\.\d{2} %", level), level

    page.goto(f"{live_server_url}/platforms/{pk}/symbols/")
    _wait(page, lambda: _state(page) == "live", what="live indicator on symbols")
    bid = f'[data-live-symbol="{pk}:EURUSD"] [data-field="bid"]'
    first = page.inner_text(bid)
    for _ in range(20):
        httpx.post(f"{hubs.control_url}/market/tick", json={"count": 3}).raise_for_status()
        page.wait_for_timeout(150)
        if page.inner_text(bid) != first:
            break
    assert page.inner_text(bid) != first, "the bid never moved on the page"
    assert re.fullmatch(r"\d\.\d{5}", first) and re.fullmatch(r"\d\.\d{5}", page.inner_text(bid))


def test_accounts_list_money_stays_grouped_once_live_values_arrive(
    live_server_url, session, browser, hubs
):
    from platforms.connections import client_for
    from platforms.models import TradePlatform
    from tests.factories import MirrorAccountFactory

    cookie, pk = session
    platform = TradePlatform.objects.get(pk=pk)
    users = client_for(platform).mt4.users_request(limit=20).items
    for user in users:  # mirror values the live ones replace (0.5 never comes from the feed)
        MirrorAccountFactory(platform=platform, login=user.login, group=user.group,
                             balance=user.balance, equity=0.5, margin=0.5, free_margin=0.5)
    page = _logged_in_page(browser, live_server_url, cookie)
    page.goto(f"{live_server_url}/platforms/{pk}/accounts/?per_page=25")
    _wait(page, lambda: _state(page) == "live", what="live indicator")
    cells = '#accounts td[data-field="{}"]'.format
    _wait(page, lambda: "0.50" not in page.locator(cells("equity")).all_inner_texts(),
          timeout=5, what="live equity in every row")
    for field in ("balance", "equity", "free_margin"):
        texts = page.locator(cells(field)).all_inner_texts()
        assert len(texts) == len(users)
        assert all(GROUPED_MONEY.fullmatch(t) for t in texts), (field, texts)
        assert any("," in t for t in texts), (field, texts)  # thousands are grouped
