"""The one way coverage's services queue Celery work (queue ``reporting``).

Messages are addressed by task name, so the services never import ``platforms.coverage.tasks``
(which imports them): no import circle, not even a late one. A process that has loaded the
tasks (a worker) sends each as its registered task; one that has not (a web or stream process)
publishes the same message by name, routed by ``CELERY_TASK_ROUTES``.
"""

from __future__ import annotations

from celery import current_app

POLL_COVERAGE = "platforms.coverage.tasks.poll_coverage"


def _publish(task_name: str, *args: object) -> None:
    current_app.signature(task_name).apply_async(args)


def poll_coverage(account_pk: int) -> None:
    """Read and cache coverage account ``account_pk`` in the background, now: a poll writes
    no row for the worker to wait for, so it need not wait for a commit."""
    _publish(POLL_COVERAGE, account_pk)
