"""A grant revoked while the margin monitor is open: within seconds the page says so."""

from __future__ import annotations

import pytest

from tests.live.pages import _logged_in_page, _state, _wait

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_the_page_says_access_was_revoked(live_server_url, client, browser, settings):
    from platforms.access.models import PlatformAccess
    from platforms.models import TradePlatform
    from tests.factories import StaffUserFactory, grant

    settings.REALTIME_SCOPE_RECHECK_SECONDS = 0.5
    mt4 = TradePlatform.objects.get(name="Sandbox MT4")
    user = grant(StaffUserFactory(username="rt-revoked"), mt4, role="dealer")
    client.force_login(user)
    page = _logged_in_page(browser, live_server_url, client.cookies["sessionid"].value)
    page.goto(f"{live_server_url}/platforms/{mt4.pk}/margins/")
    _wait(page, lambda: _state(page) == "live", what="live indicator")

    PlatformAccess.objects.filter(user=user).delete()
    _wait(page, lambda: _state(page) == "revoked", timeout=5, what="revoked indicator")
    assert page.inner_text("[data-live-status]").startswith("Access revoked")
    assert page.evaluate("document.body.classList.contains('stale')")
    page.wait_for_timeout(1500)  # it does not reconnect (it would only be refused again)
    assert _state(page) == "revoked"
