"""Executing one trade task (``execute_trade_task``' body): claim it, send it once under its
key, record the outcome; and giving up when retries ran out with nothing sent."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from platforms.client import ManagerApiError
from platforms.connections import client_for
from platforms.trading import kinds, wire
from platforms.trading.errors import NOT_SENT_ERRORS, staff_message
from platforms.trading.hedges import execute_hedge
from platforms.trading.models import TaskState, TradeTask
from platforms.trading.outcomes import OPEN_STATES, reject, send, transition
from platforms.trading.reconcile import reconcile
from platforms.trading.trail import audit_task


def execute(task_id: int) -> str:
    """Send a queued task once (the Celery task's body). Returns the state it reached.

    Raises one of :data:`NOT_SENT_ERRORS` after putting the task back to ``queued`` so that
    Celery retries it; a task that is already ``sent`` is reconciled instead of resent.
    """
    task = TradeTask.objects.select_related("platform", "requested_by").get(pk=task_id)
    if task.kind in kinds.COVERAGE_KINDS:
        return execute_hedge(task)
    if task.state in OPEN_STATES:
        return reconcile(task_id)
    if task.state != TaskState.QUEUED:
        return task.state
    client = client_for(task.platform)
    claim: dict[str, Any] = {}
    if task.wire is None:
        try:
            claim["wire"] = wire.prepare_wire(task, client)
        except NOT_SENT_ERRORS:
            raise
        except ManagerApiError as exc:  # e.g. the order no longer exists
            transition(task, TaskState.SENT, from_states=[TaskState.QUEUED])
            reject(task, exc)
            return task.state
    # The state guard makes the claim exclusive, so attempts can be counted here, and the wire
    # body is stored by the same UPDATE: only the worker that sends decides it, and every later
    # attempt (a retry after "nothing sent", a reconcile) reuses the stored body.
    if not transition(task, TaskState.SENT, from_states=[TaskState.QUEUED],
                      sent_at=timezone.now(), attempts=task.attempts + 1, **claim):
        return TradeTask.objects.get(pk=task_id).state  # another worker claimed it
    try:
        return send(task, client)
    except NOT_SENT_ERRORS as exc:
        transition(task, TaskState.QUEUED, from_states=[TaskState.SENT],
                   error_code=exc.code, message=staff_message(exc))
        raise


def give_up(task_id: int, exc: BaseException) -> None:
    """Retries ran out while the platform was unreachable: nothing was applied."""
    task = TradeTask.objects.select_related("platform", "requested_by").get(pk=task_id)
    message = staff_message(exc) if isinstance(exc, ManagerApiError) else str(exc)[:500]
    if transition(task, TaskState.FAILED, from_states=[TaskState.QUEUED],
                  error_code=getattr(exc, "code", type(exc).__name__), message=message):
        audit_task(task, f"trade_task.{task.kind}", "failed", detail=message)
