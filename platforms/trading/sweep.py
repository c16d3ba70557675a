"""The sweeper (``sweep_trade_tasks``, every 15 s): what a lost worker or a lost queue message
left behind is reconciled or sent again."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from platforms.trading import dispatch
from platforms.trading.kinds import BATCHED_KINDS
from platforms.trading.models import TaskState, TradeTask

#: a ``sent`` task older than this has lost its worker (deadline 5-60 s + HTTP slack 30 s)
STALE_SENT = timedelta(seconds=120)
#: a ``queued`` task older than this has lost its queue message. A message is normally taken
#: within a second; with the 15 s beat a lost one is sent again within a minute. Sending a
#: task that was only slow is harmless: whoever claims it first (``queued → sent``, one
#: conditional UPDATE) sends it, the other message finds nothing to do.
STALE_QUEUED = timedelta(seconds=45)


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
    ).values_list("pk", "platform_id", "kind", "attempts", "wire")[:500])
    for pk in stale_sent + due:
        dispatch.reconcile_now(pk)
    drains = set()
    for pk, platform_pk, kind, attempts, wire in lost:
        if kind in BATCHED_KINDS and wire is not None and not attempts:
            drains.add(platform_pk)  # one drain message takes all of the platform's
        else:
            dispatch.execute_now(pk)
    for platform_pk in sorted(drains):
        dispatch.request_drain(platform_pk, lost=True)
    return {"sent": len(stale_sent), "unknown": len(due), "queued": len(lost)}
