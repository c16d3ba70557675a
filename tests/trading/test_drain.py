"""Money tasks sent in batches by a platform's drain: still once per request id, whoever drains."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from platforms.audit import Actor
from platforms.models import AuditEvent
from platforms.trading import dispatch, drain
from platforms.trading.execute import execute
from platforms.trading.models import TaskState, TradeTask
from platforms.trading.submit import submit

pytestmark = pytest.mark.django_db(transaction=True)

LOGINS = list(range(100121, 100131))  # touched by no other test


def submit_deposits(user, platform, count: int, first: int = 0) -> list[TradeTask]:
    actor = Actor(user, "127.0.0.1")
    return [
        submit(actor=actor, platform=platform, kind="deposit",
               login=LOGINS[i % len(LOGINS)],
               payload={"amount": f"{10 + i}.50", "comment": f"crm {i}"},
               request_id=uuid.uuid4()).task
        for i in range(first, first + count)
    ]


def drain_from_threads(platform_pk: int, threads: int) -> None:
    """The same platform drained by several workers at once (duplicated or concurrent
    messages), each thread with its own database connection as a worker thread has."""
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run() -> None:
        try:
            start.wait()
            drain.drain(platform_pk)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not errors, errors


def tagged_rows(sandbox, tags: set[str]) -> Counter[str]:
    found: Counter[str] = Counter()
    for login in LOGINS:
        for row in sandbox.control("GET", f"/accounts/{login}").json()["closedSinceStart"]:
            tag = (row.get("comment") or "").split(" ", 1)[0]
            if tag in tags:
                found[tag] += 1
    return found


def test_concurrent_drains_send_each_queued_deposit_once(
    clean_sandbox, mt4, finance_user, celery_broker, monkeypatch
):
    # several batches per drain: each is confirmed while the next one's calls are in flight
    monkeypatch.setattr(drain, "DRAIN_BATCH", 7)
    tasks = submit_deposits(finance_user, mt4, 40)
    assert all(t.state == TaskState.QUEUED and t.wire is not None for t in tasks)
    clean_sandbox.control("DELETE", "/stats")

    drain_from_threads(mt4.pk, threads=3)
    drain.drain(mt4.pk)  # a redelivered message finds nothing left to send

    states = Counter(TradeTask.objects.values_list("state", flat=True))
    assert states == {TaskState.CONFIRMED: 40}, states
    stats = clean_sandbox.control("GET", "/stats").json()["operations"]["TradeTransaction"]
    assert stats["executed"] == 40
    assert set(tagged_rows(clean_sandbox, {t.comment_tag for t in tasks}).values()) == {1}
    for task in TradeTask.objects.all():
        assert task.attempts == 1 and task.resolved_by == "answer" and task.ticket
        balance = clean_sandbox.control("GET", f"/accounts/{task.login}").json()["balance"]
        # read after the batch's answers: the balance includes this deposit (and the others
        # confirmed with it), so it never shows less than what was there before plus this one
        assert task.new_balance is not None and task.new_balance <= Decimal(str(balance))
    outcomes = Counter(AuditEvent.objects.filter(action="trade_task.deposit")
                       .values_list("outcome", flat=True))
    assert outcomes == {"queued": 40, "confirmed": 40}
    confirmed = AuditEvent.objects.filter(outcome="confirmed").first()
    assert confirmed.actor_id == finance_user.pk and confirmed.ip_address == "127.0.0.1"
    task = TradeTask.objects.get(request_id=confirmed.request_id)
    assert confirmed.platform_id == mt4.pk and confirmed.target == str(task.login)
    assert confirmed.detail == "attempt 1, resolved by answer"
    assert confirmed.after["new_balance"] == str(task.new_balance)
    assert confirmed.after["amount"] == task.payload["amount"]


def test_a_drain_message_that_finds_every_drain_slot_busy_comes_back_instead_of_competing(
    clean_sandbox, mt4, finance_user, celery_broker, settings
):
    from django.core.cache import cache

    settings.TRADING_DRAINS_PER_PLATFORM = 2
    slots = [drain._drain_lock_key(mt4.pk, slot) for slot in range(2)]
    cache.delete_many(slots)
    assert cache.add(slots[0], 1, timeout=30)  # another worker's drain of this platform runs
    try:
        # a second worker process takes the free slot, drains, and frees it again
        tasks = submit_deposits(finance_user, mt4, 2, first=300)
        assert drain.drain_exclusively(mt4.pk) == {"confirmed": 2}
        assert cache.get(slots[1]) is None
        assert cache.add(slots[1], 1, timeout=30)  # and a third worker's drain
        tasks = submit_deposits(finance_user, mt4, 2, first=200)
        assert drain.drain_exclusively(mt4.pk) == {"deferred": 1}
        assert {t.state for t in TradeTask.objects.filter(pk__in=[t.pk for t in tasks])} == {
            TaskState.QUEUED}
        # the pending mark stays: submits meanwhile publish nothing more
        assert cache.get(dispatch._drain_key(mt4.pk)) is not None
    finally:
        cache.delete_many(slots)
    assert drain.drain_exclusively(mt4.pk) == {"confirmed": 2}
    assert cache.get_many(slots) == {}  # released for the next drain


def test_a_process_already_draining_a_platform_sends_a_second_message_back(
    clean_sandbox, mt4, finance_user, celery_broker
):
    """A second drain in the same worker process would only share its core (its GIL): the
    message comes back for any worker to take, even with drain slots free."""
    from django.core.cache import cache

    submit_deposits(finance_user, mt4, 2, first=400)
    clean_sandbox.control("POST", "/faults", json={"operation": "TradeTransaction",
                                                   "latency": 1.5, "rate": 1.0})
    first: dict = {}

    def drain_in_a_worker_thread() -> None:
        try:
            first.update(drain.drain_exclusively(mt4.pk))
        finally:
            connection.close()  # this thread's own connection

    running = threading.Thread(target=drain_in_a_worker_thread)
    running.start()
    try:
        deadline = time.monotonic() + 10
        while not TradeTask.objects.filter(state=TaskState.SENT).exists():
            assert time.monotonic() < deadline, "the first drain never sent"
            time.sleep(0.02)
        assert drain.drain_exclusively(mt4.pk) == {"deferred": 1}
        assert cache.get(drain._drain_lock_key(mt4.pk, 1)) is None  # no slot taken
    finally:
        running.join(timeout=30)
        clean_sandbox.clear_faults()
    assert first == {"confirmed": 2}


def test_a_deposit_the_platform_never_received_is_put_back_and_retried_alone(
    clean_sandbox, mt4, finance_user, celery_broker
):
    tasks = submit_deposits(finance_user, mt4, 3, first=100)
    clean_sandbox.control("POST", "/faults", json={"operation": "TradeTransaction",
                                                   "error": "NoConnect", "rate": 1.0})
    drain.drain(mt4.pk)
    for task in tasks:
        task.refresh_from_db()
        assert task.state == TaskState.QUEUED and task.attempts == 1
        assert task.error_code == "NoConnect"
    # a later drain leaves them to their own retrying message (no tight loop on a dead platform)
    drain.drain(mt4.pk)
    assert set(TradeTask.objects.values_list("attempts", flat=True)) == {1}

    clean_sandbox.clear_faults()
    clean_sandbox.control("DELETE", "/stats")
    for task in tasks:  # what each task's own message runs
        assert execute(task.pk) == TaskState.CONFIRMED
    stats = clean_sandbox.control("GET", "/stats").json()["operations"]["TradeTransaction"]
    assert stats["executed"] == 3
    assert set(tagged_rows(clean_sandbox, {t.comment_tag for t in tasks}).values()) == {1}
