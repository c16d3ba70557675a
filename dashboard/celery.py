"""Celery application.

Quotes, trading and reporting work go to separate queues so that a slow month-end report can
never delay a client's deposit, and a flood of quote work never delays either.
"""

import os
from contextvars import Token

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

from platforms.transport import interactive

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
# One ``tasks.py`` per domain that has background work.
app.autodiscover_tasks(["platforms.mirror", "platforms.trading", "platforms.server",
                        "platforms.coverage"])


@task_prerun.connect
@task_postrun.connect
def recycle_db_connections(sender=None, **kwargs) -> None:
    """Django's per-request rule, per task: drop a connection that is broken or older than
    ``CONN_MAX_AGE`` and keep the others (settings' ``CELERY_DB_REUSE_MAX`` stops Celery from
    closing every connection around every task). Eager calls run inside the caller's
    transaction and are left alone."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()


_lifted_budgets: dict[str, Token] = {}


@task_prerun.connect
def lift_interactive_budget(task_id=None, **kwargs) -> None:
    """A task run eagerly inside a page keeps a worker's deadlines and retries, not the page's
    interactive budget (:mod:`platforms.transport.interactive`)."""
    if task_id is not None:
        _lifted_budgets[task_id] = interactive.lift()


@task_postrun.connect
def restore_interactive_budget(task_id=None, **kwargs) -> None:
    token = _lifted_budgets.pop(task_id, None) if task_id is not None else None
    if token is not None:
        interactive.restore(token)
