"""Trades, accounts, refusals and the sweeper through a real worker and the sandbox."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from platforms.audit import Actor
from platforms.connections import client_for
from platforms.trading.models import TaskState, TradeTask
from platforms.trading.submit import submit
from platforms.trading.sweep import sweep
from tests.support.polling import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def run(user, platform, kind, login, payload) -> TradeTask:
    task = submit(actor=Actor(user, "127.0.0.1"), platform=platform, kind=kind,
                  login=login, payload=payload, request_id=uuid.uuid4()).task

    def final():
        task.refresh_from_db()
        return task.is_final

    wait_until(final, f"{kind} to finish", timeout=60, interval=0.2)
    return task


def test_dealer_opens_modifies_partially_closes_and_deletes_orders(
    clean_sandbox, mt4, admin_role_user, celery_worker_process
):
    login = 100011
    bid = client_for(mt4).mt4.tick_info_last("EURUSD").bid
    opened = run(admin_role_user, mt4, "open_order", login,
                 {"symbol": "EURUSD", "command": "Buy", "volume": "0.5", "comment": "client call"})
    assert opened.state == TaskState.CONFIRMED, opened.message
    trade = client_for(mt4).mt4.trade_record_get(opened.ticket)
    assert trade.comment.startswith(opened.comment_tag) and trade.volume == 50
    modified = run(admin_role_user, mt4, "modify_order", login,
                   {"order": opened.ticket, "sl": str(round(bid - 0.01, 5))})
    assert modified.state == TaskState.CONFIRMED, modified.message
    closed = run(admin_role_user, mt4, "close_order", login,
                 {"order": opened.ticket, "volume": "0.2"})
    assert closed.state == TaskState.CONFIRMED, closed.message
    pending = run(admin_role_user, mt4, "place_pending", login,
                  {"symbol": "EURUSD", "command": "BuyLimit", "volume": "0.1",
                   "price": str(round(bid - 0.02, 5))})
    assert pending.state == TaskState.CONFIRMED, pending.message
    deleted = run(admin_role_user, mt4, "delete_pending", login, {"order": pending.ticket})
    assert deleted.state == TaskState.CONFIRMED, deleted.message
    state = clean_sandbox.control("GET", f"/accounts/{login}").json()
    assert pending.ticket not in {t["order"] for t in state["openTrades"]}


def test_a_withdrawal_beyond_the_balance_is_rejected_with_a_clear_message(
    clean_sandbox, mt4, finance_user, celery_worker_process
):
    clean_sandbox.control("POST", "/users/100012", json={"balance": 100.0})
    task = run(finance_user, mt4, "withdrawal", 100012, {"amount": "5000.00", "comment": ""})
    assert task.state == TaskState.REJECTED
    assert task.manager_code == "TradeNoMoney"
    assert task.message.startswith("Not enough money")


def test_account_changes_are_applied_on_mt4_and_mt5(
    clean_sandbox, mt4, mt5, admin_role_user, celery_worker_process
):
    assert run(admin_role_user, mt4, "change_leverage", 100013,
               {"leverage": 200}).state == "confirmed"
    assert run(admin_role_user, mt4, "readonly_on", 100013, {}).state == "confirmed"
    user = client_for(mt4).mt4.user_record_request(100013)
    assert user.leverage == 200 and user.enable_flags & 0x04
    assert run(admin_role_user, mt5, "change_leverage", 5000002,
               {"leverage": 50}).state == "confirmed"
    assert client_for(mt5).mt5.user_get(5000002).leverage == 50


def test_a_lost_answer_still_in_progress_is_resolved_once_by_reading_and_same_key_resend(
    clean_sandbox, mt4, finance_user, celery_worker_process
):
    clean_sandbox.control("DELETE", "/stats")
    # answered OutcomeUnknown after the 5 s deadline; applied 2 s later
    clean_sandbox.control("POST", "/faults", json={"operation": "TradeTransaction",
                                                   "latency": 7, "times": 1})
    task = run(finance_user, mt4, "deposit", 100014, {"amount": "33.00", "comment": "late"})
    assert task.state == TaskState.CONFIRMED
    stats = clean_sandbox.control("GET", "/stats").json()["operations"]["TradeTransaction"]
    assert stats["executed"] == 1
    rows = [t for t in clean_sandbox.control("GET", "/accounts/100014").json()["closedSinceStart"]
            if (t.get("comment") or "").startswith(task.comment_tag)]
    assert len(rows) == 1


def test_the_sweeper_settles_a_task_whose_worker_died_after_sending(
    clean_sandbox, mt4, finance_user, celery_worker_process
):
    request_id = uuid.uuid4()
    task = TradeTask.objects.create(
        request_id=request_id, platform=mt4, login=100015, kind="deposit",
        payload={"amount": "5.00", "comment": ""}, fingerprint="x",
        comment_tag="#" + request_id.hex[:12], state=TaskState.SENT, attempts=1,
        requested_by=finance_user, sent_at=timezone.now() - timedelta(minutes=5),
        wire={"op": "trade_transaction", "body": {
            "tradeTransactionType": "BrBalance", "tradeCommand": "Balance", "orderBy": 100015,
            "price": 5.0, "comment": "#" + request_id.hex[:12]}},
    )
    # the dead worker's request reached the platform
    client_for(mt4).mt4.trade_transaction(task.wire["body"], idempotency_key=str(request_id))
    clean_sandbox.control("DELETE", "/stats")
    assert sweep()["sent"] == 1
    wait_until(lambda: TradeTask.objects.get(pk=task.pk).is_final, "the sweeper", timeout=60,
               interval=0.2)
    task.refresh_from_db()
    assert task.state == TaskState.CONFIRMED and task.resolved_by == "read"
    ops = clean_sandbox.control("GET", "/stats").json()["operations"]
    assert "TradeTransaction" not in ops  # settled by reading, never resent
