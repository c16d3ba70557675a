"""The net-exposure page in real Chromium, with a real Celery worker on the ``reporting`` queue
polling the bridge: a hedge fill at the LP reaches the open page without a reload.

Interim (stated in docs/coverage.md): the socket path waits for the live rewrite, so the page
refreshes by htmx polling (every 2 s) and a page read that finds figures older than 2 s queues
a poll. A fill therefore shows within 2 s (next refresh) + 2 s (staleness) + one poll, not
within the 1 s the socket path aims at; the bound asserted here is that interim's, 6 s.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from platforms.coverage.services import poll_coverage_account, register_sandbox_coverage_accounts
from platforms.services import register_sandbox_platforms
from tests.asgi_server import serve_dashboard
from tests.factories import grant
from tests.sandbox_process import forget_connections
from tests.workers import CeleryWorker, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

INTERIM_BOUND_S = 6.0


@pytest.fixture
def reporting_worker(settings, celery_broker, tmp_path):
    """A worker on the ``reporting`` queue sharing this process's cache (where polls land)."""
    env = worker_env(celery_broker)
    if not settings.REDIS_URL:  # file cache: point this process at the worker's folder
        settings.CACHES = {"default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": f"{env['DASHBOARD_VAR_DIR']}/cache"}}
    worker = CeleryWorker(env, tmp_path / "worker.log", f"exposure-{time.monotonic_ns()}",
                          queues="reporting")
    yield worker
    worker.stop()


@pytest.fixture
def server_url(settings):
    settings.REALTIME_BRIDGE = "external"  # this page opens no socket; start no hub bridge
    with serve_dashboard() as url:
        yield url


def _net(page, symbol: str) -> float | None:
    row = page.query_selector(f'#net-exposure tr[data-symbol="{symbol}"]')
    return None if row is None else float(row.get_attribute("data-coverage-net"))


def test_a_hedge_fill_reaches_the_open_page_through_the_reporting_worker(
        lp, wire, reporting_worker, server_url, client, browser, artifacts):
    forget_connections(lp)
    mt4, _mt5 = register_sandbox_platforms(lp)
    accounts = register_sandbox_coverage_accounts(lp, [mt4])
    for account in accounts:
        poll_coverage_account(account)
    user = get_user_model().objects.create_user("risk-browser", password="pw-123456",
                                                is_staff=True)
    grant(user, mt4, role="risk")
    client.force_login(user)
    cookie = client.cookies["sessionid"].value

    context = browser.new_context()
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": server_url}])
    page = context.new_page()
    page.goto(f"{server_url}/platforms/{mt4.pk}/exposure/")
    assert page.is_visible("#coverage-accounts")
    before = _net(page, "AUDUSD") or 0.0

    session = wire.open(900005)
    answer = wire.write("POST", "/orders", session, {"symbol": "AUDUSD", "type": "buy",
                                                     "volume": 1.25, "sl": 0, "tp": 0,
                                                     "comment": "browser hedge"})
    assert answer.status_code == 202, answer.text
    placed = time.monotonic()
    deadline = placed + INTERIM_BOUND_S
    while (_net(page, "AUDUSD") or 0.0) != pytest.approx(before + 1.25):
        if time.monotonic() > deadline:
            page.screenshot(path=str(artifacts / "exposure.png"))
            raise AssertionError(f"hedge not on the page within {INTERIM_BOUND_S}s "
                                 f"(worker log: {reporting_worker.log_path.read_text()[-2000:]})")
        page.wait_for_timeout(50)
    seen = time.monotonic() - placed
    print(f"hedge fill on the page after {seen:.2f} s")
    assert seen < INTERIM_BOUND_S
    assert "s old" in page.inner_text("#coverage-as-of")
    page.screenshot(path=str(artifacts / "exposure.png"))
    context.close()
    forget_connections(lp)
