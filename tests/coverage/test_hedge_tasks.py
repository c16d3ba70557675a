"""Hedges from the net-exposure page as trade tasks: form → confirmation → task on the
``trading`` queue → the LP's bridge under the task's request id; audited; exactly once under
lost answers and 502s; refused without ``operate_trades``; 404 outside the platform scope."""

from __future__ import annotations

import time
import uuid

import pytest

from platforms.audit import Actor
from platforms.coverage.services import poll_coverage_account, register_sandbox_coverage_accounts
from platforms.models import AuditEvent
from platforms.services import register_sandbox_platforms
from platforms.trading.execute import execute
from platforms.trading.models import TaskState, TradeTask
from platforms.trading.reconcile import reconcile
from platforms.trading.submit import submit
from tests.sandbox_process import forget_connections
from tests.support.polling import wait_until
from tests.support.staff import make_staff
from tests.workers import CeleryWorker, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


@pytest.fixture
def desk(lp, wire):
    forget_connections(lp)
    mt4, mt5 = register_sandbox_platforms(lp)
    accounts = register_sandbox_coverage_accounts(lp, [mt4])
    yield mt4, mt5, accounts
    forget_connections(lp)


def _dealer(client, *platforms, role="dealer"):
    user = make_staff(*platforms, role=role)
    client.force_login(user)
    return user


def _through_the_form(client, mt4, data) -> TradeTask:
    url = f"/platforms/{mt4.pk}/exposure/hedge/{data.pop('action')}/"
    form = client.get(url)
    assert form.status_code == 200 and 'name="request_id"' in form.content.decode()
    request_id = str(uuid.uuid4())
    review = client.post(url, {**data, "request_id": request_id})
    assert review.status_code == 200, review.content.decode()[:2000]
    assert 'id="confirmation"' in review.content.decode()
    assert not TradeTask.objects.filter(request_id=request_id).exists()  # nothing before confirm
    done = client.post(url, {**data, "request_id": request_id, "confirm": "1"})
    assert done.status_code == 302, done.content.decode()[:2000]
    return TradeTask.objects.get(request_id=request_id)


def _wait_final(task: TradeTask, timeout=20.0, worker=None) -> TradeTask:
    def final() -> bool:
        task.refresh_from_db()
        return task.state in (TaskState.CONFIRMED, TaskState.REJECTED, TaskState.FAILED)

    def still() -> str:
        log = worker.log_path.read_text()[-3000:] if worker else ""
        return f"task still {task.state}: {task.message}\n{log}"

    wait_until(final, still, timeout=timeout, interval=0.1)
    return task


def test_a_dealer_hedges_from_the_page_and_the_trading_queue_fills_it(
        desk, lp, wire, client, celery_broker, tmp_path):
    mt4, _mt5, accounts = desk
    _dealer(client, mt4)
    worker = CeleryWorker(worker_env(celery_broker), tmp_path / "trading.log",
                          f"hedge-{time.monotonic_ns()}", queues="trading")
    try:
        task = _through_the_form(client, mt4, {
            "action": "open", "coverage_account": accounts[1].pk, "symbol": "EURUSD",
            "side": "sell", "volume": "0.37"})
        task = _wait_final(task, worker=worker)
    finally:
        worker.stop()
    assert task.state == TaskState.CONFIRMED, (task.error_code, task.message)
    bridge_task = task.result["bridge_task_id"]
    positions = [p for p in wire.state(accounts[1].login)["positions"]
                 if p["taskId"] == bridge_task]
    assert len(positions) == 1 and positions[0]["volume"] == pytest.approx(0.37)
    assert task.ticket == positions[0]["ticket"]
    actions = set(AuditEvent.objects.filter(request_id=task.request_id)
                  .values_list("outcome", flat=True))
    assert {"queued", "confirmed"} <= actions, actions

    # close it from the page the same way (executed in-process here: same service body)
    close = _through_the_form(client, mt4, {"action": "close",
                                            "coverage_account": accounts[1].pk,
                                            "ticket": str(task.ticket)})
    assert execute(close.pk) == TaskState.CONFIRMED
    assert not [p for p in wire.state(accounts[1].login)["positions"]
                if p["ticket"] == task.ticket]


def test_hedge_tasks_execute_exactly_once_under_lost_answers_and_502s(desk, lp, wire, client,
                                                                     monkeypatch):
    from platforms.coverage import hedging

    monkeypatch.setattr(hedging, "HEDGE_TIMEOUT_S", 0.4)  # a lost answer costs 0.4 s, not 10
    mt4, _mt5, accounts = desk
    user = _dealer(client, mt4)
    account = accounts[2]
    before = {p["ticket"] for p in wire.state(account.login)["positions"]}
    wire.fault(operation="orders.submit", latency=0.8, rate=0.2)  # past the client's timeout
    wire.fault(operation="orders.submit", error="BridgeUnavailable", rate=0.1)
    tasks = []
    actor = Actor(user)
    for n in range(20):
        submission = submit(
            actor=actor, platform=mt4, kind="coverage_open", login=None,
            payload={"action": "open", "coverage_account": account.pk, "symbol": "USDJPY",
                     "side": "buy", "volume": round(0.05 + n / 100, 2)},
            request_id=uuid.uuid4())
        tasks.append(submission.task)
    # the worker's body, in-process; an open outcome is reconciled with the same request id
    for task in tasks:
        state = execute(task.pk)
        for _ in range(6):
            if state not in (TaskState.SENT, TaskState.OUTCOME_UNKNOWN):
                break
            state = reconcile(task.pk)
    hits = {(r.get("error") or "latency"): r["hits"]
            for r in wire.control("GET", "/faults").json()["rules"]}
    wire.control("DELETE", "/faults")
    for task in tasks:
        task.refresh_from_db()
        assert task.state == TaskState.CONFIRMED, (task.state, task.message, hits)
        # running it again changes nothing: a confirmed task is final
        assert execute(task.pk) == TaskState.CONFIRMED
    positions = [p for p in wire.state(account.login)["positions"] if p["ticket"] not in before]
    assert len(positions) == len(tasks), (len(positions), hits)
    assert sorted(p["taskId"] for p in positions) == sorted(
        t.result["bridge_task_id"] for t in tasks)
    assert hits["BridgeUnavailable"] + hits["latency"] > 0, hits


def test_hedging_needs_operate_trades_and_the_platform(desk, client):
    mt4, mt5, accounts = desk
    _dealer(client, mt4, role="risk")  # risk may see the page, not trade
    url = f"/platforms/{mt4.pk}/exposure/hedge/open/"
    assert client.get(f"/platforms/{mt4.pk}/exposure/").status_code == 200
    assert client.get(url).status_code == 403
    _dealer(client, mt5)  # a dealer of the other platform only
    assert client.get(url).status_code == 404
    _dealer(client, mt4)
    assert client.get(f"/platforms/{mt4.pk}/exposure/hedge/explode/").status_code == 404
    bad = client.post(url, {"request_id": str(uuid.uuid4()), "coverage_account": accounts[0].pk,
                            "symbol": "EURUSD", "side": "buy", "volume": "500"})
    assert bad.status_code == 200 and "confirmation" not in bad.content.decode()
    assert not TradeTask.objects.exists()


def test_the_page_offers_hedge_links_to_dealers_only(desk, client):
    mt4, _mt5, accounts = desk
    for account in accounts:
        poll_coverage_account(account)
    _dealer(client, mt4, role="risk")
    assert "hedge-link" not in client.get(f"/platforms/{mt4.pk}/exposure/").content.decode()
    _dealer(client, mt4)
    html = client.get(f"/platforms/{mt4.pk}/exposure/").content.decode()
    assert "/exposure/hedge/open/" in html


def test_hedge_kinds_are_not_account_operations(desk, client):
    from platforms.trading.kinds import account_actions

    mt4, _mt5, _accounts = desk
    user = _dealer(client, mt4)
    kinds = {k for actions in account_actions(user, "MT4").values() for k, _ in actions}
    assert kinds and not kinds & {"coverage_open", "coverage_modify", "coverage_close"}
    for url in (f"/platforms/{mt4.pk}/operations/new/coverage_open/",
                f"/platforms/{mt4.pk}/accounts/{100001}/operations/coverage_close/"):
        assert client.get(url).status_code == 404, url
