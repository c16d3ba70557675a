"""The net-exposure page in real Chromium over the live socket: a client trade on the platform
and a hedge fill at the LP each reach the open page within 1 s, without a reload.

The real ASGI app runs with its realtime bridges in process (the platform's hub bridge and one
``/events`` listener per coverage account, started by the first socket); the sandbox's MT4
platform is mirrored by a real snapshot run first, so the client trade reaches the page only
through the stream's trades added to the mirror's (nothing refreshes the mirror here), and the
fill only through the listener (no reporting worker runs: the page's own poll requests go
nowhere). Each bound is from the moment the change was submitted, so it includes the
sandbox's own work (for the hedge: its 0.2 s execution delay, added to the bound).
"""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.db.models import F

from platforms.client import records as r
from platforms.connections import client_for
from platforms.coverage import stream_trades
from platforms.coverage.services import poll_coverage_account, register_sandbox_coverage_accounts
from platforms.mirror.models import MirrorAccount, SnapshotKind, SnapshotRun, SnapshotTrigger
from platforms.mirror.runs import execute_run
from platforms.services import register_sandbox_platforms
from tests.live.pages import _logged_in_page, _state, _wait
from tests.sandbox_process import forget_connections
from tests.support.asgi_server import serve_dashboard
from tests.support.staff import make_staff

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

BOUND_S = 1.0
EXEC_DELAY_S = 0.2  # the lp fixture's --bridge-exec-delay


@pytest.fixture
def desk(lp, wire, settings):
    """MT4 mirrored, the five coverage accounts covering it and polled once, a risk user."""
    from channels.layers import channel_layers

    settings.REALTIME_BRIDGE = "in-process"
    settings.REALTIME_BRIDGE_FLUSH_SECONDS = 0.05
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    forget_connections(lp)
    mt4, _mt5 = register_sandbox_platforms(lp)
    cache.delete(stream_trades.cache_key(mt4.pk))  # nothing of an earlier platform of this pk
    run = SnapshotRun.objects.create(platform=mt4, kind=SnapshotKind.FULL,
                                     trigger=SnapshotTrigger.SCHEDULE)
    assert execute_run(run.pk).state == "succeeded", run.error
    accounts = register_sandbox_coverage_accounts(lp, [mt4])
    for account in accounts:
        poll_coverage_account(account)
    user = make_staff(mt4, role="risk", username="risk-browser")
    # the richest client account trades (the sandbox's accounts hold little free margin)
    trader = (MirrorAccount.objects.filter(platform=mt4)
              .order_by(F("free_margin").desc(nulls_last=True)).first())
    assert trader is not None
    with serve_dashboard() as url:
        yield mt4, user, trader.login, url
    channel_layers.backends.clear()
    forget_connections(lp)


def _row(page, symbol: str, field: str) -> float | None:
    row = page.query_selector(f'#net-exposure tr[data-symbol="{symbol}"]')
    return None if row is None else float(row.get_attribute(f"data-{field}"))


def _open_page(browser, client, user, url, mt4):
    client.force_login(user)
    page = _logged_in_page(browser, url, client.cookies["sessionid"].value)
    page.goto(f"{url}/platforms/{mt4.pk}/exposure/")
    _wait(page, lambda: _state(page) == "live", what="live indicator")
    # the first socket starts the in-process bridges: wait until the platform's hub is streaming
    # (in production `manage.py stream` runs all along)
    _wait(page, lambda: page.evaluate(f"!!(window.live && window.live.upstream[{mt4.pk}])"),
          timeout=20, what="upstream hub connected")
    return page


def _until_changed(page, symbol, field, expected, started, bound, artifacts, name) -> float:
    deadline = started + bound
    while (_row(page, symbol, field) or 0.0) != pytest.approx(expected):
        if time.monotonic() > deadline:
            page.screenshot(path=str(artifacts / f"{name}.png"))
            raise AssertionError(f"{symbol} {field} is {_row(page, symbol, field)}, not "
                                 f"{expected}, {bound} s after the change")
        page.wait_for_timeout(20)
    return time.monotonic() - started


def _client_buys_a_tenth_of_eurusd(manager, login: int) -> None:
    """A client's 0.10-lot EURUSD buy, opened on the platform through the manager API."""
    manager.mt4.trade_transaction(r.MT4TradeTransaction(
        trade_transaction_type="BrOpen", trade_command="Buy", order_by=login, symbol="EURUSD",
        volume=10))


def test_a_client_trade_reaches_the_open_page_within_a_second(desk, client, browser, artifacts):
    mt4, user, login, url = desk
    page = _open_page(browser, client, user, url, mt4)
    before = _row(page, "EURUSD", "client-net") or 0.0
    manager = client_for(mt4)
    started = time.monotonic()
    _client_buys_a_tenth_of_eurusd(manager, login)
    seen = _until_changed(page, "EURUSD", "client-net", round(before + 0.10, 2), started,
                          BOUND_S, artifacts, "client-trade")
    print(f"client trade on the page after {seen * 1000:.0f} ms")
    assert page.inner_text("[data-live-status]") == "Live"  # the socket, not the fallback poll
    page.screenshot(path=str(artifacts / "client-trade.png"))


def test_a_hedge_fill_reaches_the_open_page_within_a_second(desk, wire, client, browser,
                                                            artifacts):
    mt4, user, _login, url = desk
    page = _open_page(browser, client, user, url, mt4)
    # ... and every coverage account's /events listener has its socket open
    _wait(page, lambda: wire.control("GET", "").json().get("sockets", 0) >= 5, timeout=20,
          what="coverage /events sockets")
    before = _row(page, "AUDUSD", "coverage-net") or 0.0
    session = wire.open(900005)
    started = time.monotonic()
    answer = wire.write("POST", "/orders", session, {"symbol": "AUDUSD", "type": "BUY",
                                                     "volume": 1.25, "sl": 0, "tp": 0,
                                                     "comment": "browser hedge"})
    assert answer.status_code == 202, answer.text
    seen = _until_changed(page, "AUDUSD", "coverage-net", round(before + 1.25, 2), started,
                          BOUND_S + EXEC_DELAY_S, artifacts, "hedge-fill")
    print(f"hedge fill on the page after {seen * 1000:.0f} ms (incl. the 200 ms execution)")
    assert "s old" in page.inner_text("#coverage-as-of")
    page.screenshot(path=str(artifacts / "hedge-fill.png"))


def test_a_trade_announced_while_the_table_is_re_reading_still_reaches_it(desk, client, browser,
                                                                          artifacts):
    """A nudge that arrives while a re-read is in flight is queued behind it and served.

    The first re-read is held in the browser (answered later with the figures from before the
    trade); the trade's nudge arrives meanwhile. Once the held answer is swapped in, the queued
    re-read must bring the trade, well before the 15 s poll would.
    """
    mt4, user, login, url = desk
    page = _open_page(browser, client, user, url, mt4)
    before = _row(page, "EURUSD", "client-net") or 0.0
    stale = client.get(f"/platforms/{mt4.pk}/exposure/", HTTP_HX_REQUEST="true").content
    held: list = []

    def hold_the_first(route):
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route(lambda address: address.rstrip("/").endswith(f"/platforms/{mt4.pk}/exposure"),
               hold_the_first)
    page.evaluate("""() => {
        window.nudges = 0;
        const table = document.querySelector('[data-live-exposure]');
        table.addEventListener('live-exposure', () => window.nudges++);
        table.dispatchEvent(new CustomEvent('live-exposure', {detail: {platforms: []}}));
    }""")
    _wait(page, lambda: bool(held), what="the first re-read held")
    _client_buys_a_tenth_of_eurusd(client_for(mt4), login)
    _wait(page, lambda: page.evaluate("window.nudges") >= 2, what="the trade's nudge")
    started = time.monotonic()
    held[0].fulfill(status=200, content_type="text/html; charset=utf-8", body=stale)
    seen = _until_changed(page, "EURUSD", "client-net", round(before + 0.10, 2), started,
                          3.0, artifacts, "queued-nudge")
    print(f"queued re-read on the page {seen * 1000:.0f} ms after the held one was answered")
