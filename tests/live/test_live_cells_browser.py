"""Live cells outside the margin monitor: the account card's figures and the symbols' quotes."""

from __future__ import annotations

import httpx
import pytest
from django.utils import timezone

from tests.live.pages import _logged_in_page, _state, _wait

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


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
