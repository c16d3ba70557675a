"""Celery application.

Quotes, trading and reporting work go to separate queues so that a slow month-end report can
never delay a client's deposit, and a flood of quote work never delays either.
"""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

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
