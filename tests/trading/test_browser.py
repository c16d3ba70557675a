"""A finance user deposits through the browser: review, re-auth, live task state, new balance.

Playwright drives Debian's /usr/bin/chromium (never ``playwright install``); a missing browser
fails this test, it does not skip it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from dashboard.numbers import format_number
from platforms.trading.models import TaskState, TradeTask

LOGIN = 100017


@pytest.mark.django_db(transaction=True)
def test_deposit_with_confirmation_and_reauth_turns_confirmed_and_changes_the_balance(
    browser, live_server, clean_sandbox, mt4, finance_user, celery_worker_process, artifacts
):
    before = Decimal(str(clean_sandbox.control("GET", f"/accounts/{LOGIN}").json()["balance"]))
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", "finance1")
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login" not in url)

    page.goto(live_server.url + reverse("dashboard:operation",
                                        args=[mt4.pk, LOGIN, "deposit"]))
    page.fill("#id_amount", "123.45")
    page.fill("#id_comment", "browser wire")
    page.click("#review-button")
    expect(page.locator("#confirmation")).to_be_visible()
    shown = format_number(before + Decimal("123.45"), "money")  # as the page writes money
    expect(page.locator("#balance-after")).to_contain_text(shown)
    page.fill("#reauth input[name=password]", "correct-horse-battery")
    page.click("#confirm-button")

    page.wait_for_url("**/operations/tasks/**")
    expect(page.locator("#task-state-value")).to_have_attribute(
        "data-state", "confirmed", timeout=30_000)
    expect(page.locator("#task-new-balance")).to_have_text(shown)
    page.screenshot(path=artifacts / "deposit-confirmed.png", full_page=True)
    task = TradeTask.objects.get()
    assert task.state == TaskState.CONFIRMED and task.payload["comment"] == "browser wire"
    after = Decimal(str(clean_sandbox.control("GET", f"/accounts/{LOGIN}").json()["balance"]))
    assert after == before + Decimal("123.45")
