"""Celery tasks of the mirror: thin wrappers over :mod:`platforms.mirror.runs`, ids and primitives
only.

Task names keep their original ``platforms.tasks.*`` spelling (beat rows and routes store them;
:mod:`platforms.mirror.dispatch` holds them, and is how services queue these tasks);
``snapshot_*`` tasks are routed to the ``reporting`` queue (``CELERY_TASK_ROUTES``).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from platforms.client import TRANSIENT_ERRORS
from platforms.mirror import dispatch
from platforms.mirror.runs import RunDeferred, execute_run, request_run
from platforms.models import TradePlatform


@shared_task(
    name=dispatch.SNAPSHOT_PLATFORM,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 300,
)
def snapshot_platform(self, run_id: int) -> dict:
    """Execute snapshot run ``run_id`` (idempotent: a finished run is not repeated; a failed
    or interrupted one runs again, a history run from its checkpoint)."""
    try:
        run = execute_run(run_id, task_id=self.request.id or "")
    except RunDeferred:
        # not a retry (no attempt was made, none is used up): the same message, later
        snapshot_platform.apply_async((run_id,), countdown=settings.SNAPSHOT_DEFER_SECONDS)
        return {"run": run_id, "state": "deferred"}
    return {"run": run_id, "state": run.state if run else "missing"}


@shared_task(name=dispatch.SNAPSHOT_SCHEDULED, acks_late=True, time_limit=120)
def snapshot_scheduled(platform_id: int, kind: str) -> int | None:
    """Beat entry point: queue a ``kind`` run of the platform unless one is already active."""
    platform = TradePlatform.objects.filter(pk=platform_id, enabled=True).first()
    if platform is None:
        return None
    run, created = request_run(platform, kind)
    return run.pk if created else None
