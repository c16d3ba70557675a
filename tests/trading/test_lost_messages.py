"""Nothing is lost when the broker loses a message or a worker dies mid-drain: the sweeper sends
or settles the task again, and the platform still applies the deposit exactly once."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from platforms.audit import Actor
from platforms.trading.models import TaskState, TradeTask
from platforms.trading.submit import submit
from platforms.trading.sweep import sweep
from tests.support.polling import wait_until
from tests.workers import CeleryWorker, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def _worker(celery_broker, tmp_path, name: str) -> CeleryWorker:
    return CeleryWorker(worker_env(celery_broker, DJANGO_LOG_LEVEL="WARNING"),
                        tmp_path / f"{name}.log", f"{name}-{os.getpid()}", queues="trading",
                        pool_args=("-P", settings.CELERY_TRADING_WORKER_POOL, "-c", "4"))


def _deposit(user, platform, login: int, amount: str) -> TradeTask:
    return submit(actor=Actor(user, "127.0.0.1"), platform=platform, kind="deposit",
                  login=login, payload={"amount": amount, "comment": "lost message"},
                  request_id=uuid.uuid4()).task


def _delete_queued_messages(celery_broker) -> int:
    """What a broker that lost the message leaves: the task's row, and no message."""
    if "CELERY_BROKER_URL" in celery_broker:  # Redis: the queue is a list named after it
        import redis

        client = redis.Redis.from_url(celery_broker["CELERY_BROKER_URL"])
        lost = client.llen("trading")
        client.delete("trading")
        return lost
    files = list((Path(celery_broker["DASHBOARD_VAR_DIR"]) / "celery" / "queue")
                 .glob("*.trading.msg"))
    for file in files:
        file.unlink()
    return len(files)


def _applied(sandbox, login: int, task: TradeTask) -> int:
    rows = sandbox.control("GET", f"/accounts/{login}").json()["closedSinceStart"]
    return sum(1 for row in rows if (row.get("comment") or "").startswith(task.comment_tag))


def _final(task: TradeTask):
    def check():
        task.refresh_from_db()
        return task.is_final
    return check


def test_a_deposit_whose_queue_message_vanished_is_sent_by_the_sweeper_within_a_minute(
    clean_sandbox, mt4, finance_user, celery_broker, tmp_path
):
    task = _deposit(finance_user, mt4, 100021, "21.00")
    assert _delete_queued_messages(celery_broker) == 1
    worker = _worker(celery_broker, tmp_path, "after-loss")
    try:
        task.refresh_from_db()
        assert task.state == TaskState.QUEUED  # nobody will ever send it on their own
        assert sweep(now=timezone.now() + timedelta(minutes=1))["queued"] == 1
        wait_until(_final(task), "the swept deposit", timeout=60, interval=0.2)
    finally:
        worker.stop()
    assert task.state == TaskState.CONFIRMED, task.message
    assert _applied(clean_sandbox, 100021, task) == 1


def test_a_worker_killed_mid_drain_leaves_a_deposit_that_is_applied_exactly_once(
    clean_sandbox, mt4, finance_user, celery_broker, tmp_path
):
    worker = _worker(celery_broker, tmp_path, "killed")
    # the worker sits in the platform call (applied 3 s later) when it is killed
    clean_sandbox.control("POST", "/faults", json={"operation": "TradeTransaction",
                                                   "latency": 3, "times": 1})
    task = _deposit(finance_user, mt4, 100022, "22.00")
    try:
        wait_until(lambda: TradeTask.objects.filter(pk=task.pk, state=TaskState.SENT).exists(),
                   "the drain to send the deposit", timeout=30, interval=0.05)
        worker.kill()
    finally:
        worker.stop()
    task.refresh_from_db()
    assert task.state == TaskState.SENT  # its worker is gone; no message will come back
    survivor = _worker(celery_broker, tmp_path, "survivor")
    try:
        assert sweep(now=timezone.now() + timedelta(minutes=3))["sent"] == 1
        wait_until(_final(task), "the swept deposit", timeout=60, interval=0.2)
    finally:
        survivor.stop()
    assert task.state == TaskState.CONFIRMED, task.message
    wait_until(lambda: _applied(clean_sandbox, 100022, task), "the delayed deposit", timeout=10)
    assert _applied(clean_sandbox, 100022, task) == 1
