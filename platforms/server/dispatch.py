"""The one way the server pages' services queue Celery work (queue ``reporting``).

Messages are addressed by task name, so the services never import ``platforms.server.tasks``
(which imports them): no import circle, not even a late one. A process that has loaded the
tasks (a worker) sends each as its registered task; one that has not (a web process) publishes
the same message by name, routed by ``CELERY_TASK_ROUTES``. The names keep their original
``platforms.server_tasks.*`` spelling (beat rows and routes store them).
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction

SEND_MAIL_JOB = "platforms.server_tasks.send_mail_job"
BUILD_REPORT = "platforms.server_tasks.build_report"


def _publish(task_name: str, *args: object) -> None:
    current_app.signature(task_name).apply_async(args)


def send_mail_job_after_commit(job_id: int) -> None:
    """Send mail job ``job_id`` once the transaction that stored it commits."""
    transaction.on_commit(lambda: _publish(SEND_MAIL_JOB, job_id))


def build_report_after_commit(job_id: int) -> None:
    """Compute report job ``job_id`` once the transaction that stored it commits."""
    transaction.on_commit(lambda: _publish(BUILD_REPORT, job_id))
