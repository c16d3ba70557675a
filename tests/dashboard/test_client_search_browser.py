"""The top bar's client search in real Chromium, by keyboard only: "/" focuses it, typing lists
matches from every platform, ArrowDown chooses one and Enter opens its account card."""

from __future__ import annotations

import pytest

from tests.factories import MirrorAccountFactory
from tests.support.staff import make_staff


@pytest.mark.django_db(transaction=True)
def test_slash_type_arrow_enter_opens_the_account_card(browser, live_server, sandbox_platforms,
                                                       artifacts):
    mt4, mt5 = sandbox_platforms
    from platforms.connections import client_for

    users = client_for(mt4).mt4.users_request(limit=3).items
    for user in users:  # real sandbox accounts, so the card's live read finds them
        MirrorAccountFactory(platform=mt4, login=user.login, name=user.name, group=user.group)
    MirrorAccountFactory(platform=mt5, login=users[1].login, name="Same login, other platform")
    target = users[1]
    support = make_staff(mt4, mt5, role="support", username="browser-support")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", support.username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "client-search-input"
    page.keyboard.type(str(target.login))
    page.wait_for_selector("#client-search-results [data-search-hit]")
    groups = page.locator("#client-search-results section h3").all_inner_texts()
    assert [g.split()[0] for g in groups] == sorted([mt4.name.split()[0], mt5.name.split()[0]])
    page.screenshot(path=artifacts / "dropdown.png")

    hits = page.locator("#client-search-results [data-search-hit]")
    index = next(i for i in range(hits.count())
                 if f"/platforms/{mt4.pk}/accounts/{target.login}/"
                 in hits.nth(i).get_attribute("href"))
    for _ in range(index + 1):
        page.keyboard.press("ArrowDown")
    assert hits.nth(index).get_attribute("aria-selected") == "true"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/platforms/{mt4.pk}/accounts/{target.login}/")
    page.wait_for_selector("#open-trades, #account-tab .empty")
