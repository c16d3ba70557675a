"""The one way the trading desk enqueues Celery work (queue ``trading``).

Messages are addressed by task name, so the desk's modules never import
``platforms.trading.tasks`` (which imports them): no import circle, not even a late one. A
process that has loaded the tasks (a worker) sends each as its registered task, with its
options; one that has not (a web process) publishes the same message by name, routed by
``CELERY_TASK_ROUTES``.

A platform's money tasks go through its *drain* (one message for whatever is queued): a mark in
the shared cache says a drain message is pending, so that a burst of submits publishes one.
"""

from __future__ import annotations

import logging
from contextlib import suppress

from celery import current_app
from django.core.cache import cache
from django.db import transaction

from platforms.trading.kinds import BATCHED_KINDS
from platforms.trading.models import TradeTask

log = logging.getLogger(__name__)

EXECUTE = "platforms.trading.tasks.execute_trade_task"
DRAIN = "platforms.trading.tasks.drain_trade_tasks"
RECONCILE = "platforms.trading.tasks.reconcile_trade_task"

#: how long "a drain message is pending" is remembered. Short: while a mark outlives a lost
#: message, new submits of that platform publish nothing (the next submit after it, or the
#: sweeper for ``queued`` tasks, sends them); a mark outliving a slow queue only costs an extra
#: message that finds less to do.
DRAIN_PENDING_SECONDS = 2
#: how soon a drain message that found the platform's drain busy comes back
DRAIN_BUSY_RETRY_SECONDS = 0.2


def _publish(task_name: str, args: tuple, **options) -> None:
    current_app.signature(task_name).apply_async(args, **options)


def execute_after_commit(task: TradeTask) -> None:
    """Queue the task's execution when the transaction commits: a money task through its
    platform's drain (one message for whatever is queued), any other kind one message each."""
    if task.kind in BATCHED_KINDS and task.wire is not None:
        platform_pk = task.platform_id
        transaction.on_commit(lambda: request_drain(platform_pk))
        return
    task_id = task.pk
    transaction.on_commit(lambda: _publish(EXECUTE, (task_id,)))


def execute_now(task_id: int) -> None:
    """One ``execute_trade_task`` message, now (the sweeper's, for a lost queue message)."""
    _publish(EXECUTE, (task_id,))


def execute_again(task_id: int) -> None:
    """A task put back to ``queued`` after "nothing sent" in a drain: its own retrying message,
    counted as the first retry (so it fails after as many tries as ``execute``'s would)."""
    _publish(EXECUTE, (task_id,), countdown=1, retries=1)


def reconcile_after_commit(task_id: int, countdown: float) -> None:
    transaction.on_commit(lambda: _publish(RECONCILE, (task_id,), countdown=countdown))


def reconcile_now(task_id: int) -> None:
    _publish(RECONCILE, (task_id,))


def _drain_key(platform_pk: int) -> str:
    return f"trading:drain-pending:{platform_pk}"


def request_drain(platform_pk: int, *, lost: bool = False) -> None:
    """Publish one ``drain_trade_tasks`` message for the platform unless one is pending
    (``lost``: the sweeper found tasks whose message never arrived, so the pending mark is the
    lost message's own and is dropped first).

    Called after the task's row is committed. The drain forgets the mark *before* it claims
    (:func:`forget_drain_request`), so a task committed before this call is either seen by the
    pending drain or finds no mark and publishes its own: none waits for a drain that started
    before it existed. A mark whose message was lost expires after
    :data:`DRAIN_PENDING_SECONDS`.
    """
    if lost:
        forget_drain_request(platform_pk)
    try:
        fresh = cache.add(_drain_key(platform_pk), 1, timeout=DRAIN_PENDING_SECONDS)
    except Exception:  # the cache is down: one message per task is still correct
        log.warning("drain mark unavailable; publishing a drain anyway", exc_info=True)
        fresh = True
    if fresh:
        _publish(DRAIN, (platform_pk,))


def forget_drain_request(platform_pk: int) -> None:
    """A drain starts: submits from now on publish a message of their own (see
    :func:`request_drain`)."""
    try:
        cache.delete(_drain_key(platform_pk))
    except Exception:
        log.warning("could not clear the drain mark", exc_info=True)


def drain_again_soon(platform_pk: int) -> None:
    """A drain message that found the platform's drain busy comes back after
    :data:`DRAIN_BUSY_RETRY_SECONDS`, when any worker may take it."""
    # this message stays the pending one: its mark must not lapse while it waits, or each
    # submit after that publishes another message that waits alongside it
    with suppress(Exception):
        cache.touch(_drain_key(platform_pk), DRAIN_PENDING_SECONDS)
    _publish(DRAIN, (platform_pk,), countdown=DRAIN_BUSY_RETRY_SECONDS)
