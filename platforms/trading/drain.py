"""A platform's drain (``drain_trade_tasks``' body): its queued money tasks sent in batches,
one Celery message for many tasks, each still once under its own request id.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from queue import Empty, SimpleQueue
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from platforms.client import ManagerApiError
from platforms.connections import client_for
from platforms.models import AuditEvent, TradePlatform
from platforms.trading import dispatch, wire
from platforms.trading.errors import NOT_SENT_ERRORS, staff_message
from platforms.trading.kinds import BATCHED_KINDS, MONEY_KINDS
from platforms.trading.models import TaskState, TradeTask
from platforms.trading.outcomes import (
    OPEN_STATES,
    balance_of,
    confirmed_after,
    record_failure,
    transition,
)
from platforms.trading.trail import outcome_event

log = logging.getLogger(__name__)

#: tasks one drain claims at once (one claim UPDATE, one balance read, one commit per batch)
DRAIN_BATCH = 50
#: a platform's drain slot (see :func:`drain_exclusively`) lapses this long after its holder's
#: last batch began, so a killed worker holds nobody up for longer
DRAIN_LOCK_SECONDS = 15


_send_pool: ThreadPoolExecutor | None = None
_send_pool_lock = threading.Lock()


def _sender() -> ThreadPoolExecutor:
    """The process's threads for a drain's calls (``TRADING_DRAIN_SENDERS``)."""
    global _send_pool
    with _send_pool_lock:
        if _send_pool is None:
            _send_pool = ThreadPoolExecutor(settings.TRADING_DRAIN_SENDERS,
                                            thread_name_prefix="trade-send")
        return _send_pool


def _claim_batch(platform_pk: int, limit: int) -> list[TradeTask]:
    """Claim up to ``limit`` queued, never-attempted money tasks of the platform: ``queued →
    sent`` (attempt 1) in one conditional UPDATE, committed before anything is sent; returns
    the claimed tasks as they now are, in id order.

    Exactly the guard of the single claim, for many rows: the state condition is re-checked
    per row by the UPDATE itself, so two drains (or a drain and ``execute``) never both claim
    a task; on PostgreSQL ``SKIP LOCKED`` lets concurrent drains take different rows instead
    of waiting on each other. Tasks that were put back after "nothing sent" (attempts > 0)
    are left to their own retrying message.
    """
    table = connection.ops.quote_name(TradeTask._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    skip_locked = (" FOR UPDATE SKIP LOCKED"
                   if connection.features.has_select_for_update_skip_locked else "")
    kinds = ", ".join(["%s"] * len(BATCHED_KINDS))
    # the model's own table name is the only thing formatted in; every value is a parameter
    # the chosen ids are materialized first: as ``WHERE id IN (subquery)`` the planner may
    # re-run a LIMIT … SKIP LOCKED subquery per row and claim several batches at once
    materialized = " MATERIALIZED" if connection.vendor == "postgresql" else ""
    sql = (
        f"WITH chosen AS{materialized} (SELECT id FROM {table} WHERE platform_id = %s"  # noqa: S608
        f" AND state = %s AND attempts = 0 AND wire IS NOT NULL AND kind IN ({kinds})"
        f" ORDER BY id LIMIT %s{skip_locked})"
        f" UPDATE {table} SET state = %s, sent_at = %s, updated_at = %s, attempts = attempts + 1"
        f" WHERE id IN (SELECT id FROM chosen) AND state = %s RETURNING *"
    )
    params = [platform_pk, TaskState.QUEUED, *BATCHED_KINDS, limit, TaskState.SENT, now, now,
              TaskState.QUEUED]
    # the claimed rows come back whole (no second query); autocommit: committed on return
    return sorted(TradeTask.objects.raw(sql, params), key=lambda task: task.pk)


def _drain_lock_key(platform_pk: int, slot: int) -> str:
    return f"trading:drain-lock:{platform_pk}:{slot}"


#: platforms this process is draining now (its drains run on the worker pool's threads)
_draining_here: set[int] = set()
_draining_here_lock = threading.Lock()


def drain_exclusively(platform_pk: int) -> dict[str, int]:
    """``drain_trade_tasks``' body: :func:`drain`, in one of the platform's drain slots.

    Concurrent drains are safe (each task is claimed by a conditional UPDATE) but wasteful
    beyond one per worker process: every commit during a drain publishes a message, and each
    of those would drain a batch of one or two with its own balance read and commit, its
    threads contending for the GIL with the running drain's. So a platform is drained by at
    most ``TRADING_DRAINS_PER_PLATFORM`` drains at once (slots: locks in the shared cache), and
    by at most one per process: a second drain in the same process only shares its core, while
    one in another worker process doubles what the platform's money flow can use. A message
    that finds no slot, or this process already draining the platform, leaves the pending mark
    alone (so submits do not publish more) and comes back shortly
    (:func:`~platforms.trading.dispatch.drain_again_soon`), when any worker may take it: a task
    committed as the running drains finish is drained then, never left behind. The slots only
    save work: when the cache is down the drain runs anyway.
    """
    with _draining_here_lock:
        if platform_pk in _draining_here:
            return _come_back_later(platform_pk)
        _draining_here.add(platform_pk)
    try:
        return _drain_in_a_slot(platform_pk)
    finally:
        with _draining_here_lock:
            _draining_here.discard(platform_pk)


def _drain_in_a_slot(platform_pk: int) -> dict[str, int]:
    try:
        key = _take_drain_slot(platform_pk)
    except Exception:
        log.warning("drain lock unavailable; draining without it", exc_info=True)
        return drain(platform_pk)
    if key is None:
        return _come_back_later(platform_pk)
    try:
        return drain(platform_pk, lock_key=key)
    finally:
        try:
            cache.delete(key)
        except Exception:  # it lapses on its own
            log.warning("could not release the drain lock", exc_info=True)


def _take_drain_slot(platform_pk: int) -> str | None:
    """The lock key of a free drain slot of the platform, now taken; None when all are busy."""
    for slot in range(settings.TRADING_DRAINS_PER_PLATFORM):
        key = _drain_lock_key(platform_pk, slot)
        if cache.add(key, 1, timeout=DRAIN_LOCK_SECONDS):
            return key
    return None


def _come_back_later(platform_pk: int) -> dict[str, int]:
    dispatch.drain_again_soon(platform_pk)
    return {"deferred": 1}


def drain(platform_pk: int, lock_key: str | None = None) -> dict[str, int]:
    """Send every queued money task of a platform, in batches (``drain_trade_tasks``' body).

    One Celery message moves many tasks: per batch one claim UPDATE, the calls in parallel
    (each under its own request id as the ``Idempotency-Key``, exactly as ``execute``), one
    balance read for the confirmed accounts, and one transaction recording the confirmations
    with their audit rows. A batch is confirmed while the next one's calls are in flight, so
    the platform is not left idle while the database records. Lost answers and refusals take
    the single-task path; a task the platform never received goes back to ``queued`` with its
    own retrying message. ``lock_key`` is the drain slot held, kept alive batch by batch.
    """
    dispatch.forget_drain_request(platform_pk)  # before claiming: see request_drain
    platform = TradePlatform.objects.get(pk=platform_pk)
    client = client_for(platform)
    counts: dict[str, int] = {}
    answered: list[tuple[TradeTask, tuple[dict, str | None]]] = []
    while tasks := _claim_batch(platform_pk, DRAIN_BATCH):
        if lock_key is not None:
            with suppress(Exception):  # still draining: keep the slot from lapsing under us
                cache.touch(lock_key, DRAIN_LOCK_SECONDS)
        for task in tasks:
            task.platform = platform
        calls, outcomes = _send_batch(tasks, client)
        _confirm_batch(answered, client)
        _count(counts, [task for task, _ in answered])
        answered = _settle(tasks, calls, outcomes)
        _count(counts, [task for task in tasks if task.state != TaskState.SENT])
    _confirm_batch(answered, client)
    _count(counts, [task for task, _ in answered])
    return counts


def _count(counts: dict[str, int], tasks: list[TradeTask]) -> None:
    for task in tasks:
        counts[task.state] = counts.get(task.state, 0) + 1


#: a call's answer (the client's ``(data, activity)``), or what it raised instead
_Outcome = tuple[Any, Exception | None]


def _send_batch(tasks: list[TradeTask], client) -> tuple[list[Future], list[_Outcome]]:
    """Start a batch's calls on the sender threads; each outcome lands at its task's index.

    One future per sender thread, each taking the batch's next unsent task until none is left
    (a slow call holds up one thread, not a share of the batch): a future per call cost the
    drain a lock, a condition and a GIL handoff each.
    """
    unsent: SimpleQueue[int] = SimpleQueue()
    for index in range(len(tasks)):
        unsent.put(index)
    outcomes: list[_Outcome] = [(None, None)] * len(tasks)
    pool, threads = _sender(), min(settings.TRADING_DRAIN_SENDERS, len(tasks))
    calls = [pool.submit(_attempt_each, tasks, unsent, outcomes, client) for _ in range(threads)]
    return calls, outcomes


def _attempt_each(tasks: list[TradeTask], unsent: SimpleQueue[int], outcomes: list[_Outcome],
                  client) -> None:
    """Send the batch's unsent tasks one after another, until none is left: each task's answer,
    or what was raised instead, goes to its place in ``outcomes``."""
    while True:
        try:
            index = unsent.get_nowait()
        except Empty:
            return
        task = tasks[index]
        try:  # a drain claims only tasks with a stored wire body
            outcomes[index] = (wire.call(task, client, cast(dict, task.wire)), None)
        except Exception as exc:
            outcomes[index] = (None, exc)


def _settle(tasks: list[TradeTask], calls: list[Future], outcomes: list[_Outcome]
            ) -> list[tuple[TradeTask, tuple[dict, str | None]]]:
    """Wait for a batch's calls; record what was not answered, return what was (to confirm)."""
    for call in calls:
        call.result()
    answered = []
    for task, (answer, exc) in zip(tasks, outcomes, strict=True):
        if exc is None:
            answered.append((task, answer))
        elif isinstance(exc, NOT_SENT_ERRORS):
            _put_back(task, exc)
        elif not record_failure(task, exc):
            log.error("trade task %s: unexpected error, left for the sweeper", task.pk,
                      exc_info=exc)
    return answered


def _put_back(task: TradeTask, exc: ManagerApiError) -> None:
    """Nothing was sent: ``queued`` again, retried by its own message (counted as the first
    retry, so the task still fails after the same number of tries as ``execute``'s)."""
    if transition(task, TaskState.QUEUED, from_states=[TaskState.SENT],
                  error_code=exc.code, message=staff_message(exc)):
        dispatch.execute_again(task.pk)


def _confirm_batch(confirmed: list[tuple[TradeTask, tuple[dict, str | None]]], client) -> None:
    """Confirm the answered tasks of a batch: one balance read, read after every answer, for
    all their accounts, then the outcomes and their audit rows in one transaction."""
    if not confirmed:
        return
    logins = sorted({task.login for task, _ in confirmed
                     if task.kind in MONEY_KINDS and task.login is not None})
    users: dict[int, Any] = {}
    if logins:
        try:
            users = {u.login: u for u in client.mt4.user_records_request(logins)}
        except ManagerApiError as exc:
            log.warning("balance read after confirmation failed: %s", exc.code)
    rows = []
    for task, (answer, activity) in confirmed:
        how = "answer" if task.attempts <= 1 else "resend"
        balance = (balance_of(task, users.get(task.login))
                   if task.kind in MONEY_KINDS and task.login is not None else None)
        result = {**answer, "resolved_by": how}
        if balance is not None:
            result["new_balance"] = str(balance)
        rows.append((task, {
            "result": result, "ticket": answer.get("order") or answer.get("ticket") or None,
            "new_balance": balance, "activity_id": activity or "", "resolved_by": how,
        }))
    if connection.vendor == "postgresql":
        _confirm_rows(rows)
        return
    with transaction.atomic():  # the outcomes and their audit rows commit together
        done = [task for task, values in rows if transition(
            task, TaskState.CONFIRMED, from_states=OPEN_STATES, message="",
            error_code="", manager_code="", **values)]
        AuditEvent.objects.bulk_create([
            outcome_event(task, "confirmed", before=task.preview, after=confirmed_after(task),
                           detail=f"attempt {task.attempts}, resolved by {task.resolved_by}")
            for task in done
        ])


def _confirm_rows(rows: list[tuple[TradeTask, dict]]) -> None:
    """PostgreSQL: ``transition(..., CONFIRMED, from_states=OPEN_STATES)`` and the audit row
    of each task it moved, for many tasks in ONE statement (the same per-row state guard; one
    statement is one transaction, so outcomes and audit rows commit together).

    The rows travel as one JSON document rather than a parameter per value: psycopg quotes
    every value of a multi-row statement in Python, which cost a drain more CPU than the
    platform calls themselves. The tasks it moved are updated in place.
    """
    now = timezone.now()
    done_fields = {"state": TaskState.CONFIRMED, "updated_at": now, "finished_at": now,
                   "secret": "", "next_check_at": None, "message": "", "error_code": "",
                   "manager_code": ""}
    documents, outcomes = [], []
    for task, row in rows:
        outcomes.append((task, {**row, **done_fields}))
        event = outcome_event(
            task, "confirmed", before=task.preview,
            after={"kind": task.kind, **task.payload, **row["result"]},
            detail=f"attempt {task.attempts}, resolved by {row['resolved_by']}")
        documents.append({
            "id": task.pk, "result": row["result"], "ticket": row["ticket"],
            "new_balance": None if row["new_balance"] is None else str(row["new_balance"]),
            "activity_id": row["activity_id"], "resolved_by": row["resolved_by"],
            "actor_id": event.actor_id, "ip_address": event.ip_address, "action": event.action,
            "platform_id": event.platform_id, "target": event.target, "before": event.before,
            "after": event.after, "request_id": str(event.request_id), "detail": event.detail,
        })
    qn = connection.ops.quote_name
    table, events = qn(TradeTask._meta.db_table), qn(AuditEvent._meta.db_table)
    # only the models' table names are formatted in; every value is a parameter
    sql = (
        "WITH v AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, result jsonb, "  # noqa: S608
        "ticket bigint, new_balance numeric, activity_id text, resolved_by text, "
        "actor_id integer, ip_address inet, action text, platform_id bigint, target text, "
        "before jsonb, after jsonb, request_id uuid, detail text)), "
        f"moved AS (UPDATE {table} AS t SET state = %s, updated_at = %s, finished_at = %s, "
        "result = v.result, ticket = v.ticket, new_balance = v.new_balance, "
        "activity_id = v.activity_id, resolved_by = v.resolved_by, secret = '', "
        "next_check_at = NULL, message = '', error_code = '', manager_code = '' "
        "FROM v WHERE t.id = v.id AND t.state IN (%s, %s) RETURNING t.id) "
        f"INSERT INTO {events} (at, actor_id, ip_address, action, platform_id, target, before, "
        "after, request_id, outcome, detail) SELECT %s, v.actor_id, v.ip_address, v.action, "
        "v.platform_id, v.target, v.before, v.after, v.request_id, %s, v.detail "
        "FROM moved JOIN v ON v.id = moved.id RETURNING request_id"
    )
    params: list[Any] = [json.dumps(documents), TaskState.CONFIRMED, now, now, *OPEN_STATES,
                         now, "confirmed"]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        moved = {row[0] for row in cursor.fetchall()}
    for task, confirmed in outcomes:
        if task.request_id in moved:
            for name, value in confirmed.items():
                setattr(task, name, value)
