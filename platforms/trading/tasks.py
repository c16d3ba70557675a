"""Celery tasks of the trading desk (queue ``trading``): thin wrappers over the topic modules.

Each takes a task id only and is idempotent: running one twice, or after another worker, only
moves a task along its state machine (see ``platforms.trading``). The desk enqueues them by
name through ``platforms.trading.dispatch``, which therefore never imports this module.
"""

from __future__ import annotations

from celery import Task, shared_task

from platforms.trading import drain, execute, reconcile, sweep
from platforms.trading.errors import NOT_SENT_ERRORS

TRANSIENT = NOT_SENT_ERRORS


class ExecuteTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        """Retries ran out while nothing could be sent: the operation is ``failed``."""
        if isinstance(exc, TRANSIENT) and args:
            execute.give_up(args[0], exc)


@shared_task(
    base=ExecuteTask,
    autoretry_for=TRANSIENT,
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
    soft_time_limit=100,
    time_limit=120,
)
def execute_trade_task(task_id: int) -> str:
    """Send a queued trade task once under its idempotency key."""
    return execute.execute(task_id)


@shared_task(acks_late=True, soft_time_limit=250, time_limit=300)
def drain_trade_tasks(platform_id: int) -> dict[str, int]:
    """Send the platform's queued money tasks in batches (one message for many tasks).

    Safe to run twice or on several workers at once: each task is claimed by a conditional
    UPDATE before it is sent, so a redelivered or duplicated message only finds less to do;
    while the platform's drain runs, another message comes back shortly instead.
    """
    return drain.drain_exclusively(platform_id)


@shared_task(acks_late=True, soft_time_limit=100, time_limit=120)
def reconcile_trade_task(task_id: int) -> str:
    """Learn the outcome of a sent / outcome-unknown task (read first, then same-key resend)."""
    return reconcile.reconcile(task_id)


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def sweep_trade_tasks() -> dict[str, int]:
    """Periodic (django-celery-beat, every 15 s): pick up what lost workers left behind."""
    return sweep.sweep()
