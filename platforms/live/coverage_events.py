"""Coverage accounts in the stream process: their ``/events``, and the exposure nudges.

``run_coverage_events()`` runs until cancelled beside the platforms' hub bridges
(``runner.run_bridges``): one :class:`~platforms.coverage.events.AccountEvents` per enabled
coverage account, each behind a lock (``realtime:coverage:<pk>``, like the bridges), so however
many ``stream`` processes run, one connection per account exists; the account list is re-read
every ``RESCAN_SECONDS`` (added, disabled or edited accounts). It wires the listener to:

* the channel layer — a refreshed coverage snapshot sends ``exposure.changed`` (``groups``
  None: coverage is visible to everyone allowed on the platform's exposure page) to the
  ``exposure_group`` of every platform the account covers;
* the trading domain — an execution event for a hedge trade task still awaiting its outcome
  (``sent`` for a while, or ``outcome_unknown``) queues that task's reconcile on the
  ``trading`` queue, which confirms it from the recorded event without sending anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import timedelta

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db.models import Q
from django.utils import timezone

from platforms.coverage.client import Task
from platforms.coverage.events import AccountEvents
from platforms.coverage.models import CoverageAccount
from platforms.coverage.services import bridge_config
from platforms.live.groups import exposure_group
from platforms.live.locks import BridgeLock
from platforms.trading import dispatch as trading_dispatch
from platforms.trading.kinds import COVERAGE_KINDS
from platforms.trading.models import TaskState, TradeTask

log = logging.getLogger("platforms.live")
RESCAN_SECONDS = 30.0
#: A ``sent`` hedge younger than this is still in its worker's send loop, which reads the
#: recorded execution itself; an older one lost its worker and is reconciled from here.
SENT_GRACE = timedelta(seconds=15)


def _covered_platforms(account_pk: int) -> list[int]:
    return list(CoverageAccount.covers.through.objects.filter(coverageaccount_id=account_pk)
                .values_list("tradeplatform_id", flat=True))


async def announce_coverage_change(account_pk: int, layer=None) -> list[int]:
    """Tell the exposure pages of the platforms ``account_pk`` covers that it changed."""
    layer = layer or get_channel_layer()
    pks = await sync_to_async(_covered_platforms)(account_pk)
    now = time.time()
    for pk in pks:
        await layer.group_send(exposure_group(pk), {"type": "exposure.changed", "pk": pk,
                                                    "ts": now, "groups": None})
    return pks


def _hedge_tasks_awaiting(account_pk: int, task: Task) -> list[int]:
    """Hedge trade tasks of ``account_pk`` this execution may settle and that still wait."""
    match = Q(payload__bridge_task_id=task.task_id) if task.task_id else Q(pk__in=[])
    with contextlib.suppress(ValueError):  # else not one of ours (request ids are UUIDs)
        match |= Q(request_id=uuid.UUID(str(task.request_id)))
    waiting = Q(state=TaskState.OUTCOME_UNKNOWN) | Q(
        state=TaskState.SENT, sent_at__lt=timezone.now() - SENT_GRACE)
    return list(TradeTask.objects.filter(match, waiting, kind__in=list(COVERAGE_KINDS),
                                         payload__coverage_account=account_pk)
                .values_list("pk", flat=True))


def _reconcile_hedges(account_pk: int, task: Task) -> list[int]:
    pks = _hedge_tasks_awaiting(account_pk, task)
    for pk in pks:
        trading_dispatch.reconcile_now(pk)  # routed to the ``trading`` queue
    return pks


async def reconcile_hedges(account_pk: int, task: Task) -> list[int]:
    """Queue the reconcile of the hedge tasks this execution settles (see the module doc)."""
    pks = await sync_to_async(_reconcile_hedges)(account_pk, task)
    if pks:
        log.info("coverage %s: execution %s settles hedge task(s) %s", account_pk,
                 task.task_id, pks)
    return pks


def _enabled_accounts() -> list[CoverageAccount]:
    return list(CoverageAccount.objects.filter(enabled=True))


async def _guarded(account: CoverageAccount, options: dict | None) -> None:
    """Hold the account's lock while its listener runs; stand by while another holds it."""
    lock = BridgeLock(account.pk, key=f"realtime:coverage:{account.pk}")
    try:
        while True:
            if not await lock.acquire():
                await asyncio.sleep(lock.renew_every)
                continue
            listener = AccountEvents(account.pk, bridge_config(account),
                                     on_change=announce_coverage_change,
                                     on_execution=reconcile_hedges, options=options)
            task = asyncio.create_task(listener.run())
            try:
                while not task.done():
                    await asyncio.wait({task}, timeout=lock.renew_every)
                    if not task.done() and not await lock.renew():
                        log.warning("coverage %s: lost the events lock", account.pk)
                        break
            finally:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            await asyncio.sleep(1.0)
    finally:
        await lock.release()


async def run_coverage_events(options: dict | None = None) -> None:
    """One ``/events`` listener per enabled coverage account until cancelled."""
    running: dict[int, tuple[object, asyncio.Task]] = {}
    try:
        while True:
            accounts = {a.pk: a for a in await sync_to_async(_enabled_accounts)()}
            for pk, (stamp, task) in list(running.items()):
                account = accounts.get(pk)
                if account is None or account.updated_at != stamp or task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                    del running[pk]
            for pk, account in accounts.items():
                if pk not in running:
                    running[pk] = (account.updated_at,
                                   asyncio.create_task(_guarded(account, options)))
            await asyncio.sleep(RESCAN_SECONDS)
    finally:
        for _, task in running.values():
            task.cancel()
        await asyncio.gather(*(t for _, t in running.values()), return_exceptions=True)
