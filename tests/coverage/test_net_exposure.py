"""The net-exposure page: clients' net (mirror) minus coverage (bridge polls), checked against
figures summed here from the sandbox's own answers over HTTP; its scope (role and platform
grant) on the page and its CSV; the polling reads and their age."""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict

import pytest

from platforms.coverage.models import CoverageAccount
from platforms.coverage.selectors import (
    CoverageSnapshot,
    coverage_snapshot,
    net_exposure,
)
from platforms.coverage.services import poll_coverage_account, register_sandbox_coverage_accounts
from platforms.mirror.models import SnapshotKind, SnapshotRun, SnapshotTrigger
from platforms.mirror.runs import execute_run
from platforms.services import register_sandbox_platforms
from tests.sandbox_process import forget_connections
from tests.support.polling import wait_until
from tests.support.staff import make_staff

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

#: Hedges placed on the LP for the test: (login, symbol, side, lots).
HEDGES = [(900001, "EURUSD", "BUY", 1.5), (900002, "EURUSD", "SELL", 0.7),
          (900003, "GBPUSD", "BUY", 0.3), (900004, "USDJPY", "SELL", 2.0)]


@pytest.fixture
def market(lp, wire):
    """The LP sandbox's MT4 platform mirrored, its five coverage accounts registered (covering
    MT4 only) and polled, with the hedges above executed on the bridge."""
    forget_connections(lp)
    mt4, mt5 = register_sandbox_platforms(lp)
    run = SnapshotRun.objects.create(platform=mt4, kind=SnapshotKind.FULL,
                                     trigger=SnapshotTrigger.SCHEDULE)
    assert execute_run(run.pk).state == "succeeded", run.error
    accounts = register_sandbox_coverage_accounts(lp, [mt4])
    for login, symbol, side, lots in HEDGES:
        session = wire.open(login)
        answer = wire.write("POST", "/orders", session,
                            {"symbol": symbol, "type": side, "volume": lots, "sl": 0, "tp": 0,
                             "comment": "exposure test"})
        assert answer.status_code == 202, answer.text
    wait_until(lambda: all(
        any(p["comment"] == "exposure test" for p in wire.state(login)["positions"])
        for login, *_ in HEDGES), "hedges executed")
    for account in accounts:
        poll_coverage_account(account)
    yield mt4, mt5, accounts
    forget_connections(lp)


def _expected(lp, wire, mt4) -> dict[str, float]:
    """Clients' net lots per symbol from the sandbox's manager API, minus the bridge's
    positions read over raw HTTP: summed here, independently of the selectors."""
    from platforms.connections import client_for

    expected: dict[str, float] = defaultdict(float)
    for trade in client_for(mt4).mt4.iter_trades_get():
        state = trade.trade_record_state or "OpenNormal"
        if state in ("OpenNormal", "OpenRemand", "OpenRestored") and trade.trade_command in (
                "Buy", "Sell"):
            expected[trade.symbol] += trade.volume_lots * (1 if trade.trade_command == "Buy"
                                                           else -1)
    for login in lp.bridge_logins:
        session = wire.open(login)
        for position in wire.get("/positions", session).json()["positions"]:
            expected[position["symbol"]] -= position["volume"] * (
                1 if position["type"] == "BUY" else -1)
    return dict(expected)


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


def test_net_exposure_is_clients_net_minus_coverage_summed_from_the_sandbox(
        market, lp, wire, client):
    mt4, _mt5, accounts = market
    client.force_login(make_staff(mt4, role="risk", username="risk1"))
    expected = _expected(lp, wire, mt4)
    assert any(abs(v) > 0.001 for v in expected.values())

    rows = _csv(client.get(f"/platforms/{mt4.pk}/exposure/export.csv", {"raw": "1"}))
    got = {row["symbol"]: float(row["net_exposure_lots"]) for row in rows}
    symbols = {s for s, v in expected.items() if abs(v) > 1e-9} | {
        s for s, v in got.items() if abs(v) > 1e-9}
    assert symbols
    for symbol in symbols:
        assert got.get(symbol, 0.0) == pytest.approx(expected.get(symbol, 0.0), abs=1e-6), symbol
    by_symbol = {row["symbol"]: row for row in rows}
    # the seeded clients hold open trades on several symbols, so both sides are exercised
    assert sum(1 for row in rows if abs(float(row["client_net_lots"])) > 1e-9) >= 2, rows
    # the hedges themselves show per account and in the coverage column
    eurusd = by_symbol["EURUSD"]
    per_account = {a.login: float(eurusd[f"coverage_{a.login}_lots"]) for a in accounts}
    assert per_account[900001] >= 1.5 - 1e-9 and per_account[900002] <= -0.7 + 1e-9
    assert float(eurusd["coverage_net_lots"]) == pytest.approx(sum(per_account.values()))
    assert float(eurusd["net_exposure_lots"]) == pytest.approx(
        float(eurusd["client_net_lots"]) - float(eurusd["coverage_net_lots"]))

    page = client.get(f"/platforms/{mt4.pk}/exposure/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-symbol="USDJPY"' in html and "Coverage figures" in html and " s old" in html
    for account in accounts:
        assert f'data-coverage-account="{account.pk}"' in html
    assert "net-exposure-chart-data" in html


def test_the_page_never_calls_the_bridge_and_says_how_old_coverage_is(market, lp, wire, client):
    mt4, _mt5, accounts = market
    client.force_login(make_staff(mt4, role="dealer", username="dealer9"))
    wire.control("DELETE", "/stats")
    time.sleep(0.3)
    answer = client.get(f"/platforms/{mt4.pk}/exposure/", HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    assert '<section id="exposure-table"' in answer.content.decode()
    body = answer.content.decode()
    # re-read on the socket's "exposure changed" frames; polled every 2 s only while the socket
    # is down (page.js sends the "poll" event: the CSP forbids htmx's eval'd trigger filters)
    assert f'data-live-exposure="{mt4.pk}"' in body and "live-exposure," in body
    assert 'hx-trigger="live-exposure, poll" data-poll-seconds-offline="2"' in body
    stats = wire.control("GET", "/stats").json()["operations"]
    assert not any(v.get("received") for k, v in stats.items()
                   if k in ("account", "positions", "symbols")), stats
    ages = [coverage_snapshot(a).age_seconds for a in accounts]
    assert all(age is not None and age >= 0.3 for age in ages)


def test_a_failed_poll_keeps_the_last_figures_and_shows_the_error(market, wire, client):
    mt4, _mt5, accounts = market
    before = coverage_snapshot(accounts[0])
    wire.fault(operation="positions", error="BridgeUnavailable")
    poll_coverage_account(accounts[0])
    after = coverage_snapshot(accounts[0])
    assert after.positions == before.positions and after.fetched_at == before.fetched_at
    assert "BridgeUnavailable" in after.error or "502" in after.error
    client.force_login(make_staff(mt4, role="risk", username="risk2"))
    html = client.get(f"/platforms/{mt4.pk}/exposure/").content.decode()
    assert "Last poll failed" in html


@pytest.mark.parametrize("who", ["no-role", "support", "other-platform", "no-grant"])
def test_outside_role_or_platform_scope_the_page_and_csv_are_404(market, client, who):
    mt4, mt5, _accounts = market
    user = {
        "no-role": lambda: make_staff(mt4, role=None, username="norole"),
        "support": lambda: make_staff(mt4, role="support", username="support1"),
        "other-platform": lambda: make_staff(mt5, role="risk", username="risk-mt5"),
        "no-grant": lambda: make_staff(role="dealer", username="dealer-none"),
    }[who]()
    client.force_login(user)
    for url in (f"/platforms/{mt4.pk}/exposure/", f"/platforms/{mt4.pk}/exposure/export.csv"):
        assert client.get(url).status_code == 404, url
    expected_all = 200 if who == "other-platform" else 404
    assert client.get("/exposure/").status_code == expected_all
    assert client.get("/exposure/export.csv").status_code == expected_all


def test_the_all_platforms_page_of_a_risk_user_on_mt5_shows_no_mt4_coverage(market, client):
    _mt4, mt5, accounts = market
    client.force_login(make_staff(mt5, role="risk", username="risk-mt5b"))
    html = client.get("/exposure/").content.decode()
    assert not any(f'data-coverage-account="{a.pk}"' in html for a in accounts)
    assert client.get("/platforms/99999999999999999999/exposure/").status_code == 404


def test_net_exposure_is_pure_arithmetic_over_its_inputs():
    clients = {"EURUSD": {"buy": 3.0, "sell": 1.0, "profit": 50.0, "price": 1.1},
               "USDJPY": {"buy": 0.0, "sell": 2.0, "profit": -10.0, "price": 150.0}}
    quotes = {"EURUSD": {"bid": 1.1, "ask": 1.1, "contractSize": 100000,
                         "currencyProfit": "USD"},
              "USDJPY": {"bid": 150.0, "ask": 150.0, "contractSize": 100000,
                         "currencyProfit": "JPY"}}
    snapshot = CoverageSnapshot(1, "c", "lp", 9, None, None, [
        {"symbol": "EURUSD", "type": "BUY", "volume": 1.5, "profit": 20.0},
        {"symbol": "GBPUSD", "type": "SELL", "volume": 0.5, "profit": 1.0},
        {"symbol": "EURUSD", "type": "BUY_LIMIT", "volume": 9.0, "profit": 0.0},
    ], {})
    rows = {r.symbol: r for r in net_exposure(clients, [snapshot], quotes=quotes)}
    assert rows["EURUSD"].net == pytest.approx(0.5)
    assert rows["EURUSD"].net_notional == pytest.approx(0.5 * 100000 * 1.1)
    assert rows["EURUSD"].net_profit == pytest.approx(30.0)
    assert rows["USDJPY"].net_notional == pytest.approx(-2.0 * 100000)  # JPY → USD at 1/150
    assert rows["GBPUSD"].net == pytest.approx(0.5) and rows["GBPUSD"].client_net == 0.0


def test_the_poll_task_is_routed_to_the_reporting_queue():
    from dashboard.celery import app
    from platforms.coverage.tasks import poll_all_coverage, poll_coverage

    for task in (poll_coverage, poll_all_coverage):
        route = app.amqp.router.route({}, task.name, (), {})
        assert route["queue"].name == "reporting", task.name
    assert CoverageAccount  # the model the task reads
