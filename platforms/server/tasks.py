"""Celery tasks of the server pages (routed to ``reporting``): thin wrappers over the services.

Task names keep their original ``platforms.server_tasks.*`` spelling (beat rows and routes store
them); :mod:`platforms.server.dispatch` holds them, and is how services queue these tasks.
"""

from __future__ import annotations

from celery import shared_task

from platforms.client import TRANSIENT_ERRORS
from platforms.models import TradePlatform
from platforms.server import dispatch
from platforms.server.health import checked, prune_samples
from platforms.server.reports import execute_report
from platforms.server.services import execute_mail_job


@shared_task(name=dispatch.SEND_MAIL_JOB, acks_late=True, soft_time_limit=1800,
             time_limit=1900)
def send_mail_job(job_id: int) -> dict:
    """Send a queued mail job; idempotent (recipients already sent are skipped)."""
    job = execute_mail_job(job_id)
    return {"job": job_id, "state": job.state if job else "missing"}


@shared_task(name=dispatch.BUILD_REPORT, acks_late=True,
             autoretry_for=TRANSIENT_ERRORS, retry_backoff=10, max_retries=3,
             soft_time_limit=1800, time_limit=1900)
def build_report(job_id: int) -> dict:
    """Compute a report job from ``DailyReportsRequest`` and store its result."""
    job = execute_report(job_id)
    return {"job": job_id, "state": job.state if job else "missing"}


@shared_task(name="platforms.server_tasks.sample_health", acks_late=True, time_limit=300)
def sample_health() -> int:
    """Beat entry point: one connection sample per enabled platform; prunes old samples."""
    platforms = list(TradePlatform.objects.filter(enabled=True))
    for platform in platforms:
        checked(platform)
    prune_samples()
    return len(platforms)
