"""The margin monitor in real Chromium: rows turn red and move up live; the indicator follows
the upstream hub going away and coming back."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.live.pages import _logged_in_page, _state, _wait

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _rows(page, pk):
    return page.eval_on_selector_all(
        f'[data-live-monitor="{pk}"] tbody tr',
        "rows => rows.map(r => [r.dataset.liveAccount, +r.dataset.lt])",
    )


def test_margin_call_turns_a_row_red_and_moves_it_up_then_survives_a_hub_outage(
    live_server_url, session, browser, hubs
):
    cookie, pk = session
    page = _logged_in_page(browser, live_server_url, cookie)
    page.goto(f"{live_server_url}/platforms/{pk}/margins/")
    _wait(page, lambda: _state(page) == "live", what="live indicator")

    rows = _rows(page, pk)
    ok_rows = [key for key, lt in rows if lt == 0]
    assert len(ok_rows) >= 5, rows
    key = ok_rows[-1]  # the healthiest account shown: it is at the bottom
    login = int(key.split(":")[1])
    before = [k for k, _ in rows].index(key)

    pushed = time.monotonic()
    r = httpx.post(f"{hubs.control_url}/hubs/margin-call", json={"login": login})
    assert r.status_code == 200, r.text
    selector = f'[data-live-account="{key}"]'
    seen = _wait(
        page,
        lambda: "lt-1" in (page.get_attribute(selector, "class") or ""),
        timeout=1.0,
        what="row turning red",
    )
    assert seen - pushed < 1.0
    page.wait_for_timeout(50)
    rows = _rows(page, pk)
    after = [k for k, _ in rows].index(key)
    band = sum(1 for _, lt in rows if lt > 0)
    assert after < before and after < band, (before, after, band)
    assert page.eval_on_selector(selector, "el => getComputedStyle(el).backgroundColor") != (
        "rgba(0, 0, 0, 0)"
    )

    # the upstream hub goes away: the page says so and keeps the values greyed
    hubs.hubs("POST", "/negotiate", json={"refuse": True})
    hubs.hubs("POST", "/drop")
    _wait(page, lambda: _state(page) == "degraded", timeout=5, what="degraded indicator")
    assert page.evaluate("document.body.classList.contains('stale')")
    assert page.is_visible(selector)
    hubs.hubs("DELETE", "/faults")
    _wait(page, lambda: _state(page) == "live", timeout=10, what="recovered indicator")
    assert not page.evaluate("document.body.classList.contains('stale')")
