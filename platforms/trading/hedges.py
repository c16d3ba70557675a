"""Coverage hedges as trade tasks: sent to the LP's bridge by ``platforms.coverage.hedging``,
where executing and reconciling are the same move (every resend is a replay)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from platforms.coverage.hedging import run_hedge
from platforms.trading.models import TaskState, TradeTask
from platforms.trading.outcomes import OPEN_STATES, confirm, outcome_unknown, transition
from platforms.trading.trail import audit_task


class HedgePending(Exception):
    """The LP has not named the hedge's outcome yet (still queued, or no answer)."""


def execute_hedge(task: TradeTask) -> str:
    """A coverage hedge: sent to the LP's bridge by ``platforms.coverage.hedging`` under the
    task's request id as ``x-request-id``. Every resend is a replay by the wire's contract
    (same id, same body: the same bridge task, its current state), so executing and
    reconciling are the same move; an outcome still open is reconciled later, never resent
    under a new id."""
    if task.state == TaskState.QUEUED:
        if not transition(task, TaskState.SENT, from_states=[TaskState.QUEUED],
                          sent_at=timezone.now(), attempts=task.attempts + 1,
                          wire={"op": "bridge", "payload": task.payload}):
            return TradeTask.objects.get(pk=task.pk).state  # another worker claimed it
    elif task.state in OPEN_STATES:
        TradeTask.objects.filter(pk=task.pk).update(attempts=F("attempts") + 1)
        task.refresh_from_db(fields=["attempts"])
    else:
        return task.state
    outcome = run_hedge(task.payload, str(task.request_id))
    bridge = outcome.task
    if outcome.status == "executed" and bridge is not None:
        answer = {"bridge_task_id": bridge.task_id, "ticket": bridge.ticket,
                  "fill_price": bridge.fill_price, "profit": bridge.profit,
                  "sends": outcome.sends}
        how = ("event" if outcome.via == "events" else
               "answer" if task.attempts <= 1 else "replay")
        confirm(task, None, answer, bridge.task_id, how)
    elif outcome.status == "rejected" or (bridge is None and outcome.refused):
        code = (bridge.error.code if bridge is not None and bridge.error else
                (outcome.errors[-1] if outcome.errors else "Rejected"))
        message = (bridge.error.message if bridge is not None and bridge.error else
                   outcome.error)[:500]
        with transaction.atomic():
            if transition(task, TaskState.REJECTED, from_states=OPEN_STATES, error_code=code,
                          message=message, result={"error": code, "sends": outcome.sends,
                                                   "bridge_task_id": getattr(bridge, "task_id",
                                                                             "")}):
                audit_task(task, f"trade_task.{task.kind}", "rejected", before=task.preview,
                           detail=f"{code}: {message}")
    else:
        outcome_unknown(task, HedgePending(outcome.error
                                           or f"the LP holds the hedge as {outcome.status}"))
    return task.state
