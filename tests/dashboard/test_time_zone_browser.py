"""The top bar's time-zone picker in real Chromium: server time → UTC → the browser's own zone,
each choice kept for the user and shown in the list's header and cells."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.factories import MirrorClosedTradeFactory, StaffUserFactory, TradePlatformFactory, grant


@pytest.mark.django_db(transaction=True)
def test_picker_switches_every_time_on_the_page(browser, live_server, artifacts):
    platform = TradePlatformFactory(name="EET picker", time_zone_override=120,
                                    time_zone_applied=120)
    MirrorClosedTradeFactory(platform=platform, ticket=501, login=1,
                             close_time=datetime(2026, 5, 4, 21, 30, tzinfo=UTC))
    dealer = grant(StaffUserFactory(username="tz-browser"), platform, role="dealer")
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  timezone_id="Asia/Tokyo")
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", dealer.username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    history = f"{live_server.url}/platforms/{platform.pk}/history/?start=2026-05-01"
    page.goto(history)
    header = page.locator("#closed-trades thead th", has_text="Close time")
    row = page.locator('#closed-trades tr[data-closed-trade="501"]')
    assert header.inner_text().strip() == "Close time · server time (UTC+2)"
    assert "2026-05-04 23:30:00" in row.inner_text()

    page.select_option("#tz-picker select[name=view]", "utc")
    page.wait_for_function("() => document.querySelector('#tz-picker select').value === 'utc'"
                           " && document.readyState === 'complete'")
    page.wait_for_selector("#closed-trades thead th >> text=Close time · UTC")
    assert "2026-05-04 21:30:00" in row.inner_text()

    page.select_option("#tz-picker select[name=view]", "local")  # the browser's zone fills in
    page.wait_for_selector("#closed-trades thead th >> text=Close time · Asia/Tokyo")
    assert "2026-05-05 06:30:00" in row.inner_text()
    assert page.input_value("#tz-picker input[name=zone]") == "Asia/Tokyo"
    page.screenshot(path=artifacts / "history-in-tokyo-time.png", full_page=True)
    context.close()
