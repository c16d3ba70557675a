"""Celery tasks of the server pages (routed to ``reporting``: ``platforms.server_tasks.*``)."""

from __future__ import annotations

from celery import shared_task

from platforms.tasks import TRANSIENT_ERRORS


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def send_mail_job(job_id: int) -> dict:
    """Send a queued mail job; idempotent (recipients already sent are skipped)."""
    from platforms.server_ops import execute_mail_job

    job = execute_mail_job(job_id)
    return {"job": job_id, "state": job.state if job else "missing"}


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=10, max_retries=3,
             soft_time_limit=1800, time_limit=1900)
def build_report(job_id: int) -> dict:
    """Compute a report job from ``DailyReportsRequest`` and store its result."""
    from platforms.reports import execute_report

    job = execute_report(job_id)
    return {"job": job_id, "state": job.state if job else "missing"}


@shared_task(acks_late=True, time_limit=300)
def sample_health() -> int:
    """Beat entry point: one connection sample per enabled platform; prunes old samples."""
    from platforms.health_history import checked, prune_samples
    from platforms.models import TradePlatform

    platforms = list(TradePlatform.objects.filter(enabled=True))
    for platform in platforms:
        checked(platform)
    prune_samples()
    return len(platforms)
