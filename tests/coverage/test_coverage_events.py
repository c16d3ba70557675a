"""Coverage accounts' ``WS /events`` in the stream process, against the sandbox's bridge.

* A fill reaches the cached snapshot and is announced, and keeps doing so while the session is
  kept alive past its 4 s lifetime, after the bridge expires the session (reopened) and after
  it drops the socket (reconnected).
* A hedge trade task whose every answer was lost (and whose replays now meet 502s) is confirmed
  from its execution event: the stream process records it and queues the task's reconcile on
  the ``trading`` queue, where a real worker confirms it with the ticket and fill price without
  sending anything again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid

import pytest
from asgiref.sync import sync_to_async

from platforms.audit import Actor
from platforms.coverage import hedging
from platforms.coverage.events import AccountEvents
from platforms.coverage.selectors import coverage_snapshot
from platforms.coverage.services import bridge_config, register_sandbox_coverage_accounts
from platforms.live.coverage_events import run_coverage_events
from platforms.services import register_sandbox_platforms
from platforms.trading.execute import execute
from platforms.trading.models import TaskState, TradeTask
from platforms.trading.submit import submit
from tests.sandbox_process import forget_connections
from tests.support.polling import wait_until, wait_until_async
from tests.support.staff import make_staff
from tests.workers import CeleryWorker, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(150)]

FAST = {"reconnect_base": 0.05, "reconnect_max": 0.3}


@pytest.fixture
def desk(lp, wire):
    forget_connections(lp)
    mt4, _mt5 = register_sandbox_platforms(lp)
    accounts = register_sandbox_coverage_accounts(lp, [mt4])
    yield mt4, accounts
    forget_connections(lp)


async def test_fills_reach_the_snapshot_through_keepalive_expiry_and_drops(desk, wire):
    _mt4, accounts = desk
    account = accounts[2]
    login = int(account.login)
    announced: asyncio.Queue[int] = asyncio.Queue()

    async def on_change(pk: int) -> None:
        await announced.put(pk)

    listener = AccountEvents(account.pk, bridge_config(account), on_change=on_change,
                             options=FAST)
    running = asyncio.create_task(listener.run())
    session = await asyncio.to_thread(wire.open, login)
    try:
        await wait_until_async(lambda: listener.connected, "connected")
        assert await asyncio.wait_for(announced.get(), 5) == account.pk  # the gap-fill read
        for step in ("idle", "session expired", "socket dropped"):
            connects = listener.connects
            if step.startswith("idle"):
                await asyncio.sleep(5.0)  # > the 4 s session: heartbeats keep it alive
            elif step == "session expired":
                await asyncio.to_thread(wire.control, "POST", "/sessions/expire", json={})
            else:
                await asyncio.to_thread(wire.control, "POST", "/events/drop")
            if not step.startswith("idle"):
                await wait_until_async(
                    lambda c=connects: listener.connects > c and listener.connected,
                    f"reconnected after {step}")
            else:
                assert listener.connects == connects, "the session was not kept alive"
            session = await asyncio.to_thread(wire.open, login)
            comment = f"ev {step}"
            answer = await asyncio.to_thread(
                wire.write, "POST", "/orders", session,
                {"symbol": "NZDUSD", "type": "SELL", "volume": 0.2, "sl": 0, "tp": 0,
                 "comment": comment})
            assert answer.status_code == 202, answer.text

            def filled(comment=comment) -> bool:
                return any(p.get("comment") == comment
                           for p in coverage_snapshot(account).positions)

            deadline = time.monotonic() + 5
            while not await sync_to_async(filled)():
                assert time.monotonic() < deadline, f"fill after {step} not in the snapshot"
                await asyncio.sleep(0.05)
            assert listener.executions >= 1
    finally:
        running.cancel()
        with contextlib.suppress(BaseException):
            await running


class StreamProcess:
    """``run_coverage_events`` on an event loop of its own, as in ``manage.py stream``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(run_coverage_events(FAST))
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(self.task)
        from django.db import connections

        self.loop.run_until_complete(sync_to_async(connections.close_all)())

    def stop(self) -> None:
        if self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(15)


def test_a_hedge_whose_answers_were_lost_is_confirmed_by_its_execution_event(
        desk, lp, wire, celery_broker, tmp_path, monkeypatch):
    mt4, accounts = desk
    account = accounts[3]
    env = worker_env(celery_broker)  # shares this process's cache: the recorded executions
    dealer = make_staff(mt4, role="dealer", username="events-dealer")

    # the LP holds executions, and every answer to a submission is lost (it runs, late)
    wire.control("POST", "/execution", json={"paused": True})
    latency = wire.fault(operation="orders.submit", latency=1.5)
    monkeypatch.setattr(hedging, "HEDGE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(hedging, "HEDGE_DEADLINE_S", 1.0)
    submission = submit(
        actor=Actor(user=dealer, ip="127.0.0.1"), platform=mt4,
        kind="coverage_open", login=None, request_id=str(uuid.uuid4()),
        payload={"coverage_account": account.pk, "action": "open", "symbol": "EURUSD",
                 "side": "sell", "volume": 0.42})
    task = submission.task
    assert execute(task.pk) == TaskState.OUTCOME_UNKNOWN  # what the worker does
    from dashboard.celery import app

    with app.connection_for_write() as connection:  # its queued execute and scheduled replay
        connection.default_channel.queue_purge("trading")  # are not what this test is about

    # from now on a replay cannot learn anything: the bridge answers 502
    wire.control("DELETE", f"/faults/{latency}")
    wire.fault(operation="orders.submit", error="BridgeUnavailable")
    stream = StreamProcess()
    worker = CeleryWorker(env, tmp_path / "trading.log", f"events-{time.monotonic_ns()}",
                          queues="trading")
    try:
        wait_until(lambda: lp.bridge_control("GET", "").json().get("sockets", 0) >= len(accounts),
                   "every coverage account's /events open")
        submits = wire.op_stats("orders.submit")["received"]
        wire.control("POST", "/execution", json={"paused": False})  # the LP fills it now
        deadline = time.monotonic() + 30
        while True:
            task.refresh_from_db()
            if task.state == TaskState.CONFIRMED:
                break
            assert time.monotonic() < deadline, (
                f"task still {task.state}: {task.message}\n{worker.log_path.read_text()[-3000:]}")
            time.sleep(0.1)
    finally:
        stream.stop()
        worker.stop()
    positions = [p for p in wire.state(int(account.login))["positions"]
                 if p.get("taskId") == task.result["bridge_task_id"]]
    assert len(positions) == 1  # exactly once
    assert task.ticket == positions[0]["ticket"]
    assert task.result["fill_price"] == pytest.approx(positions[0]["openPrice"])
    assert task.result["sends"] == 0  # confirmed from the event, nothing sent again
    assert task.resolved_by == "event"
    assert wire.op_stats("orders.submit")["received"] == submits
    assert TradeTask.objects.get(pk=task.pk).state == TaskState.CONFIRMED

