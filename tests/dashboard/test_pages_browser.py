"""A dealer's morning in real Chromium: log in, filter, sort, open a card, switch tabs, export."""

from __future__ import annotations

import csv
import io

import pytest

from tests.factories import MirrorAccountFactory, StaffUserFactory, grant


@pytest.fixture
def mirrored(sandbox_platforms):
    mt4, _ = sandbox_platforms
    from platforms.connections import client_for

    # Mirror rows for real sandbox accounts, so the card's live read finds them too.
    users = client_for(mt4).mt4.users_request(limit=40).items
    for n, user in enumerate(users):
        MirrorAccountFactory(platform=mt4, login=user.login, name=user.name, group=user.group,
                             margin_level=50.0 + n * 25, equity=1000 + n)
    return mt4, users


@pytest.mark.django_db(transaction=True)
def test_dealer_filters_sorts_opens_a_card_and_exports(browser, live_server, mirrored,
                                                       artifacts):
    mt4, users = mirrored
    dealer = grant(StaffUserFactory(username="browser-dealer"), mt4, role="dealer")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", dealer.username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/platforms/{mt4.pk}/accounts/")
    assert page.locator("#accounts tbody tr").count() == 40
    group = users[0].group
    page.fill("input[name=group]", group)
    page.press("input[name=group]", "Enter")
    expected = sorted(u.login for u in users if u.group == group)
    page.wait_for_function(
        "n => document.querySelectorAll('#accounts tbody tr').length === n", arg=len(expected))
    assert f"group={group}".replace("\\", "%5C") in page.url  # the filter is in the URL
    page.screenshot(path=artifacts / "filtered.png", full_page=True)

    page.click("#accounts thead th >> text=Margin level")
    page.wait_for_url("**sort=margin_level**")
    levels = [float(v.replace(",", "").removesuffix(" %")) for v in
              page.locator('#accounts tbody td[data-field="margin_level"]').all_inner_texts()]
    assert levels == sorted(levels) and len(levels) == len(expected)

    with page.expect_download() as download:
        page.click("text=Export CSV")
    rows = list(csv.reader(io.StringIO(download.value.path().read_text())))
    assert sorted(int(r[0]) for r in rows[1:]) == expected

    page.click(f"#accounts tbody a >> text={expected[0]}")
    page.wait_for_url(f"**/accounts/{expected[0]}/")
    page.wait_for_selector("#open-trades, #account-tab .empty")
    page.click("#tab-history")
    page.wait_for_selector("#account-tab form.range")
    assert "tab=history" in page.url
    page.click("#tab-audit")
    page.wait_for_selector("#account-tab .empty, #audit-events")
    page.screenshot(path=artifacts / "account-card.png", full_page=True)
