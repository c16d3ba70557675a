"""The one way the mirror's services queue Celery work (queue ``reporting``).

Messages are addressed by task name, so the services never import ``platforms.mirror.tasks``
(which imports them): no import circle, not even a late one. A process that has loaded the
tasks (a worker) sends each as its registered task; one that has not (a web process) publishes
the same message by name, routed by ``CELERY_TASK_ROUTES``. The names keep their original
``platforms.tasks.*`` spelling (beat rows and routes store them).
"""

from __future__ import annotations

from celery import current_app

SNAPSHOT_PLATFORM = "platforms.tasks.snapshot_platform"
SNAPSHOT_SCHEDULED = "platforms.tasks.snapshot_scheduled"


def snapshot_platform(run_id: int) -> str:
    """Send the execution of snapshot run ``run_id``; returns the Celery task id."""
    return current_app.signature(SNAPSHOT_PLATFORM).apply_async((run_id,)).id
