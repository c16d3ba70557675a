"""Celery tasks of coverage: polling reads of the LP bridges, on the ``reporting`` queue
(``CELERY_TASK_ROUTES``: ``platforms.coverage.tasks.*``), so a slow LP never delays trading
or quotes work and the net-exposure page only ever reads the cache these tasks fill. Thin
wrappers over :mod:`platforms.coverage.services`; services queue them through
:mod:`platforms.coverage.dispatch`."""

from __future__ import annotations

from celery import shared_task

from platforms.coverage import dispatch
from platforms.coverage.models import CoverageAccount
from platforms.coverage.services import poll_coverage_account


@shared_task(name=dispatch.POLL_COVERAGE, acks_late=True, soft_time_limit=20,
             time_limit=30, ignore_result=True)
def poll_coverage(account_pk: int) -> bool:
    """Read and cache one coverage account's account, positions and symbols (idempotent: a
    repeat only refreshes the cache). False when the account is gone or disabled."""
    account = CoverageAccount.objects.filter(pk=account_pk, enabled=True).first()
    if account is None:
        return False
    poll_coverage_account(account)
    return True


@shared_task(name="platforms.coverage.tasks.poll_all_coverage", acks_late=True, time_limit=30,
             ignore_result=True)
def poll_all_coverage() -> int:
    """Beat entry point: queue a poll of every enabled coverage account."""
    pks = list(CoverageAccount.objects.filter(enabled=True).values_list("pk", flat=True))
    for pk in pks:
        poll_coverage.delay(pk)
    return len(pks)
