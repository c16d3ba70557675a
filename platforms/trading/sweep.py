"""The sweeper (``sweep_trade_tasks``, every 15 s): what a lost worker or a lost queue message
left behind is reconciled or sent again."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from platforms.trading import dispatch
from platforms.trading.models import TaskState, TradeTask

#: a ``sent`` task older than this has lost its worker (deadline 5-60 s + HTTP slack 30 s)
STALE_SENT = timedelta(seconds=120)
#: a ``queued`` task older than this has lost its queue message
STALE_QUEUED = timedelta(seconds=300)


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Resolve what a lost worker or a lost queue message left behind (periodic task)."""
    now = now or timezone.now()
    stale_sent = list(TradeTask.objects.filter(
        state=TaskState.SENT, sent_at__lt=now - STALE_SENT).values_list("pk", flat=True)[:500])
    due = list(TradeTask.objects.filter(
        state=TaskState.OUTCOME_UNKNOWN, next_check_at__lte=now
    ).values_list("pk", flat=True)[:500])
    lost = list(TradeTask.objects.filter(
        state=TaskState.QUEUED, queued_at__lt=now - STALE_QUEUED
    ).values_list("pk", flat=True)[:500])
    for pk in stale_sent + due:
        dispatch.reconcile_now(pk)
    for pk in lost:
        dispatch.execute_now(pk)
    return {"sent": len(stale_sent), "unknown": len(due), "queued": len(lost)}
